"""The probe: prompt records x levels -> adapter -> estimators -> store.

- :func:`run_probe` probes an adapter that is already loaded (tests pass fakes or
  tiny models): plan (:mod:`.plan`), then run (:mod:`.runner`), writing through
  :class:`~.writer.SampleWriter`.
- :func:`load_and_probe` (the command's and the notebook API's entry point; the old
  name ``probe_from_cli`` is kept as an alias for one release) resolves the options,
  checks everything it can before loading the model (levels against the adapter's
  capabilities, prompt sets, estimator and generation options, output folders, the
  store's lock), loads the model, then calls :func:`run_probe`.

Per record the model runs once per mode it needs (see :mod:`.runner`); each level is
estimated for all layers in one batched call and written with its rows in one
transaction, so a killed run loses at most the sample in flight. Running the same
configuration again resumes: (sample, level) pairs already in the store are skipped.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from .._spec import replace_checked, specs
from .._threads import ThreadGovernor
from ..errors import EntprobeError, ProbeInputError
from ..models.requests import GenerationSettings, LoadOptions
from ..store import ResultStore
from .checks import check_device, check_generation, check_levels, default_levels, required_capabilities
from .options import MODALITY_LEVELS, EstimatorOptions, ProbeOptions, parse_levels
from .plan import make_plan
from .runner import Runner, batches
from .summary import RunSummary, SampleFailure
from .writer import SampleWriter, reconcile_grams

__all__ = [
    "MODALITY_LEVELS",
    "RunSummary",
    "SampleFailure",
    "load_and_probe",
    "option_group",
    "probe_from_cli",
    "required_capabilities",
    "resolve_options",
    "run_probe",
]


def run_probe(
    adapter: Any,
    prompt_sets: Sequence[Any],
    *,
    levels: str | Sequence[str],
    store: ResultStore,
    options: ProbeOptions = ProbeOptions(),
    progress: bool = True,
) -> RunSummary:
    """Probe ``adapter`` on the records of ``prompt_sets`` and write the results.

    Running it again with the same configuration resumes the run: (sample, level)
    pairs already in the store are skipped (failed ones too, unless
    ``options.retry_failed``).

    Args:
        adapter: a loaded model adapter.
        prompt_sets: :class:`~entprobe.datasets.PromptSet` objects (``records``,
            ``name``, ``spec``).
        levels: ``"prompt,text-gen,image-gen"`` or a sequence of them.
        store: a store open for writing.
        options: see :class:`ProbeOptions`.
        progress: show a tqdm progress bar on stderr.

    Returns:
        A :class:`RunSummary`.

    Raises:
        ProbeInputError: an unknown level, a level none of the records takes part
            in, or two records with the same (dataset, id).
        UnsupportedError: a capability the adapter lacks.
        StoreError: the store cannot be written.
    """
    from tqdm.auto import tqdm

    plan = make_plan(adapter, prompt_sets, levels, options)
    final_norm = adapter.final_norm() if options.last_layer == "normed" else None
    store.start_run(plan.run_id, plan.model_name, adapter.name, plan.config)
    if options.save_grams is not None:
        reconcile_grams(options.save_grams, plan.gram_id, store, options.shard)
    done = store.done_keys(plan.run_id, status="ok" if options.retry_failed else None)
    work, n_records, n_skipped = plan.work(done)
    summary = RunSummary(
        run_id=plan.run_id, store=str(store.path), batch_size=options.batch_size, overlap=options.overlap,
        n_records=n_records, n_pending=len(work), n_skipped=n_skipped,
    )  # fmt: skip
    writer = SampleWriter(
        store, summary, model_name=plan.model_name, adapter_name=adapter.name, grams=options.save_grams,
        gram_meta={"gram_id": plan.gram_id, "gram_config": plan.gram_config, "config": plan.config},
    )  # fmt: skip
    runner = Runner(adapter, plan, writer, summary, final_norm)
    start = time.perf_counter()
    bar = tqdm(
        total=len(work), unit="sample", desc="probe", disable=not progress,
        file=sys.stderr, dynamic_ncols=True, smoothing=0.1,
    )  # fmt: skip
    # Model and estimator compute at once on the CPU when overlapped: they share the cores.
    governor = ThreadGovernor(share=2 if options.overlap and adapter.device.type == "cpu" else 1)
    try:
        for batch in batches(work, options.batch_size):
            runner.process_batch(batch)
            bar.update(len(batch))
            bar.set_postfix(ok=summary.n_ok, failed=summary.n_failed, refresh=False)
            governor.refresh()
        runner.finish()
    finally:
        governor.close()
        runner.close()
        bar.close()
        summary.wait_seconds = runner.queue.wait_seconds if runner.queue is not None else 0.0
        summary.wall_seconds = time.perf_counter() - start
    store.finish_run(plan.run_id)
    return summary


#: The option groups a flat keyword of :func:`load_and_probe` may belong to.
_GROUPS: dict[str, type] = {
    "options": ProbeOptions,
    "load": LoadOptions,
    "generation": GenerationSettings,
    "estimator": EstimatorOptions,
}


def resolve_options(
    *,
    options: ProbeOptions | Mapping[str, Any] | None = None,
    load: LoadOptions | Mapping[str, Any] | None = None,
    generation: GenerationSettings | Mapping[str, Any] | None = None,
    estimator: EstimatorOptions | Mapping[str, Any] | None = None,
    **flat: Any,
) -> ProbeOptions:
    """One :class:`ProbeOptions` from the groups (objects or mappings of their
    fields) and flat keywords, each routed to the group that declares it
    (``batch_size=4, dtype="bfloat16", alpha=2.0, seed=3``). A name two groups
    declare (``seed``: generation and estimator) goes to the first in the order
    probe, load, generation, estimator; the estimator's is also ``estimator_seed``.

    Raises:
        ProbeInputError: a keyword no group declares.
    """
    base = options if isinstance(options, ProbeOptions) else ProbeOptions()
    parts: dict[str, dict[str, Any]] = {
        "options": {} if isinstance(options, ProbeOptions) else dict(options or {}),
        "load": _fields(load),
        "generation": _fields(generation),
        "estimator": _fields(estimator),
    }
    if "estimator_seed" in flat:
        parts["estimator"]["seed"] = flat.pop("estimator_seed")
    for name, value in flat.items():
        parts[option_group(name)][name] = value
    return replace_checked(
        base,
        {
            **parts["options"],
            "load": LoadOptions.of(base.load, **parts["load"]),
            "generation": replace_checked(base.generation, parts["generation"], what="generation"),
            "estimator": base.estimator.updated(**parts["estimator"]),
        },
        what="probe",
    )


def option_group(name: str) -> str:
    """The group a flat option name belongs to (``"options"``, ``"load"``,
    ``"generation"`` or ``"estimator"``; the first that declares it).

    Raises:
        ProbeInputError: a name no group declares.
    """
    for key, cls in _GROUPS.items():
        if name in _names(cls):
            return key
    known = sorted(set().union(*(_names(cls) for cls in _GROUPS.values())) | {"estimator_seed"})
    raise ProbeInputError(f"unknown probe option {name!r}; known: {', '.join(known)}")


def _names(group: type) -> set[str]:
    return {f.name for f, _ in specs(group)}


def _fields(value: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(value):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    return dict(value or {})


def load_and_probe(
    model: str | os.PathLike[str] | Any,
    store: str | os.PathLike[str] | ResultStore,
    *,
    text_prompts: Sequence[Any] = (),
    image_prompts: Sequence[Any] = (),
    levels: str | Sequence[str] | None = None,
    adapter: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    **options: Any,
) -> RunSummary:
    """Check everything, then load the model and run :func:`run_probe`.

    Order: levels, adapter (by name, or detected from the model's config without
    loading weights), capabilities against levels and prompt modalities, generation
    and estimator options, device, prompt sets, output folders (created and proved
    writable), the store (its lock and ownership; the file itself is created on the
    first write), the checkpoint's safetensors files; only then the model. A failure
    before the first sample leaves no store behind.

    Args:
        model: hub id or local path, or an adapter already loaded (the notebook API's
            :func:`entprobe.probe` may pass one; then nothing is loaded).
        store: the results store (created if missing), or a store open for writing.
        text_prompts, image_prompts: prompt-set SPECs (see ``entprobe datasets``),
            or :class:`~entprobe.datasets.PromptSet` objects already loaded.
        levels: default: every level the adapter supports for the given prompts.
        adapter: adapter name; default: detected from the model's config.
        progress: show a progress bar.
        log: where to write the load reports (default: stderr).
        options: the option groups ``options=``, ``load=``, ``generation=``,
            ``estimator=`` (objects or mappings), and/or any option by name (see
            :func:`resolve_options` and ``docs/options.md``), e.g. ``device="cuda"``,
            ``batch_size=8``, ``save_grams="grams/"``, ``image_response_steps="all"``.

    Raises:
        ProbeInputError, UnsupportedError, ModelLoadError, DatasetError,
        StoreLockedError: before the model is loaded, with a message naming the
        problem.
    """
    from ..models._checkpoint import check_config_keys, check_safetensors_files
    from ..models._load_errors import explain_load_error
    from ..models.registry import detect_adapter, get_adapter

    say = log or (lambda text: print(text, file=sys.stderr))
    if not text_prompts and not image_prompts:
        raise ProbeInputError("no prompts given; pass --text-prompts and/or --image-prompts")
    opts = resolve_options(**options)
    # A path names a checkpoint to load; anything else is an adapter already loaded.
    loaded = None if isinstance(model, (str, os.PathLike)) else model
    if loaded is not None:
        adapter_cls, model = type(loaded), str(loaded.source)
    else:
        model = str(model)
        name = adapter or detect_adapter(
            model, trust_remote_code=opts.load.trust_remote_code, revision=opts.load.revision
        )
        adapter_cls = get_adapter(name)
    adapter_cls.check_load_options(opts.load)
    modalities = ({"text"} if text_prompts else set()) | ({"image"} if image_prompts else set())
    levels = parse_levels(levels) if levels is not None else default_levels(adapter_cls, modalities)
    check_levels(adapter_cls.capabilities, adapter_cls.name, levels, modalities, adapter_cls.unsupported)
    check_generation(adapter_cls, levels, opts)
    opts.estimator.check()
    check_device(opts.load.device)

    prompt_sets = _prompt_sets(text_prompts, image_prompts, opts, say)
    opts = dataclasses.replace(opts, model=opts.model or model, datasets=tuple(key for key, _ in prompt_sets))
    _check_folders(opts, levels, say)
    with nullcontext(store) if isinstance(store, ResultStore) else ResultStore(store) as results:
        if loaded is None:
            check_safetensors_files(model)
            check_config_keys(model)
            say(f"loading {model} with adapter {adapter_cls.name!r} on {opts.load.device} ...")
            try:
                loaded = adapter_cls.load(model, opts.load)
            except EntprobeError:
                raise
            except Exception as exc:  # safetensors', torch's, an upstream builder's own errors
                raise explain_load_error(exc, adapter=adapter_cls.name, source=model) from exc
        sets = [ps for _, ps in prompt_sets]
        return run_probe(loaded, sets, levels=levels, store=results, options=opts, progress=progress)


def probe_from_cli(**kwargs: Any) -> RunSummary:
    """The old name of :func:`load_and_probe` (kept for one release). Its
    ``image_response_step=`` keyword is ``image_response_steps`` now."""
    if "image_response_step" in kwargs:
        kwargs["image_response_steps"] = kwargs.pop("image_response_step")
    return load_and_probe(kwargs.pop("model"), kwargs.pop("store"), **kwargs)


def _prompt_sets(
    text_prompts: Sequence[Any], image_prompts: Sequence[Any], opts: ProbeOptions, say: Callable[[str], None]
) -> list[tuple[str, Any]]:
    """``(f"{modality}:{spec}", PromptSet)`` per flag value: loaded, reported, and cut
    to that flag's modality (a set may mix them, e.g. RealUnify)."""
    from ..datasets import PromptSet, load_prompts

    out = []
    for spec, modality in [(s, "text") for s in text_prompts] + [(s, "image") for s in image_prompts]:
        flag = "--text-prompts" if modality == "text" else "--image-prompts"
        if isinstance(spec, PromptSet):
            ps, spec = spec, spec.spec
        else:
            ps = load_prompts(spec, limit=opts.limit, allow_outside_paths=opts.allow_outside_paths)
        if ps.skipped:
            say(ps.report())
        if not ps.records:
            raise ProbeInputError(f"{flag} {spec!r} has no usable prompts\n{ps.report()}")
        kept = [r for r in ps.records if r.modality == modality]
        if not kept:
            found = sorted({r.modality for r in ps.records})
            raise ProbeInputError(f"{flag} {spec!r} holds only {found} prompts; expected {modality} prompts")
        if len(kept) < len(ps.records):
            say(
                f"{flag} {spec}: probing its {len(kept)} {modality} prompt(s), "
                f"leaving {len(ps.records) - len(kept)} of another modality"
            )
            ps = dataclasses.replace(ps, records=kept)
        out.append((f"{modality}:{spec}", ps))
    return out


def _check_folders(opts: ProbeOptions, levels: Sequence[str], say: Callable[[str], None]) -> None:
    from .._outputs import writable_folder

    if opts.save_grams is not None:
        writable_folder(Path(opts.save_grams), "--save-grams folder")
    if opts.save_images is not None:
        if "image-gen" not in levels:
            say("note: --save-images is unused without the image-gen level")
        writable_folder(Path(opts.save_images), "--save-images folder")
