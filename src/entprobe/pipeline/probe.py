"""The probe loop: prompt records x levels -> adapter -> estimators -> store.

:func:`run_probe` takes an adapter that is already loaded (tests pass fakes or tiny
models); :func:`probe_from_cli` checks everything it can (levels against the
adapter's capabilities, prompt sets, estimator options, the store's lock) before it
loads the model, then calls :func:`run_probe`.

Per record, the model runs once per mode it needs: for a text prompt, one text
generation (prefill, generation, one teacher-forced pass over ``[prompt; response]``)
whose prompt part also serves the prompt level, and one image generation; without
``text-gen``, one forward pass over the prompt. Each level is estimated for all
layers in one batched call, from the float64 linear Gram of the states (the same
numbers ``entprobe reestimate`` recomputes from saved Grams), and written with its
rows in one transaction, so a killed run loses at most the sample in flight.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._threads import ThreadGovernor
from ..capture import Role
from ..errors import EntprobeError, ModelLoadError, ProbeInputError, StoreError, UnsupportedError
from ..models._stepwise import StepwiseImageAdapter, parse_response_steps, resolve_response_steps
from ..models.base import Encoded, Generation, GenerationSettings, ModelAdapter
from ..store import ResultStore
from ..store.grams import pending_grams, publish_gram, published_path, read_gram_meta, safe_name, save_gram
from ..store.schema import LEVEL_METRIC, LEVELS
from ._bounds import layer_values, metric_value
from ._overlap import EstimationQueue, Job
from .options import (
    MODALITY_LEVELS,
    EstimatorOptions,
    ProbeOptions,
    config_hash,
    in_shard,
    package_versions,
    parse_levels,
    parse_shard,
    parse_thresholds,
    run_id_for,
)

__all__ = ["RunSummary", "probe_from_cli", "required_capabilities", "run_probe"]

#: Longest error message kept in the store.
_MAX_ERROR = 2000


@dataclass
class RunSummary:
    """What a probe (or re-estimation) run did.

    Attributes:
        run_id: the run's id in the store.
        store: the store's path.
        n_records: prompt records in this process's shard.
        n_pending: records that had at least one level left to do.
        n_skipped: (sample, level) pairs already in the store, not redone.
        n_ok, n_failed: (sample, level) pairs written in this session.
        failures: ``(dataset, sample_id, level, error)`` of this session's failures.
        model_seconds: time in the model (loading excluded).
        estimate_seconds: time in the estimators (Gram and entropies); with
            ``overlap`` it runs on a worker thread while the model works.
        wait_seconds: model idle: time the loop waited for the estimation to catch up.
        wall_seconds: the whole loop, store writes and image loading included.
        batch_size, overlap: how the run was batched.
        n_batch_retries: batched model calls that raised and were retried per sample.
    """

    run_id: str
    store: str
    n_records: int = 0
    n_pending: int = 0
    n_skipped: int = 0
    n_ok: int = 0
    n_failed: int = 0
    failures: list[tuple[str, str, str, str]] = field(default_factory=list)
    model_seconds: float = 0.0
    estimate_seconds: float = 0.0
    wait_seconds: float = 0.0
    wall_seconds: float = 0.0
    batch_size: int = 1
    overlap: bool = False
    n_batch_retries: int = 0

    def report(self, max_failures: int = 5) -> str:
        """A few lines for the end of a run: counts, failures, the time split."""
        lines = [
            f"run {self.run_id} -> {self.store}",
            f"  {self.n_records} sample(s) in this shard; {self.n_ok} (sample, level) ok, "
            f"{self.n_failed} failed, {self.n_skipped} already done",
        ]
        for dataset, sample_id, level, error in self.failures[:max_failures]:
            lines.append(f"  failed {dataset}/{sample_id} [{level}]: {error.splitlines()[0][:200]}")
        if len(self.failures) > max_failures:
            lines.append(
                f"  ... and {len(self.failures) - max_failures} more failure(s) (see the samples table)"
            )
        total = max(self.wall_seconds, 1e-9)
        if self.overlap:
            # estimation ran beside the model: the loop's own time is model + waiting + the rest
            other = max(self.wall_seconds - self.model_seconds - self.wait_seconds, 0.0)
            est = f"estimation {self.estimate_seconds:.1f} s on a worker thread, beside the model"
            idle = (
                f"model idle (waiting for estimation) {self.wait_seconds:.1f} s "
                f"({100 * self.wait_seconds / total:.0f}%), estimator idle "
                f"{max(self.wall_seconds - self.estimate_seconds, 0.0):.1f} s"
            )
        else:
            other = max(self.wall_seconds - self.model_seconds - self.estimate_seconds, 0.0)
            est = f"estimation {self.estimate_seconds:.1f} s ({100 * self.estimate_seconds / total:.0f}%)"
            idle = f"model idle during estimation {self.estimate_seconds:.1f} s"
        lines.append(
            f"  time: model {self.model_seconds:.1f} s ({100 * self.model_seconds / total:.0f}%), "
            f"{est}, {idle}, other {other:.1f} s; total {self.wall_seconds:.1f} s "
            f"(batch size {self.batch_size})"
        )
        if self.n_batch_retries:
            lines.append(f"  {self.n_batch_retries} batch(es) raised and were redone one sample at a time")
        return "\n".join(lines)


class SampleFailure(Exception):
    """A sample that cannot be probed; the message is recorded as its error."""


# --- planning ------------------------------------------------------------------------


def required_capabilities(levels: Iterable[str], modalities: Iterable[str]) -> dict[str, str]:
    """Adapter capabilities needed for ``levels`` over records of ``modalities``,
    each with the reason (for the error message)."""
    levels, modalities = set(levels), set(modalities)
    need: dict[str, str] = {}
    if "text" in modalities:
        if "prompt" in levels:
            need.setdefault("text-prompt", "prompt level of text prompts")
        if "text-gen" in levels:
            need.setdefault("text-gen", "text-gen level of text prompts")
        if "image-gen" in levels:
            need.setdefault("image-gen", "image-gen level of text prompts")
    if "image" in modalities and levels & {"prompt", "text-gen"}:
        need.setdefault("image-prompt", "image prompts")
        if "text-gen" in levels:
            need.setdefault("text-gen", "text-gen level of image prompts")
    return need


def check_plan(
    capabilities: Iterable[str],
    adapter_name: str,
    levels: Sequence[str],
    modalities: Iterable[str],
    reasons: Mapping[str, str] | None = None,
) -> None:
    """Raise before any work when the levels cannot be probed.

    Raises:
        ProbeInputError: a level that no given prompt set takes part in.
        UnsupportedError: a capability the adapter lacks.
    """
    modalities = set(modalities)
    for level in levels:
        if not any(level in MODALITY_LEVELS[m] for m in modalities):
            wanted = "text prompts (--text-prompts)" if level == "image-gen" else "prompts"
            raise ProbeInputError(f"level {level!r} needs {wanted}; got only {sorted(modalities)} prompts")
    capabilities = set(capabilities)
    missing = {
        c: why for c, why in required_capabilities(levels, modalities).items() if c not in capabilities
    }
    if missing:
        have = ", ".join(sorted(capabilities)) or "nothing"
        need = "; ".join(f"{c!r} (for the {why})" for c, why in missing.items())
        because = "".join(f". No {c!r}: {(reasons or {})[c]}" for c in missing if c in (reasons or {}))
        raise UnsupportedError(
            f"adapter {adapter_name!r} does not support {need}; it supports: {have}{because}"
        )


def check_device(device: str) -> None:
    """Fail before any model work if ``device`` is malformed or not available here.

    Raises:
        ProbeInputError: naming the device and what this torch build offers.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ProbeInputError(f"--device {device!r} is not a torch device ({exc})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ProbeInputError(
                f"--device {device!r}: CUDA is not available to this torch "
                f"({torch.__version__}, built for CUDA {torch.version.cuda or 'none'})"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ProbeInputError(
                f"--device {device!r}: only {torch.cuda.device_count()} CUDA device(s) are visible"
            )
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ProbeInputError(f"--device {device!r}: MPS is not available on this machine")


def _normalized_source(source: str) -> str:
    path = Path(source).expanduser()
    return str(path.resolve()) if source and path.exists() else source


def _gram_config(
    adapter: ModelAdapter, levels: Sequence[str], options: ProbeOptions, datasets: Sequence[str]
) -> dict[str, Any]:
    """What determines the states (and so the Grams): model identity, adapter,
    levels, generation settings (when a response level runs), special tokens,
    prompt sets. Not the shard, limit, device or output folders."""
    identity = dict(adapter.identity())
    identity["source"] = _normalized_source(str(identity.get("source") or adapter.source))
    identity["revision"] = options.revision
    config: dict[str, Any] = {
        "model": identity,
        "adapter": adapter.name,
        "levels": list(levels),
        "include_special": bool(options.include_special),
        "datasets": list(datasets),
    }
    if set(levels) & {"text-gen", "image-gen"}:
        config["generation"] = options.generation.to_dict()
    if "image-gen" in levels and isinstance(adapter, StepwiseImageAdapter):
        # Only step-wise generators record it, so other adapters' run ids are unchanged.
        config["image_response"] = adapter.image_response_config(
            options.image_response_steps, options.generation
        )
    if options.last_layer != "raw":  # absent at the default, so earlier run ids hold
        config["last_layer"] = options.last_layer
    return config


def check_image_options(adapter: Any, name: str, generation: GenerationSettings) -> None:
    """``--image-steps`` / ``--image-size`` need an adapter (class or instance) whose
    ``image_options`` name them.

    Raises:
        ProbeInputError: naming the options the adapter does not take.
    """
    honoured = getattr(adapter, "image_options", frozenset())
    bad = [
        k for k in ("image_steps", "image_size") if getattr(generation, k) is not None and k not in honoured
    ]
    if bad:
        flags = ", ".join("--" + k.replace("_", "-") for k in bad)
        raise ProbeInputError(f"{flags}: adapter {name!r} does not take it (see `entprobe models`)")


def check_response_steps(adapter: ModelAdapter, levels: Sequence[str], options: ProbeOptions) -> None:
    """``--image-response-step`` other than ``final`` needs the image-gen level and a
    step-wise image generator, with steps within its number of steps;
    ``--image-steps`` / ``--image-size`` need an adapter that takes them.

    Raises:
        ProbeInputError: naming what does not fit.
    """
    check_image_options(adapter, adapter.name, options.generation)
    steps = options.image_response_steps
    if steps == "final":
        return
    if "image-gen" not in levels:
        raise ProbeInputError(
            f"--image-response-step {steps!r} applies to the image-gen level, which is not probed"
        )
    if not isinstance(adapter, StepwiseImageAdapter):
        raise ProbeInputError(
            f"--image-response-step {steps!r}: adapter {adapter.name!r} generates images token by token; "
            "only step-wise generators (MaskGIT, MAR, flow) have denoising steps"
        )
    resolve_response_steps(steps, adapter.n_image_steps(options.generation))


def _lengths(adapter: ModelAdapter, records: Sequence[Any]) -> dict[str, int]:
    lengths = {}
    for rec in records:
        if rec.modality != "text" or not rec.text.strip():
            continue
        try:
            lengths[rec.id] = int(adapter.count_tokens(rec.text))
        except Exception:  # a prompt the tokenizer rejects fails later, with its reason
            continue
    return lengths


# --- the loop ------------------------------------------------------------------------


def run_probe(
    adapter: ModelAdapter,
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

    levels = parse_levels(levels)
    records_all = [rec for ps in prompt_sets for rec in ps.records]
    modalities = {rec.modality for rec in records_all}
    if not records_all:
        raise ProbeInputError("no prompt records to probe")
    check_plan(adapter.capabilities, adapter.name, levels, modalities, getattr(adapter, "unsupported", None))
    check_response_steps(adapter, levels, options)
    final_norm = adapter.final_norm() if options.last_layer == "normed" else None
    seen: dict[tuple[str, str], str] = {}
    for rec in records_all:
        key = (rec.dataset, rec.id)
        if key in seen:
            raise ProbeInputError(
                f"two prompt records share dataset {rec.dataset!r} and id {rec.id!r} "
                f"({seen[key]} and {rec.source or rec.modality}); sample ids must be unique per dataset"
            )
        seen[key] = rec.source or rec.modality

    datasets = (
        list(options.datasets)
        if options.datasets is not None
        else [str(getattr(ps, "spec", None) or ps.name) for ps in prompt_sets]
    )
    gram_config = _gram_config(adapter, levels, options, datasets)
    gram_id = config_hash(gram_config)
    run_id = run_id_for(gram_config, options.estimator)
    model_name = options.model or adapter.source or gram_config["model"]["source"]
    config = {
        **gram_config,
        "estimator": options.estimator.to_dict(),
        "run_id": run_id,
        "gram_id": gram_id,
        "model_name": model_name,
        "device": str(adapter.device),
        "versions": package_versions(),
        "session": {
            "shard": None if options.shard is None else f"{options.shard[0]}/{options.shard[1]}",
            "retry_failed": options.retry_failed,
            "length_thresholds": options.length_thresholds,
            "save_grams": None if options.save_grams is None else str(options.save_grams),
            "save_images": None if options.save_images is None else str(options.save_images),
            "batch_size": options.batch_size,
            "overlap": options.overlap,
            **options.extra,
        },
    }
    config["last_layer"] = options.last_layer

    # Length buckets over each whole prompt set (before sharding), so that shards agree.
    buckets: dict[tuple[str, str], str] = {}
    lengths: dict[tuple[str, str], int] = {}
    from ..datasets import length_buckets

    for ps in prompt_sets:
        set_lengths = _lengths(adapter, ps.records)
        by_dataset: dict[str, dict[str, int]] = {}
        for rec in ps.records:
            if rec.id in set_lengths:
                by_dataset.setdefault(rec.dataset, {})[rec.id] = set_lengths[rec.id]
        for dataset, ds_lengths in by_dataset.items():
            for sid, bucket in length_buckets(ds_lengths, options.length_thresholds).items():
                buckets[(dataset, sid)] = bucket
            lengths.update({(dataset, sid): n for sid, n in ds_lengths.items()})

    # What this session is to do, so `entprobe status` can show progress against it.
    config["session"]["planned_pairs"] = sum(
        sum(lv in MODALITY_LEVELS[rec.modality] for lv in levels)
        for rec in records_all
        if in_shard(rec.dataset, rec.id, options.shard)
    )
    store.start_run(run_id, model_name, adapter.name, config)
    if options.save_grams is not None:
        _reconcile_grams(options.save_grams, gram_id, store, options.shard)
    done = store.done_keys(run_id, status="ok" if options.retry_failed else None)
    summary = RunSummary(
        run_id=run_id, store=str(store.path), batch_size=options.batch_size, overlap=options.overlap
    )
    work: list[tuple[Any, list[str]]] = []
    for rec in records_all:
        if not in_shard(rec.dataset, rec.id, options.shard):
            continue
        summary.n_records += 1
        applicable = [lv for lv in levels if lv in MODALITY_LEVELS[rec.modality]]
        pending = [lv for lv in applicable if (rec.dataset, rec.id, lv) not in done]
        summary.n_skipped += len(applicable) - len(pending)
        if pending:
            work.append((rec, pending))
    summary.n_pending = len(work)

    runner = _Runner(
        adapter=adapter,
        store=store,
        options=options,
        summary=summary,
        run_id=run_id,
        gram_id=gram_id,
        model_name=model_name,
        config=config,
        gram_config=gram_config,
        buckets=buckets,
        lengths=lengths,
        final_norm=final_norm,
    )
    start = time.perf_counter()
    bar = tqdm(
        total=len(work),
        unit="sample",
        desc="probe",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
        smoothing=0.1,
    )
    runner.queue = EstimationQueue(runner._estimate_job, overlap=options.overlap, device=adapter.device)
    # Model and estimator compute at once on the CPU when overlapped: they share the cores.
    governor = ThreadGovernor(share=2 if options.overlap and adapter.device.type == "cpu" else 1)
    try:
        for batch in _batches(work, options.batch_size):
            runner.process_batch(batch)
            bar.update(len(batch))
            bar.set_postfix(ok=summary.n_ok, failed=summary.n_failed, refresh=False)
            governor.refresh()
        runner.finish()
    finally:
        governor.close()
        runner.queue.close()
        bar.close()
        summary.wait_seconds = runner.queue.wait_seconds
        summary.wall_seconds = time.perf_counter() - start
    store.finish_run(run_id)
    return summary


def _batches(work: Sequence[tuple[Any, list[str]]], size: int) -> Iterable[list[tuple[Any, list[str]]]]:
    """Consecutive records of one modality, at most ``size`` at a time (order kept)."""
    batch: list[tuple[Any, list[str]]] = []
    for item in work:
        if batch and (len(batch) >= size or item[0].modality != batch[0][0].modality):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


def _alive(pid: int | None) -> bool:
    if pid is None or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _reconcile_grams(root: Path, gram_id: str, store: ResultStore, shard: tuple[int, int] | None) -> None:
    """Settle the pending Gram files a killed run left (written, rows maybe not):
    publish those whose ok row is in the store, remove the others. Files of live
    processes and of other shards (other stores may hold their rows) are left alone."""
    done: dict[str, set[tuple[str, str, str]]] = {}
    for path, pid in pending_grams(root, gram_id):
        if _alive(pid):
            continue
        try:
            meta = read_gram_meta(path)
            key = (meta["dataset"], meta["sample_id"], meta["level"])
            run_id = meta["config"]["run_id"]
        except (StoreError, KeyError, TypeError):
            path.unlink(missing_ok=True)  # cut short while being written: its rows never were
            continue
        if not in_shard(key[0], key[1], shard):
            continue
        if run_id not in done:
            done[run_id] = store.done_keys(run_id, status="ok")
        if key in done[run_id] and not published_path(path).exists():
            publish_gram(path)
        else:
            path.unlink(missing_ok=True)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _nonfinite_layers(states: torch.Tensor) -> list[int]:
    bad = ~torch.isfinite(states)
    per_layer = bad.reshape(bad.shape[0], -1).any(dim=1)
    return [int(i) for i in torch.nonzero(per_layer).flatten().tolist()]


def _error_text(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, SampleFailure) else f"{type(exc).__name__}: {exc}"
    return text if len(text) <= _MAX_ERROR else text[: _MAX_ERROR - 3] + "..."


@dataclass
class _Runner:
    adapter: ModelAdapter
    store: ResultStore
    options: ProbeOptions
    summary: RunSummary
    run_id: str
    gram_id: str
    model_name: str
    config: dict[str, Any]
    gram_config: dict[str, Any]
    buckets: dict[tuple[str, str], str]
    lengths: dict[tuple[str, str], int]
    final_norm: torch.nn.Module | None = None

    def _last_layer(self, states: torch.Tensor) -> torch.Tensor:
        """``--last-layer normed``: the final norm applied to the last layer's states
        (``(n_layers + 1, n, d)``; the norm acts per token, so applying it to the
        selected tokens equals selecting from the normed sequence)."""
        if self.final_norm is None:
            return states
        with torch.no_grad():
            last = self.final_norm(states[-1])
        return torch.cat([states[:-1], last.to(states.dtype).unsqueeze(0)], dim=0)

    queue: EstimationQueue | None = None
    batch_index: int = 0

    # --- per batch ----------------------------------------------------------------
    def process_batch(self, items: Sequence[tuple[Any, list[str]]]) -> None:
        """Probe records of one modality together: each model mode (text generation,
        prompt pass, image generation) runs once over the records that need it, and
        each (sample, level) goes to the estimation queue as soon as its states exist.

        Before the model starts on this batch, the estimation of batches older than
        the previous one is finished and written, so at most two batches' states are
        held (the one in the model, the one being estimated).
        """
        settings: GenerationSettings = self.options.generation
        self.batch_index += 1
        current = self.batch_index
        self._write_finished(keep=lambda job: job.tag[3] >= current - 1)
        ready: list[tuple[Any, list[str], Any]] = []
        for rec, pending in items:
            image = None
            try:
                if rec.modality == "image":
                    try:
                        image = rec.load_image()
                    except Exception as exc:
                        raise SampleFailure(f"unreadable image: {exc}") from exc
                else:
                    self._check_text(rec)
            except SampleFailure as exc:
                for level in pending:
                    self._fail(rec, level, exc, {})
                continue
            ready.append((rec, pending, image))

        texts = [x for x in ready if "text-gen" in x[1]]
        gens = self._run_model(
            texts,
            "text-gen",
            lambda xs: self.adapter.generate_texts(
                [r.text for r, _, _ in xs],
                images=[im for _, _, im in xs] if any(im is not None for _, _, im in xs) else None,
                settings=settings,
            ),
            lambda x: self.adapter.generate_text(x[0].text, image=x[2], settings=settings),
        )
        gen_of = {id(x[0]): gens[i] for i, x in enumerate(texts) if i in gens}
        to_encode = [x for x in ready if "prompt" in x[1] and id(x[0]) not in gen_of]
        if to_encode and to_encode[0][2] is not None:
            encoded = self._run_model(
                to_encode,
                "prompt",
                lambda xs: self.adapter.encode_images([im for _, _, im in xs], [r.text for r, _, _ in xs]),
                lambda x: self.adapter.encode_image(x[2], x[0].text),
            )
        else:
            encoded = self._run_model(
                to_encode,
                "prompt",
                lambda xs: self.adapter.encode_texts([r.text for r, _, _ in xs]),
                lambda x: self.adapter.encode_text(x[0].text),
            )
        enc_of = {id(x[0]): encoded[i] for i, x in enumerate(to_encode) if i in encoded}
        for rec, pending, _ in ready:
            if "prompt" in pending:
                gen = gen_of.get(id(rec))
                # The teacher-forced pass already holds the prompt's states.
                prompt = (gen[0].prompt, 0.0) if gen is not None else enc_of.get(id(rec))
                if prompt is not None:
                    self._prompt_level(rec, *prompt)
            if id(rec) in gen_of:
                self._response_level(rec, "text-gen", *gen_of[id(rec)])
        gens = gen_of = encoded = enc_of = None  # type: ignore[assignment]
        self._write_finished()

        images = [x for x in ready if "image-gen" in x[1]]
        made = self._run_model(
            images,
            "image-gen",
            lambda xs: (
                [self._generate_image(r.text, settings) for r, _, _ in xs]
                if isinstance(self.adapter, StepwiseImageAdapter)
                else self.adapter.generate_images([r.text for r, _, _ in xs], settings=settings)
            ),
            lambda x: self._generate_image(x[0].text, settings),
        )
        for i, (rec, _, _) in enumerate(images):
            if i in made:
                self._response_level(rec, "image-gen", *made[i])
        self._write_finished()

    def finish(self) -> None:
        """Wait for the estimation still running and write it."""
        if self.queue is not None:
            self._write(self.queue.drain())

    def _run_model(
        self,
        items: list[Any],
        level: str,
        batched: Callable[[list[Any]], list[Any]],
        single: Callable[[Any], Any],
    ) -> dict[int, tuple[Any, float]]:
        """Run ``batched(items)`` as one model call (each item is charged an equal share
        of its time); if it raises (one bad sample, out of memory), run ``single`` on
        each item, so that only the samples that fail alone are recorded as failed."""
        if not items:
            return {}
        if len(items) > 1:
            device = self.adapter.device
            start = time.perf_counter()
            try:
                outs = batched(items)
                _sync(device)
                if len(outs) != len(items):
                    raise RuntimeError(f"the adapter returned {len(outs)} results for {len(items)} samples")
            except StoreError:
                raise
            except Exception:
                self.summary.model_seconds += time.perf_counter() - start
                self.summary.n_batch_retries += 1
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            else:
                seconds = time.perf_counter() - start
                self.summary.model_seconds += seconds
                return {i: (out, seconds / len(items)) for i, out in enumerate(outs)}
        results = {}
        for i, item in enumerate(items):
            out = self._model(item[0], level, lambda item=item: single(item))
            if out is not None:
                results[i] = out
        return results

    def _generate_image(self, text: str, settings: GenerationSettings) -> Generation:
        if isinstance(self.adapter, StepwiseImageAdapter):
            return self.adapter.generate_image(
                text, settings=settings, response_steps=self.options.image_response_steps
            )
        return self.adapter.generate_image(text, settings=settings)

    def _check_text(self, rec: Any) -> None:
        if not rec.text or not rec.text.strip():
            raise SampleFailure("empty prompt")
        max_context = self.adapter.max_context
        n = self.lengths.get((rec.dataset, rec.id))
        if max_context is not None and n is not None and n > max_context:
            raise SampleFailure(
                f"prompt too long: {n} tokens, more than the model's context of {max_context}"
            )

    def _model(self, rec: Any, level: str, call: Callable[[], Any]) -> tuple[Any, float] | None:
        """Run one model call, timed; record ``level`` as failed if it raises."""
        device = self.adapter.device
        start = time.perf_counter()
        try:
            out = call()
            _sync(device)
        except StoreError:
            raise
        except Exception as exc:
            seconds = time.perf_counter() - start
            self.summary.model_seconds += seconds
            self._fail(rec, level, exc, {"model_seconds": seconds})
            if device.type == "cuda":
                torch.cuda.empty_cache()
            return None
        seconds = time.perf_counter() - start
        self.summary.model_seconds += seconds
        return out, seconds

    # --- levels -------------------------------------------------------------------
    def _content_roles(self, rec: Any) -> tuple[Role, ...]:
        keep = (Role.IMAGE,) if rec.modality == "image" else (Role.TEXT,)
        return keep + ((Role.SPECIAL,) if self.options.include_special else ())

    def _prompt_level(self, rec: Any, enc: Encoded, model_seconds: float) -> None:
        info: dict[str, Any] = {"model_seconds": model_seconds}
        try:
            states = self._last_layer(enc.select(self._content_roles(rec)))
            info["n_prompt_tokens"] = int(states.shape[-2])
            if states.shape[-2] == 0:
                raise SampleFailure("the prompt has no content tokens")
            self._check_states(states, "prompt")
        except StoreError:
            raise
        except Exception as exc:
            self._fail(rec, "prompt", exc, info)
            return
        self._submit(rec, "prompt", states, None, info)

    def _response_level(self, rec: Any, level: str, gen: Generation, model_seconds: float) -> None:
        info: dict[str, Any] = {"model_seconds": model_seconds, "generated_text": gen.text}
        try:
            if level == "image-gen" and gen.image is not None and self.options.save_images is not None:
                info["image_path"] = self._save_image(rec, gen.image)
            prompt_states = self._last_layer(gen.prompt.content(include_special=self.options.include_special))
            response_states = self._last_layer(gen.response_states())
            info["n_prompt_tokens"] = int(prompt_states.shape[-2])
            info["n_response_tokens"] = int(response_states.shape[-2])
            if response_states.shape[-2] == 0:
                raise SampleFailure("generation yielded no response tokens")
            if prompt_states.shape[-2] == 0:
                raise SampleFailure("the prompt has no content tokens")
            self._check_states(prompt_states, "prompt")
            self._check_states(response_states, "response")
            states = torch.cat([prompt_states, response_states], dim=-2)
            steps = self._step_states(gen, prompt_states)
        except StoreError:
            raise
        except Exception as exc:
            self._fail(rec, level, exc, info)
            return
        info["n_steps"] = gen.n_steps if steps else None
        self._submit(rec, level, states, int(prompt_states.shape[-2]), info, steps)

    # --- estimation (overlapped) ----------------------------------------------------
    def _submit(
        self,
        rec: Any,
        level: str,
        states: torch.Tensor,
        n_prompt: int | None,
        info: dict[str, Any],
        steps: Mapping[int, torch.Tensor] | None = None,
    ) -> None:
        assert self.queue is not None
        steps = dict(steps or {})
        self.queue.submit(
            Job(
                payload=(states, n_prompt, steps),
                tag=(rec, level, info, self.batch_index),
                tensors=(states, *steps.values()),
            )
        )

    def _estimate_job(
        self, payload: tuple[torch.Tensor, int | None, dict[int, torch.Tensor]]
    ) -> tuple[np.ndarray, Any, float, dict[int, tuple[np.ndarray, int, float]]]:
        """The level's values and Gram, and those of each denoising step (worker thread)."""
        states, n_prompt, steps = payload
        values, gram, seconds = self._estimate(states, n_prompt)
        return values, gram, seconds, self._step_values(steps, n_prompt)

    def _write_finished(self, keep: Callable[[Job], bool] | None = None) -> None:
        if self.queue is not None:
            self._write(self.queue.finished(keep=keep))

    def _write(self, jobs: list[Job]) -> None:
        for job in jobs:
            rec, level, info, _ = job.tag
            n_steps = info.pop("n_steps", None)
            if job.error is not None:
                if isinstance(job.error, StoreError | KeyboardInterrupt | SystemExit):
                    raise job.error
                self._fail(rec, level, job.error, info)
                continue
            values, gram, seconds, steps = job.result
            info["estimate_seconds"] = seconds + sum(s for _, _, s in steps.values())
            n_prompt = None if level == "prompt" else int(info["n_prompt_tokens"])
            self._write_ok(rec, level, values, gram, n_prompt, info, steps=steps, n_steps=n_steps)

    def _step_states(self, gen: Generation, prompt_states: torch.Tensor) -> dict[int, torch.Tensor]:
        """Per requested denoising step: ``[prompt; response at that step]`` states."""
        out: dict[int, torch.Tensor] = {}
        for step, response in sorted((gen.step_states or {}).items()):
            response = self._last_layer(response.to(prompt_states.device))
            self._check_states(response, f"response at step {step}")
            out[step] = torch.cat([prompt_states, response], dim=-2)
        return out

    def _step_values(
        self, steps: Mapping[int, torch.Tensor], n_prompt: int | None
    ) -> dict[int, tuple[np.ndarray, int, float]]:
        """Per denoising step: the conditional entropy of that step's response states
        given the (teacher-forced) prompt states."""
        out: dict[int, tuple[np.ndarray, int, float]] = {}
        for step, states in steps.items():
            values, _, seconds = self._estimate(states, n_prompt)
            out[step] = (values, int(states.shape[-2]) - int(n_prompt or 0), seconds)
        return out

    @staticmethod
    def _check_states(states: torch.Tensor, what: str) -> None:
        bad = _nonfinite_layers(states)
        if bad:
            shown = bad if len(bad) <= 10 else bad[:10] + ["..."]
            raise SampleFailure(f"non-finite hidden states ({what}) at layer(s) {shown}")

    def _estimate(self, states: torch.Tensor, n_prompt: int | None) -> tuple[np.ndarray, Any, float]:
        from ..estimators import (
            conditional_entropy,
            conditional_entropy_from_gram,
            linear_gram,
            matrix_entropy,
            matrix_entropy_from_gram,
        )

        start = time.perf_counter()
        gram = None
        try:
            if self.options.save_grams is not None:
                # The Gram is stored, so the estimate is made from it (what `reestimate`
                # reads back). Centred: the estimators are translation invariant and this
                # keeps the float64 round-off relative to the tokens' spread.
                gram = linear_gram(states, centre=True)
                if n_prompt is None:
                    values = matrix_entropy_from_gram(gram, **self.options.estimator.entropy_kwargs())
                else:
                    values = conditional_entropy_from_gram(
                        gram, n_prompt, **self.options.estimator.conditional_kwargs()
                    )
            elif n_prompt is None:
                # From the states: the same numbers to round-off, and when the states have
                # fewer features than tokens the PCA is a d x d eigenproblem, not n x n.
                values = matrix_entropy(states, **self.options.estimator.entropy_kwargs())
            else:
                values = conditional_entropy(
                    states[..., :n_prompt, :],
                    states[..., n_prompt:, :],
                    **self.options.estimator.conditional_kwargs(),
                )
            values = layer_values(values)
        finally:
            seconds = time.perf_counter() - start
            self.summary.estimate_seconds += seconds
        bad = [i for i, v in enumerate(values) if not np.isfinite(v).all()]
        if bad:
            raise SampleFailure(f"the estimator gave non-finite values at layer(s) {bad}")
        return values, gram, seconds

    def _save_image(self, rec: Any, image: Any) -> str:
        folder = Path(self.options.save_images) / safe_name(self.gram_id) / safe_name(rec.dataset)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{safe_name(rec.id)}.png"
        tmp = folder / f".{path.name}.{os.getpid()}.tmp"
        try:
            image.save(tmp, format="PNG")
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
        return str(path.resolve())

    # --- writing ------------------------------------------------------------------
    def _sample_row(self, rec: Any, level: str, info: Mapping[str, Any]) -> dict[str, Any]:
        row = {
            "run_id": self.run_id,
            "dataset": rec.dataset,
            "sample_id": rec.id,
            "level": level,
            "modality": rec.modality,
            "category": rec.category,
            "subcategory": rec.subcategory,
            "length_bucket": self.buckets.get((rec.dataset, rec.id)),
            "n_chars": rec.n_chars,
            "prompt_text": rec.text,
        }
        row.update(info)
        return row

    def _write_ok(
        self,
        rec: Any,
        level: str,
        values: np.ndarray,
        gram: Any,
        n_prompt: int | None,
        info: dict[str, Any],
        *,
        steps: Mapping[int, tuple[np.ndarray, int, float]] | None = None,
        n_steps: int | None = None,
    ) -> None:
        row = self._sample_row(rec, level, info)
        row.update(status="ok", error=None)
        n_layers = len(values) - 1
        metric = LEVEL_METRIC[level]
        metrics = [
            {
                "model": self.model_name,
                "adapter": self.adapter.name,
                "layer": layer,
                "n_layers": n_layers,
                "metric": metric,
                **metric_value(v),
            }
            for layer, v in enumerate(values)
        ]
        step_rows = [
            {
                "model": self.model_name,
                "adapter": self.adapter.name,
                "step": step,
                "n_steps": n_steps,
                "layer": layer,
                "n_layers": n_layers,
                "metric": metric,
                "value": metric_value(v)["value"],
                "n_response_tokens": n_response,
            }
            for step, (step_values, n_response, _) in (steps or {}).items()
            for layer, v in enumerate(step_values)
        ]
        if self.options.save_grams is not None:
            meta = {
                **{k: v for k, v in row.items() if k not in ("status", "error", "created_at")},
                "model": self.model_name,
                "adapter": self.adapter.name,
                "n_layers": n_layers,
                "gram_id": self.gram_id,
                "gram_config": self.gram_config,
                "config": self.config,
            }
            # Pending name, rows, then the rename: a kill at any point leaves no Gram
            # without rows (see _reconcile_grams for the one left pending).
            pending = save_gram(self.options.save_grams, gram, meta=meta, n_prompt=n_prompt, publish=False)
            try:
                self.store.write_sample(row, metrics, step_rows)
            except BaseException:
                pending.unlink(missing_ok=True)
                raise
            publish_gram(pending)
        else:
            self.store.write_sample(row, metrics, step_rows)
        self.summary.n_ok += 1

    def _fail(self, rec: Any, level: str, exc: BaseException, info: Mapping[str, Any]) -> None:
        row = self._sample_row(rec, level, info)
        error = _error_text(exc)
        row.update(status="failed", error=error)
        self.store.write_sample(row, [])
        self.summary.n_failed += 1
        self.summary.failures.append((rec.dataset, rec.id, level, error))


# --- from the command line -------------------------------------------------------------


def probe_from_cli(
    *,
    model: str | ModelAdapter,
    store: str | os.PathLike[str] | ResultStore,
    adapter: str | None = None,
    text_prompts: Sequence[str] = (),
    image_prompts: Sequence[str] = (),
    levels: str | Sequence[str] | None = None,
    limit: int | None = None,
    shard: str | tuple[int, int] | None = None,
    device: str = "cpu",
    dtype: str = "auto",
    trust_remote_code: bool = False,
    revision: str | None = None,
    include_special: bool = False,
    save_images: str | os.PathLike[str] | None = None,
    save_grams: str | os.PathLike[str] | None = None,
    retry_failed: bool = False,
    estimator: EstimatorOptions | Mapping[str, Any] | None = None,
    generation: GenerationSettings | Mapping[str, Any] | None = None,
    length_thresholds: str | tuple[int, int] | None = None,
    upstream_src: str | os.PathLike[str] | None = None,
    image_response_step: str | Sequence[int] | None = None,
    batch_size: int = 1,
    overlap: bool = True,
    last_layer: str = "raw",
    allow_outside_paths: bool = False,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> RunSummary:
    """Check everything, then load the model and run :func:`run_probe`.

    Order: levels, adapter (by name, or detected from the model's config without
    loading weights), capabilities against levels and prompt modalities, estimator
    options, prompt sets, output folders (created and proved writable), the store
    (its lock and ownership; the file itself is created on the first write), the
    checkpoint's safetensors files; only then the model. A failure before the first
    sample leaves no store behind.

    Args:
        model: hub id or local path, or an adapter already loaded (the Python API's
            :func:`entprobe.probe` passes one; then nothing is loaded).
        store: the results store (created if missing), or a store already open for
            writing (left open).
        adapter: adapter name; default: detected from the model's config.
        text_prompts, image_prompts: prompt-set SPECs (see ``entprobe datasets``),
            or :class:`~entprobe.datasets.PromptSet` objects already loaded.
        levels: default: every level the adapter supports for the given prompts.
        limit: first ``limit`` records of each prompt set.
        shard: ``"K/N"``.
        trust_remote_code: passed to loading only when True.
        revision: passed to loading only when given.
        estimator, generation: options (dataclasses or mappings of their fields).
        length_thresholds: ``"a,b"`` or ``(a, b)``.
        upstream_src: a checkout of the family's upstream code (adapters with an
            ``upstream``; default: ``$ENTPROBE_<FAMILY>_SRC`` or the installed package).
        image_response_step: ``final`` | ``all`` | ``K[,K...]`` (step-wise generators).
        batch_size: samples run through the model together (see ``ProbeOptions``).
        overlap: estimate on a worker thread while the model runs.
        last_layer: ``"raw"`` or ``"normed"`` (see :class:`ProbeOptions`).
        allow_outside_paths: let image paths of CSV/JSONL prompt files point outside
            the file's folder.
        log: where to write the load reports (default: stderr).

    Raises:
        ProbeInputError, UnsupportedError, ModelLoadError, DatasetError,
        StoreLockedError: before the model is loaded, with a message naming the
        problem.
    """
    from ..datasets import PromptSet, load_prompts
    from ..models._checkpoint import check_safetensors_files
    from ..models.registry import detect_adapter, get_adapter

    say = log or (lambda text: print(text, file=sys.stderr))
    text_prompts, image_prompts = list(text_prompts or ()), list(image_prompts or ())
    if not text_prompts and not image_prompts:
        raise ProbeInputError("no prompts given; pass --text-prompts and/or --image-prompts")
    if isinstance(shard, str) or shard is None:
        shard = parse_shard(shard)
    if isinstance(length_thresholds, str) or length_thresholds is None:
        length_thresholds = parse_thresholds(length_thresholds)
    est = (
        estimator
        if isinstance(estimator, EstimatorOptions)
        else EstimatorOptions().updated(**dict(estimator or {}))
    )
    gen = (
        generation
        if isinstance(generation, GenerationSettings)
        else GenerationSettings(**dict(generation or {}))
    )

    loaded = model if isinstance(model, ModelAdapter) else None
    if loaded is not None:
        adapter_name, adapter_cls, model = loaded.name, type(loaded), str(loaded.source)
    else:
        adapter_name = adapter or detect_adapter(
            model, trust_remote_code=trust_remote_code, revision=revision
        )
        adapter_cls = get_adapter(adapter_name)
    if upstream_src is not None and adapter_cls.upstream is None:
        raise ProbeInputError(
            f"--upstream-src: adapter {adapter_name!r} does not use upstream code "
            "(it loads through transformers)"
        )
    check_image_options(adapter_cls, adapter_name, gen)
    response_steps = parse_response_steps(image_response_step)
    if response_steps != "final" and not issubclass(adapter_cls, StepwiseImageAdapter):
        raise ProbeInputError(
            f"--image-response-step {image_response_step!r}: adapter {adapter_name!r} generates images "
            "token by token; only step-wise generators (MaskGIT, MAR, flow) have denoising steps"
        )
    modalities = {"text"} if text_prompts else set()
    if image_prompts:
        modalities.add("image")
    if levels is None:
        supported = set(adapter_cls.capabilities)
        levels = tuple(
            lv
            for lv in LEVELS
            if any(lv in MODALITY_LEVELS[m] for m in modalities)
            and all(c in supported for c in required_capabilities([lv], modalities))
        )
        if not levels:
            raise UnsupportedError(
                f"adapter {adapter_name!r} supports no level for {sorted(modalities)} prompts "
                f"(it supports: {', '.join(sorted(supported)) or 'nothing'})"
            )
    levels = parse_levels(levels)
    check_plan(adapter_cls.capabilities, adapter_name, levels, modalities, adapter_cls.unsupported)
    est.check()
    check_device(device)

    prompt_sets = []
    for spec, modality in [(s, "text") for s in text_prompts] + [(s, "image") for s in image_prompts]:
        flag = "--text-prompts" if modality == "text" else "--image-prompts"
        if isinstance(spec, PromptSet):
            ps, spec = spec, spec.spec
        else:
            ps = load_prompts(spec, limit=limit, allow_outside_paths=allow_outside_paths)
        if ps.skipped:
            say(ps.report())
        if not ps.records:
            raise ProbeInputError(f"{flag} {spec!r} has no usable prompts\n{ps.report()}")
        # A set may mix modalities (RealUnify): each flag takes its own.
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
        prompt_sets.append((f"{modality}:{spec}", ps))
    datasets = tuple(key for key, _ in prompt_sets)
    prompt_sets = [ps for _, ps in prompt_sets]

    options = ProbeOptions(
        estimator=est,
        generation=gen,
        include_special=include_special,
        shard=shard,
        retry_failed=retry_failed,
        save_grams=None if save_grams is None else Path(save_grams),
        save_images=None if save_images is None else Path(save_images),
        length_thresholds=length_thresholds,
        model=model,
        revision=revision,
        datasets=datasets,
        image_response_steps=response_steps,
        batch_size=batch_size,
        overlap=overlap,
        extra={
            "limit": limit,
            "dtype": dtype,
            "trust_remote_code": trust_remote_code,
            "allow_outside_paths": allow_outside_paths,
        },
        last_layer=last_layer,
    )
    from .._outputs import writable_folder

    if options.save_grams is not None:
        writable_folder(options.save_grams, "--save-grams folder")
    if options.save_images is not None:
        if "image-gen" not in levels:
            say("note: --save-images is unused without the image-gen level")
        writable_folder(options.save_images, "--save-images folder")

    with nullcontext(store) if isinstance(store, ResultStore) else ResultStore(store) as results:
        if loaded is not None:
            return run_probe(
                loaded, prompt_sets, levels=levels, store=results, options=options, progress=progress
            )
        check_safetensors_files(model)
        load_kwargs: dict[str, Any] = {"device": device, "dtype": dtype}
        if trust_remote_code:
            load_kwargs["trust_remote_code"] = True
        if revision is not None:
            load_kwargs["revision"] = revision
        if upstream_src is not None:
            load_kwargs["upstream_src"] = str(upstream_src)
        say(f"loading {model} with adapter {adapter_name!r} on {device} ...")
        try:
            loaded = adapter_cls.load(model, **load_kwargs)
        except EntprobeError:
            raise
        except Exception as exc:  # e.g. safetensors' or torch's own errors on a bad checkpoint
            raise ModelLoadError(
                f"adapter {adapter_name!r} cannot load {model!r}: {type(exc).__name__}: {exc}. "
                f"Check that the checkpoint is complete (download it again if in doubt); "
                f"nothing was written"
            ) from exc
        return run_probe(
            loaded, prompt_sets, levels=levels, store=results, options=options, progress=progress
        )
