"""Re-estimation without the model: metrics from the Gram files of ``--save-grams``.

Each Gram file carries the configuration that produced its states (``gram_config``)
and the estimator options of the run that saved it. The new run's id is the hash of
``gram_config`` and the new estimator options, exactly as :func:`run_probe` computes
it, so re-estimating with the options of the original run gives the original run id
and, on the same device, the original values bit for bit (the probe estimates from
the same float64 Gram).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import StoreError
from ..store import ResultStore
from ..store.grams import iter_gram_files, load_gram, read_gram_meta
from ..store.schema import SAMPLES_COLUMNS
from .estimate import values_from_gram
from .options import EstimatorOptions, package_versions, run_id_for
from .summary import RunSummary
from .writer import SampleWriter

__all__ = ["reestimate"]

_SAMPLE_FIELDS = tuple(
    c
    for c in SAMPLES_COLUMNS
    if c not in ("run_id", "status", "error", "created_at", "model_seconds", "estimate_seconds")
)


def reestimate(
    grams: str | os.PathLike[str],
    store: ResultStore,
    *,
    estimator: Mapping[str, Any] | None = None,
    device: str = "cpu",
    retry_failed: bool = False,
    progress: bool = True,
) -> list[RunSummary]:
    """Recompute the metrics of every Gram file under ``grams`` into ``store``.

    Args:
        grams: the ``--save-grams`` folder of one or more probe runs.
        store: a store open for writing (may be the original store: a run id that
            is already there resumes, (sample, level) pairs it holds are skipped).
        estimator: estimator options to change (``{"alpha": 2.0, "pca_dim": None}``);
            the others are those of the run that saved each Gram.
        device: where to estimate (``"cpu"``, ``"cuda"``).
        retry_failed: recompute (sample, level) pairs recorded as failed.
        progress: show a progress bar.

    Returns:
        One :class:`RunSummary` per run written.

    Raises:
        StoreError: no Gram files, or an unreadable one.
        ProbeInputError: an estimator option out of range (before any work).
    """
    from tqdm.auto import tqdm

    root = Path(grams)
    files = list(iter_gram_files(root))
    if not files:
        raise StoreError(f"no Gram files (*.safetensors) under {root}")
    overrides = dict(estimator or {})
    EstimatorOptions().updated(**overrides).check()

    # Plan: one new run per original configuration.
    runs: dict[str, dict[str, Any]] = {}
    plan: list[tuple[Path, str, EstimatorOptions]] = []
    unreadable: list[tuple[Path, str]] = []
    for path in files:
        try:
            meta = read_gram_meta(path)
            old = meta["config"]
            meta["gram_config"], meta["model"], meta["adapter"]
        except (StoreError, KeyError, TypeError) as exc:
            # Not even the metadata: there is no (sample, level) to record it under.
            unreadable.append((path, str(exc) if isinstance(exc, StoreError) else f"metadata lacks {exc}"))
            continue
        old = meta["config"]
        est = EstimatorOptions.from_dict(old["estimator"]).updated(**overrides)
        run_id = run_id_for(meta["gram_config"], est)
        if run_id not in runs:
            config = {
                **old,
                "estimator": est.to_dict(),
                "run_id": run_id,
                "device": device,
                "versions": package_versions(),
                "session": {"reestimated_from": {"run_id": old.get("run_id"), "grams": str(root)}},
            }
            summary = RunSummary(run_id=run_id, store=str(store.path))
            runs[run_id] = {
                "model": meta["model"],
                "adapter": meta["adapter"],
                "config": config,
                "summary": summary,
                "writer": SampleWriter(
                    store, summary, model_name=meta["model"], adapter_name=meta["adapter"]
                ),
            }
        plan.append((path, run_id, est))

    if not plan:
        shown = "; ".join(f"{p}: {why}" for p, why in unreadable[:3])
        raise StoreError(f"none of the {len(files)} Gram file(s) under {root} can be read ({shown})")
    done: dict[str, set[tuple[str, str, str]]] = {}
    for run_id, run in runs.items():
        store.start_run(run_id, run["model"], run["adapter"], run["config"])
        done[run_id] = store.done_keys(run_id, status="ok" if retry_failed else None)

    start = time.perf_counter()
    bar = tqdm(
        total=len(plan),
        unit="gram",
        desc="reestimate",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    from .._threads import ThreadGovernor

    governor = ThreadGovernor()  # follows load that starts or stops during a long re-estimate
    try:
        for path, run_id, est in plan:
            governor.refresh()
            summary: RunSummary = runs[run_id]["summary"]
            meta = read_gram_meta(path)
            key = (meta["dataset"], meta["sample_id"], meta["level"])
            bar.update(1)
            if key in done[run_id]:
                summary.n_skipped += 1
                continue
            done[run_id].add(key)
            summary.n_records += 1
            row = {c: meta.get(c) for c in _SAMPLE_FIELDS}
            row.update(run_id=run_id, model_seconds=None)
            t0 = time.perf_counter()
            try:
                # A damaged file (truncated, say) fails this sample only, as in probe.
                record = load_gram(path)
                values = values_from_gram(torch.from_numpy(record.gram).to(device), record.n_prompt, est)
            except Exception as exc:
                seconds = time.perf_counter() - t0
                summary.estimate_seconds += seconds
                runs[run_id]["writer"].failed({**row, "estimate_seconds": seconds}, exc)
                continue
            seconds = time.perf_counter() - t0
            summary.estimate_seconds += seconds
            runs[run_id]["writer"].ok({**row, "estimate_seconds": seconds}, values)
    finally:
        governor.close()
        bar.close()
        wall = time.perf_counter() - start
    summaries = [run["summary"] for run in runs.values()]
    for run_id, run in runs.items():
        run["summary"].wall_seconds = wall
        store.finish_run(run_id)
    if unreadable:
        first = summaries[0]
        for path, why in unreadable:
            first.n_failed += 1
            first.failures.append(("-", str(path), "-", f"unreadable Gram file: {why}"))
    return summaries
