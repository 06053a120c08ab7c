"""The embedded default: the whole pipeline on tiny random models and the bundled prompts.

Tiny, seeded, randomly initialised Janus and Emu3 models are built offline from
configs (``entprobe.models.tiny``), saved, and loaded back through the adapters' real
``load()``; they are probed on ``sample:t2i`` and ``sample:mmbench`` at every level;
the report is written from the store. Their numbers exercise the code paths and
mean nothing about real models.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..models.base import GenerationSettings
from .options import ProbeOptions
from .probe import RunSummary, run_probe

__all__ = ["DEMO_FAMILIES", "DemoResult", "run_demo", "summary_table"]

#: The tiny models the demo probes (both understand and generate images).
DEMO_FAMILIES: tuple[str, ...] = ("janus", "emu3")
DEMO_PROMPTS: tuple[tuple[str, str], ...] = (("text", "sample:t2i"), ("image", "sample:mmbench"))
DEMO_LEVELS: tuple[str, ...] = ("prompt", "text-gen", "image-gen")

REAL_CHECKPOINT_EXAMPLE = (
    "entprobe probe --model deepseek-community/Janus-Pro-1B \\\n"
    "    --text-prompts t2i-corebench:/data/T2I-CoReBench/data \\\n"
    "    --image-prompts mmbench:/data/MMBench_DEV_EN.tsv \\\n"
    "    --levels prompt,text-gen,image-gen --store janus-pro-1b.duckdb --device cuda"
)


@dataclass
class DemoResult:
    """What :func:`run_demo` produced."""

    store: Path
    report: Path | None
    runs: list[RunSummary] = field(default_factory=list)
    summary: pd.DataFrame | None = None


def summary_table(layer_metrics: pd.DataFrame, samples: pd.DataFrame) -> pd.DataFrame:
    """Per model, level and modality: samples ok / failed, and the mean value at the
    first layer (embeddings), at the middle and at the last layer.

    Args:
        layer_metrics: the store's ``layer_metrics`` table.
        samples: the store's ``samples`` table.
    """
    keys = ["model", "level", "modality"]
    if layer_metrics.empty:
        return pd.DataFrame(columns=[*keys, "ok", "failed", "layer 0", "middle", "last"])
    lm = layer_metrics.copy()
    lm["depth"] = lm["layer"] / lm["n_layers"]
    rows = []
    for key, grp in lm.groupby(keys, sort=True):
        n_layers = int(grp["n_layers"].max())
        mean_at = grp.groupby("layer")["value"].mean()
        rows.append(
            {
                **dict(zip(keys, key)),
                "layer 0": mean_at.get(0, float("nan")),
                "middle": mean_at.get(n_layers // 2, float("nan")),
                "last": mean_at.get(n_layers, float("nan")),
            }
        )
    table = pd.DataFrame(rows)
    model_of_run = layer_metrics.drop_duplicates("run_id").set_index("run_id")["model"]
    s = samples.assign(model=samples["run_id"].map(model_of_run))
    counts = s.pivot_table(index=keys, columns="status", values="sample_id", aggfunc="count", fill_value=0)
    counts = counts.reindex(columns=["ok", "failed"], fill_value=0).reset_index()
    return counts.merge(table, on=keys, how="left")[[*keys, "ok", "failed", "layer 0", "middle", "last"]]


def run_demo(
    out_dir: str | os.PathLike[str] = "demo-output",
    *,
    families: Sequence[str] = DEMO_FAMILIES,
    limit: int | None = None,
    max_new_tokens: int = 16,
    seed: int = 0,
    report: bool = True,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> DemoResult:
    """Build the tiny models, probe them on the bundled prompt sets, write the report.

    Running it again resumes: finished samples are skipped.

    Args:
        out_dir: receives ``models/``, ``results.duckdb``, ``images/`` and ``report/``.
        families: tiny model families to probe.
        limit: first ``limit`` prompts of each bundled set (default: all).
        max_new_tokens: length of the generated text responses.
        seed: seed of the tiny models' weights and of generation.
        report: write the HTML report at the end.
        progress: show progress bars.
        log: where to print.

    Returns:
        A :class:`DemoResult`.
    """
    from transformers.utils import logging as hf_logging

    from ..datasets import load_prompts
    from ..models.registry import get_adapter
    from ..models.tiny import build_tiny
    from ..store import ResultStore

    # Building and loading tiny models is not news: keep transformers' bars and
    # warnings out of the demo's output.
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    store_path = out / "results.duckdb"
    prompt_sets = []
    for _, spec in DEMO_PROMPTS:
        ps = load_prompts(spec, limit=limit)
        prompt_sets.append(ps)
    datasets = tuple(f"{modality}:{spec}" for modality, spec in DEMO_PROMPTS)
    generation = GenerationSettings(max_new_tokens=max_new_tokens, seed=seed)

    result = DemoResult(store=store_path, report=None)
    with ResultStore(store_path) as store:
        for family in families:
            model_dir = build_tiny(family, out / "models" / family, seed=seed)
            adapter = get_adapter(family).load(str(model_dir))
            log(
                f"\n== tiny random {family}: {adapter.n_layers} layers, "
                f"{sum(p.numel() for p in adapter.model.parameters()):,} parameters =="
            )
            options = ProbeOptions(
                generation=generation,
                save_images=out / "images",
                model=f"tiny-random-{family}",
                datasets=datasets,
                extra={"demo": True, "seed": seed},
            )
            summary = run_probe(
                adapter, prompt_sets, levels=DEMO_LEVELS, store=store, options=options, progress=progress
            )
            log(summary.report())
            result.runs.append(summary)
        result.summary = summary_table(store.layer_metrics(), store.samples())
    if report:
        from ..report import write_report

        result.report = write_report([store_path], out / "report", title="entprobe demo (tiny random models)")
    return result
