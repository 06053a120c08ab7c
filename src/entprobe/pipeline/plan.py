"""Build a run, then run it: the frozen plan of a probe.

:func:`make_plan` turns a loaded adapter, prompt sets, levels and
:class:`~entprobe.pipeline.options.ProbeOptions` into a :class:`ProbePlan`: the
levels, every record with the levels it takes part in, the length buckets, the run
configuration and the run id. It checks everything that needs no forward pass and
touches no store; the runner (:mod:`entprobe.pipeline.runner`) only executes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._spec import run_id_dict
from ..errors import ProbeInputError
from .checks import check_generation, check_levels
from .options import (
    MODALITY_LEVELS,
    ProbeOptions,
    config_hash,
    in_shard,
    package_versions,
    parse_levels,
    run_id_for,
)

__all__ = ["ProbePlan", "WorkItem", "make_plan"]


@dataclass(frozen=True)
class WorkItem:
    """One prompt record and the levels still to do for it (in canonical order)."""

    record: Any
    levels: tuple[str, ...]


@dataclass(frozen=True)
class ProbePlan:
    """Everything a probe run will do, decided before the first sample.

    Attributes:
        levels: the levels asked for, in canonical order.
        records: every record of the prompt sets, in order (all shards).
        options: the run's options.
        gram_config: what determines the states (and so the Grams): model identity,
            adapter, levels, generation settings (when a response level runs), the
            image response definition (step-wise generators), special tokens, prompt
            sets, ``last_layer`` when not the default. Not the shard, limit, device
            or output folders.
        gram_id: hash of ``gram_config`` (names the Gram folder of the run).
        run_id: hash of ``gram_config`` and the estimator options.
        model_name: the model's name in the store.
        config: the run configuration written to the store (``gram_config`` plus the
            estimator options, ids, device, package versions and the session).
        buckets: ``(dataset, sample_id) -> "short" | "middle" | "long"`` (text prompts).
        lengths: ``(dataset, sample_id) -> tokens`` of each text prompt.
    """

    levels: tuple[str, ...]
    records: tuple[Any, ...]
    options: ProbeOptions
    gram_config: Mapping[str, Any]
    gram_id: str
    run_id: str
    model_name: str
    config: Mapping[str, Any]
    buckets: Mapping[tuple[str, str], str]
    lengths: Mapping[tuple[str, str], int]

    def levels_of(self, record: Any) -> tuple[str, ...]:
        """The plan's levels that ``record``'s modality takes part in."""
        return tuple(lv for lv in self.levels if lv in MODALITY_LEVELS[record.modality])

    def in_shard(self, record: Any) -> bool:
        return in_shard(record.dataset, record.id, self.options.shard)

    def work(self, done: set[tuple[str, str, str]]) -> tuple[list[WorkItem], int, int]:
        """``(work, n_records, n_skipped)``: this shard's records with levels not in
        ``done`` (``(dataset, sample_id, level)`` keys), its record count, and the
        (sample, level) pairs already done."""
        work, n_records, n_skipped = [], 0, 0
        for rec in self.records:
            if not self.in_shard(rec):
                continue
            n_records += 1
            applicable = self.levels_of(rec)
            pending = tuple(lv for lv in applicable if (rec.dataset, rec.id, lv) not in done)
            n_skipped += len(applicable) - len(pending)
            if pending:
                work.append(WorkItem(rec, pending))
        return work, n_records, n_skipped


def make_plan(
    adapter: Any, prompt_sets: Sequence[Any], levels: str | Sequence[str], options: ProbeOptions
) -> ProbePlan:
    """Check and plan a probe of ``adapter`` on ``prompt_sets``.

    Raises:
        ProbeInputError: an unknown level, a level none of the records takes part in,
            two records with the same (dataset, id), or generation options the adapter
            does not take.
        UnsupportedError: a capability the adapter lacks.
    """
    levels = parse_levels(levels)
    records = tuple(rec for ps in prompt_sets for rec in ps.records)
    if not records:
        raise ProbeInputError("no prompt records to probe")
    modalities = {rec.modality for rec in records}
    check_levels(adapter.capabilities, adapter.name, levels, modalities, adapter.unsupported)
    check_generation(adapter, levels, options)
    if options.image_response_steps != "final":
        adapter.response_steps(options.image_response_steps, options.generation)
    _check_unique(records)

    datasets = options.datasets
    if datasets is None:
        datasets = tuple(str(getattr(ps, "spec", None) or ps.name) for ps in prompt_sets)
    gram_config = _gram_config(adapter, levels, options, datasets)
    gram_id = config_hash(gram_config)
    run_id = run_id_for(gram_config, options.estimator)
    model_name = options.model or adapter.source or gram_config["model"]["source"]
    buckets, lengths = _length_buckets(adapter, prompt_sets, options.length_thresholds)
    planned = sum(
        sum(lv in MODALITY_LEVELS[rec.modality] for lv in levels)
        for rec in records
        if in_shard(rec.dataset, rec.id, options.shard)
    )
    config = {
        **gram_config,
        "estimator": options.estimator.to_dict(),
        "run_id": run_id,
        "gram_id": gram_id,
        "model_name": model_name,
        "device": str(adapter.device),
        "versions": package_versions(),
        # What this session is to do, so `entprobe status` can show progress against it.
        "session": {**options.session(), "planned_pairs": planned},
        "last_layer": options.last_layer,
    }
    return ProbePlan(
        levels=levels, records=records, options=options, gram_config=gram_config, gram_id=gram_id,
        run_id=run_id, model_name=model_name, config=config, buckets=buckets, lengths=lengths,
    )  # fmt: skip


def _check_unique(records: Sequence[Any]) -> None:
    seen: dict[tuple[str, str], str] = {}
    for rec in records:
        key = (rec.dataset, rec.id)
        if key in seen:
            raise ProbeInputError(
                f"two prompt records share dataset {rec.dataset!r} and id {rec.id!r} "
                f"({seen[key]} and {rec.source or rec.modality}); sample ids must be unique per dataset"
            )
        seen[key] = rec.source or rec.modality


def _normalized_source(source: str) -> str:
    path = Path(source).expanduser()
    return str(path.resolve()) if source and path.exists() else source


def _gram_config(
    adapter: Any, levels: Sequence[str], options: ProbeOptions, datasets: Sequence[str]
) -> dict[str, Any]:
    identity = dict(adapter.identity())
    identity["source"] = _normalized_source(str(identity.get("source") or adapter.source))
    identity["revision"] = options.revision
    config: dict[str, Any] = {"model": identity, "adapter": adapter.name, "levels": list(levels)}
    # The probe options that shape the states (include_special; last_layer when set).
    config.update(run_id_dict(options))
    config["datasets"] = list(datasets)
    if set(levels) & {"text-gen", "image-gen"}:
        config["generation"] = options.generation.to_dict()
    prompt = adapter.prompt_config(options.generation)
    if prompt is not None:  # settings that reach the prompt states (Harmon's image-prompt size)
        config["prompt"] = prompt
    response = adapter.image_response_config(options.image_response_steps, options.generation)
    if "image-gen" in levels and response is not None:
        # Step-wise generators only, so the run ids of the others are as before.
        config["image_response"] = response
    return config


def _length_buckets(
    adapter: Any, prompt_sets: Sequence[Any], thresholds: tuple[int, int] | None
) -> tuple[dict[tuple[str, str], str], dict[tuple[str, str], int]]:
    """Length buckets over each whole prompt set (before sharding, so shards agree)."""
    from ..datasets import length_buckets

    buckets: dict[tuple[str, str], str] = {}
    lengths: dict[tuple[str, str], int] = {}
    for ps in prompt_sets:
        by_dataset: dict[str, dict[str, int]] = {}
        for rec in ps.records:
            if rec.modality != "text" or not rec.text.strip():
                continue
            try:
                n = int(adapter.count_tokens(rec.text))
            except Exception:  # a prompt the tokenizer rejects fails later, with its reason
                continue
            by_dataset.setdefault(rec.dataset, {})[rec.id] = n
        for dataset, ds_lengths in by_dataset.items():
            for sid, bucket in length_buckets(ds_lengths, thresholds).items():
                buckets[(dataset, sid)] = bucket
            lengths.update({(dataset, sid): n for sid, n in ds_lengths.items()})
    return buckets, lengths
