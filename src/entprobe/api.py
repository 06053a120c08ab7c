"""The Python API for notebooks: load a model, probe prompts, read results as DataFrames.

From a model path to per-layer entropies::

    import entprobe
    result = entprobe.probe("path/to/model", ["a red cube", "two cats on a sofa"],
                            levels="prompt")
    result.prompt_entropies(wide=True)   # one row per prompt, one column per layer

:func:`probe` runs the same code as ``entprobe probe`` (it calls
:func:`entprobe.pipeline.load_and_probe`), so a store written here and one written
by the command for the same prompts and options hold the same run. Prompts may be
text strings, PIL images, ``(image, question)`` pairs, dicts, prompt-set SPECs
(``"sample:t2i"``, ``"mmbench:dev.parquet"``) or loaded
:class:`~entprobe.datasets.PromptSet` objects. Results go into a store file, or
(``store=None``) into a temporary one that is read into memory and removed.

Every read function takes a *source*: a store path, several, a :class:`ProbeResult`,
or the ``(layer_metrics, samples, runs)`` DataFrames of
:func:`entprobe.analysis.load`. The report's tables and figures are functions here
that return DataFrames and matplotlib figures.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from .datasets import INLINE_DATASET, prompt_sets  # noqa: F401 - INLINE_DATASET was defined here
from .datasets import split_by_modality as _by_modality
from .errors import ProbeInputError

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from .models.base import ModelAdapter
    from .models.requests import LoadOptions
    from .pipeline import RunSummary

from . import _API

__all__ = list(_API)  # declared once, in entprobe/__init__.py

Source = Union[str, os.PathLike, Sequence[Any], "ProbeResult", tuple]


# --- loading a model ---------------------------------------------------------------


def load_model(
    model: str | os.PathLike[str],
    options: LoadOptions | Mapping[str, Any] | None = None,
    *,
    adapter: str | None = None,
    **overrides: Any,
) -> ModelAdapter:
    """Load a model through its adapter, as ``entprobe probe`` does.

    Args:
        model: hub id or local folder.
        options: a :class:`~entprobe.models.LoadOptions` (or a mapping of its fields).
        adapter: adapter name (see ``entprobe models``); default: detected from the
            model's config without loading weights.
        overrides: load options by name (``device``, ``dtype``, ``trust_remote_code``,
            ``revision``, ``upstream_src``; see ``docs/options.md``) or the family's own
            (``use_chat_template`` of ``hf-causal-lm``, ...).

    Returns:
        The loaded :class:`~entprobe.models.base.ModelAdapter`.

    Raises:
        ProbeInputError: a device that is not available here, or a load option the
            adapter does not take.
        UnsupportedError, ModelLoadError: unknown adapter, or the model cannot be loaded.

    Example:
        >>> adapter = load_model("tiny-llama/", dtype="float32")  # doctest: +SKIP
        >>> adapter.n_layers  # doctest: +SKIP
        2
    """
    from .models.registry import detect_adapter, get_adapter
    from .models.requests import LoadOptions
    from .pipeline.checks import check_device

    opts = LoadOptions.of(options, **overrides)
    check_device(opts.device)
    model = str(model)
    name = adapter or detect_adapter(model, trust_remote_code=opts.trust_remote_code, revision=opts.revision)
    return get_adapter(name).load(model, opts)


# --- prompts -----------------------------------------------------------------------
# Coercing what a notebook passes as prompts into PromptSets lives in entprobe.datasets
# (beside the loaders): prompt_sets is re-exported from there, and probe below splits
# the sets into text and image ones with _by_modality (datasets.split_by_modality).


# --- probing -----------------------------------------------------------------------


@dataclass
class ProbeResult:
    """What :func:`probe` did and what it wrote, as DataFrames.

    Attributes:
        run_id: the run's id (one per model, levels, options and prompt sets).
        store: the store file, or ``None`` for a run kept in memory.
        summary: the :class:`~entprobe.pipeline.RunSummary` (counts, failures, times).
        layer_metrics, samples, runs: this run's rows of the store's tables.
    """

    run_id: str
    store: Path | None
    summary: RunSummary
    layer_metrics: pd.DataFrame = field(repr=False)
    samples: pd.DataFrame = field(repr=False)
    runs: pd.DataFrame = field(repr=False)

    def prompt_entropies(self, *, wide: bool = False) -> pd.DataFrame:
        """See :func:`prompt_entropies`."""
        return prompt_entropies(self, wide=wide)

    def proxies(self, *, level: str | None = None, wide: bool = False) -> pd.DataFrame:
        """See :func:`proxies`."""
        return proxies(self, level=level, wide=wide)

    def failures(self) -> pd.DataFrame:
        """See :func:`failures`."""
        return failures(self)


def probe(
    model: str | os.PathLike[str] | ModelAdapter,
    prompts: Any = None,
    *,
    levels: str | Sequence[str] | None = None,
    store: str | os.PathLike[str] | None = None,
    text_prompts: Sequence[str] = (),
    image_prompts: Sequence[str] = (),
    limit: int | None = None,
    progress: bool = False,
    backend: str = "local",
    address: str | None = None,
    workers: int | None = None,
    gpus_per_worker: float = 0,
    **options: Any,
) -> ProbeResult:
    """Probe a model layer by layer on prompts, as ``entprobe probe`` does.

    Args:
        model: hub id or local folder (loaded here), or an adapter from :func:`load_model`.
        prompts: see :func:`prompt_sets`; each set is probed at the levels its
            modality takes part in.
        levels: ``"prompt"``, ``"prompt,text-gen"`` ...; default: every level the
            adapter supports for the prompts given.
        store: results store to write (resumed when it holds the run); ``None``:
            a temporary store, read into memory and removed.
        text_prompts, image_prompts: SPECs taken as by the command's flags (only
            the records of that modality).
        limit: first ``limit`` records of each prompt set.
        progress: show a progress bar.
        backend: ``"local"`` (this process) or ``"ray"`` (see
            :func:`entprobe.pipeline.ray_backend.probe_on_ray`; needs a model path).
        address, workers, gpus_per_worker: Ray options.
        options: any option by name (``device``, ``dtype``, ``shard``, ``batch_size``,
            ``include_special``, ``save_grams``, ``alpha``, ``max_new_tokens`` ...; see
            ``docs/options.md``) or a whole group (``estimator=``, ``generation=``,
            ``load=``, ``options=``), as :func:`entprobe.pipeline.load_and_probe` takes them.

    Returns:
        A :class:`ProbeResult`.

    Raises:
        ProbeInputError, UnsupportedError, DatasetError, ModelLoadError,
        StoreLockedError: as ``entprobe probe``, before the model is loaded.

    Example:
        >>> result = probe("tiny-llama/", ["a red cube", "two cats"], levels="prompt")  # doctest: +SKIP
        >>> result.prompt_entropies(wide=True).shape  # doctest: +SKIP
        (2, 3)
    """
    from .models.base import ModelAdapter
    from .store import ResultStore

    sets = prompt_sets(prompts, limit=limit) if prompts is not None else []
    text_sets, image_sets = _by_modality(sets)
    kwargs = dict(
        options,
        text_prompts=[*text_prompts, *text_sets],
        image_prompts=[*image_prompts, *image_sets],
        levels=levels,
        limit=limit,
        progress=progress,
    )
    if not kwargs["text_prompts"] and not kwargs["image_prompts"]:
        raise ProbeInputError("no prompts given; pass prompts, text_prompts or image_prompts")
    with tempfile.TemporaryDirectory(prefix="entprobe-") as tmp:
        path = Path(store) if store is not None else Path(tmp) / "results.duckdb"
        if backend == "ray":
            if isinstance(model, ModelAdapter):
                raise ProbeInputError("backend='ray' loads the model in each worker; pass its path")
            from .pipeline.ray_backend import probe_on_ray

            summary = probe_on_ray(
                model=str(model),
                store=path,
                address=address,
                workers=workers,
                gpus_per_worker=gpus_per_worker,
                **kwargs,
            )
        elif backend == "local":
            from .pipeline.probe import load_and_probe

            model_arg = model if isinstance(model, ModelAdapter) else str(model)
            summary = load_and_probe(model_arg, path, **kwargs)
        else:
            raise ProbeInputError(f"backend must be 'local' or 'ray', got {backend!r}")
        with ResultStore(path, read_only=True) as results:
            frames = (
                results.layer_metrics(run_id=summary.run_id),
                results.samples(run_id=summary.run_id),
                results.runs(run_id=summary.run_id),
            )
    return ProbeResult(summary.run_id, None if store is None else path, summary, *frames)


# --- reading results ---------------------------------------------------------------


def read_results(source: Source) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(layer_metrics, samples, runs)`` of a store path, several, a
    :class:`ProbeResult`, or those three DataFrames (returned as they are).

    Raises:
        StoreError: a store that does not exist or cannot be read.
        ProbeInputError: a source of another kind.
    """
    import pandas as pd

    from .analysis import load

    if isinstance(source, ProbeResult):
        return source.layer_metrics, source.samples, source.runs
    if isinstance(source, tuple) and len(source) == 3 and all(isinstance(df, pd.DataFrame) for df in source):
        return source
    if isinstance(source, (str, os.PathLike)) or (
        isinstance(source, Iterable) and not isinstance(source, (bytes, Mapping))
    ):
        return load(source)
    raise ProbeInputError(
        f"expected a store path, several, a ProbeResult or (layer_metrics, samples, runs); "
        f"got {type(source).__name__}"
    )


_LONG_COLUMNS = [
    "run_id",
    "model",
    "dataset",
    "sample_id",
    "modality",
    "category",
    "subcategory",
    "length_bucket",
    "level",
    "layer",
    "n_layers",
    "rel_depth",
    "value",
    "n_prompt_tokens",
    "n_response_tokens",
]


def _per_layer(lm: pd.DataFrame, levels: Sequence[str], metric: str, wide: bool) -> pd.DataFrame:
    rows = lm.loc[lm["level"].isin(levels) & (lm["metric"] == metric)].copy()
    rows["rel_depth"] = rows["layer"].astype(float) / rows["n_layers"].astype(float)
    rows = rows[[c for c in _LONG_COLUMNS if c in rows.columns]]
    rows = rows.sort_values(
        ["model", "run_id", "dataset", "sample_id", "level", "layer"], kind="stable"
    ).reset_index(drop=True)
    if not wide:
        return rows
    index = ["model", "dataset", "sample_id"] + (["level"] if len(levels) > 1 else [])
    if rows.groupby(index)["run_id"].nunique().gt(1).any():
        index.insert(1, "run_id")  # one model probed with several settings
    table = rows.pivot_table(index=index, columns="layer", values="value", aggfunc="first")
    table.columns.name = "layer"
    return table


def prompt_entropies(source: Source, *, wide: bool = False) -> pd.DataFrame:
    """Per-layer matrix entropy of each prompt (level ``prompt``), in bits by default.

    Args:
        source: see :func:`read_results`.
        wide: one row per (model, dataset, sample_id), one column per layer
            (0 = embeddings); otherwise one row per sample and layer with its
            category, length bucket, ``rel_depth = layer / n_layers`` and token count.
    """
    lm, _, _ = read_results(source)
    return _per_layer(lm, ["prompt"], "entropy", wide)


def proxies(source: Source, *, level: str | None = None, wide: bool = False) -> pd.DataFrame:
    """Per-layer conditional entropy proxy of the responses (``text-gen``, ``image-gen``).

    Args:
        source: see :func:`read_results`.
        level: ``"text-gen"`` or ``"image-gen"``; default both.
        wide: as for :func:`prompt_entropies` (with a ``level`` index level for both).
    """
    if level not in (None, "text-gen", "image-gen"):
        raise ProbeInputError(f"level must be 'text-gen', 'image-gen' or None, got {level!r}")
    lm, _, _ = read_results(source)
    return _per_layer(lm, [level] if level else ["text-gen", "image-gen"], "conditional_entropy", wide)


def sample_table(source: Source, *, status: str | None = None) -> pd.DataFrame:
    """The ``samples`` table (one row per sample and level, ``status`` ok or failed,
    ``error``, generated text, token counts, times), optionally of one status."""
    if status not in (None, "ok", "failed"):
        raise ProbeInputError(f"status must be 'ok', 'failed' or None, got {status!r}")
    _, samples, _ = read_results(source)
    return samples if status is None else samples.loc[samples["status"] == status].reset_index(drop=True)


def failures(source: Source) -> pd.DataFrame:
    """Failed samples with their model and recorded error (the report's list)."""
    from .analysis import failed_samples

    _, samples, runs = read_results(source)
    return failed_samples(samples, runs)


# --- the report's tables and figures -----------------------------------------------


def embedding_entropy_table(source: Source, *, n_boot: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Table 1: mean embedding entropy per model, modality and prompt type, 95% CI
    (``n_boot`` bootstrap resamples, default the report's)."""
    from .analysis import DEFAULT_N_BOOT
    from .analysis import embedding_entropy_table as table

    return table(read_results(source)[0], n_boot=n_boot or DEFAULT_N_BOOT, seed=seed)


def response_proxy_table(source: Source, *, n_boot: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Table 5: mean conditional-entropy proxy per model and response level, 95% CI."""
    from .analysis import DEFAULT_N_BOOT
    from .analysis import response_proxy_table as table

    return table(read_results(source)[0], n_boot=n_boot or DEFAULT_N_BOOT, seed=seed)


def cross_modal_asymmetry(source: Source, *, early_fraction: float | None = None) -> pd.DataFrame:
    """§5.3: mean text - image prompt entropy over the early layers, per model."""
    from .analysis import DEFAULT_EARLY_FRACTION
    from .analysis import cross_modal_asymmetry as table

    fraction = DEFAULT_EARLY_FRACTION if early_fraction is None else early_fraction
    return table(read_results(source)[0], early_fraction=fraction)


def layer_trajectories(
    source: Source,
    *,
    level: str | Sequence[str] = "prompt",
    metric: str = "entropy",
    by: Sequence[str] = ("modality",),
) -> pd.DataFrame:
    """Mean value per layer and group (Figs. 4-5, §5.3, §6); see
    :func:`entprobe.analysis.layer_trajectories`."""
    from .analysis import layer_trajectories as table

    return table(read_results(source)[0], level=level, metric=metric, by=by)


def length_trend(source: Source) -> pd.DataFrame:
    """Fig. 4 (left): mean embedding entropy of text prompts in length bins."""
    from .analysis import length_trend as trend
    from .analysis import prompt_length_points

    lm, samples, _ = read_results(source)
    return trend(prompt_length_points(lm, samples))


def model_probes(source: Source) -> pd.DataFrame:
    """Per model: the probes correlated with benchmark scores (Table 6)."""
    from .analysis import model_probes as table

    return table(read_results(source)[0])


def run_summary(source: Source) -> pd.DataFrame:
    """One row per run: model, adapter, settings, sample counts."""
    from .analysis import run_summary as table

    _, samples, runs = read_results(source)
    return table(runs, samples)


# The figures: each plot_* reads the source and returns the figure of the report's recipe
# (entprobe.report), so a notebook and the report draw the same rows in the same colours.


def plot_length_entropy(source: Source) -> Figure:
    """Fig. 4 (left): embedding entropy against text prompt length.

    See :func:`entprobe.report.length_entropy_recipe` for the data drawn.
    """
    from .report import length_entropy_recipe

    lm, samples, runs = read_results(source)
    return length_entropy_recipe(lm, samples, runs=runs).figure


def plot_length_layers(source: Source) -> Figure:
    """Fig. 4 (right): layer-wise entropy of short, middle and long text prompts.

    See :func:`entprobe.report.length_layers_recipe` for the data drawn.
    """
    from .report import length_layers_recipe

    lm, _, runs = read_results(source)
    return length_layers_recipe(lm, runs=runs).figure


def plot_prompt_types(source: Source, *, modality: str = "text") -> Figure:
    """Fig. 5: layer-wise entropy per prompt type, one panel per model.

    See :func:`entprobe.report.prompt_types_recipe` for the data drawn.
    """
    from .report import prompt_types_recipe

    lm, _, runs = read_results(source)
    return prompt_types_recipe(lm, runs=runs, modality=modality).figure


def plot_cross_modal(source: Source, *, early_fraction: float | None = None) -> Figure:
    """§5.3: text against image prompt entropy per layer, per model.

    See :func:`entprobe.report.cross_modal_recipe` for the data drawn.
    """
    from .analysis import DEFAULT_EARLY_FRACTION
    from .report import cross_modal_recipe

    fraction = DEFAULT_EARLY_FRACTION if early_fraction is None else early_fraction
    lm, _, runs = read_results(source)
    return cross_modal_recipe(lm, runs=runs, early_fraction=fraction).figure


def plot_response(source: Source) -> Figure:
    """§6: conditional entropy of text against image generation per layer.

    See :func:`entprobe.report.response_recipe` for the data drawn.
    """
    from .report import response_recipe

    lm, _, runs = read_results(source)
    return response_recipe(lm, runs=runs).figure


def write_report(source: Source, out_dir: str | os.PathLike[str], **options: Any) -> Path:
    """The HTML report (as ``entprobe report``) of any source; returns ``report.html``."""
    from .report import build_report

    lm, samples, runs = read_results(source)
    sources = [str(source)] if isinstance(source, (str, os.PathLike)) else []
    return build_report(lm, samples, runs, out_dir, sources=sources, **options)
