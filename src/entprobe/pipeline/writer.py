"""Writing finished (sample, level) pairs: rows, failures, and the Gram files.

:class:`SampleWriter` is shared by the probe and ``entprobe reestimate``: each pair
is one ``samples`` row with its ``layer_metrics`` rows (and ``step_metrics`` rows for
denoising steps), written in one transaction, so a killed run loses at most the pair
in flight. A failed pair is a ``samples`` row with its error and no metrics.

With ``--save-grams`` the Gram is written first under a pending name, then the rows,
then the file is renamed to its final name: a kill at any point leaves no Gram
without rows. :func:`reconcile_grams` settles the pending files a killed run left.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import StoreError
from ..store import ResultStore
from ..store.grams import pending_grams, publish_gram, published_path, read_gram_meta, save_gram
from ..store.schema import LEVEL_METRIC
from .estimate import metric_value, step_rows
from .options import in_shard
from .summary import RunSummary, error_text

__all__ = ["SampleWriter", "reconcile_grams"]


class SampleWriter:
    """Writes the pairs of one run into ``store`` and counts them in ``summary``.

    Args:
        store: a store open for writing.
        summary: the run's :class:`RunSummary` (``n_ok``, ``n_failed``, ``failures``).
        model_name, adapter_name: the ``model`` and ``adapter`` columns of the metric rows.
        grams: the ``--save-grams`` folder, or None.
        gram_meta: what every Gram file records besides its row (``gram_id``,
            ``gram_config``, ``config``).
    """

    def __init__(
        self,
        store: ResultStore,
        summary: RunSummary,
        *,
        model_name: str,
        adapter_name: str,
        grams: Path | None = None,
        gram_meta: Mapping[str, Any] | None = None,
    ) -> None:
        self.store, self.summary = store, summary
        self.model_name, self.adapter_name = model_name, adapter_name
        self.grams, self.gram_meta = grams, dict(gram_meta or {})

    def ok(
        self,
        row: Mapping[str, Any],
        values: np.ndarray,
        *,
        gram: Any = None,
        n_prompt: int | None = None,
        steps: Mapping[int, tuple[np.ndarray, int]] | None = None,
        n_steps: int | None = None,
    ) -> None:
        """Write a finished pair: ``row`` (``samples`` columns without ``status``),
        ``values`` per layer, and each denoising step's ``(values, n_response_tokens)``;
        with a Gram folder, ``gram`` (and ``n_prompt``) too."""
        row = {**row, "status": "ok", "error": None}
        n_layers = len(values) - 1
        metric = LEVEL_METRIC[row["level"]]
        ids = {"model": self.model_name, "adapter": self.adapter_name}
        metrics = [
            {**ids, "layer": layer, "n_layers": n_layers, "metric": metric, **metric_value(v)}
            for layer, v in enumerate(values)
        ]
        steps_out = [
            {**ids, "step": step, "n_steps": n_steps, "layer": layer, "n_layers": n_layers, "metric": metric,
             "value": value, "n_response_tokens": n_response}
            for step, layer, n_response, value in step_rows(steps or {})
        ]  # fmt: skip
        if self.grams is None or gram is None:
            self.store.write_sample(row, metrics, steps_out)
        else:
            meta = {
                **{k: v for k, v in row.items() if k not in ("status", "error", "created_at")},
                **ids,
                "n_layers": n_layers,
                **self.gram_meta,
            }
            pending = save_gram(self.grams, gram, meta=meta, n_prompt=n_prompt, publish=False)
            try:
                self.store.write_sample(row, metrics, steps_out)
            except BaseException:
                pending.unlink(missing_ok=True)
                raise
            publish_gram(pending)
        self.summary.n_ok += 1

    def failed(self, row: Mapping[str, Any], exc: BaseException) -> None:
        """Record a failed pair: ``row`` with its error, no metrics."""
        error = error_text(exc)
        self.store.write_sample({**row, "status": "failed", "error": error}, [])
        self.summary.n_failed += 1
        self.summary.failures.append((row["dataset"], row["sample_id"], row["level"], error))


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


def reconcile_grams(root: Path, gram_id: str, store: ResultStore, shard: tuple[int, int] | None) -> None:
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
