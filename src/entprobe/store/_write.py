"""Writing a store: :class:`_Writing`, the writer's methods of
:class:`~entprobe.store.ResultStore`.

Runs (:meth:`~_Writing.start_run`, :meth:`~_Writing.finish_run`), one (sample, level)
with its metric rows in one transaction (:meth:`~_Writing.write_sample`, with the
checks that turn sample and metric mappings into rows), and what a resumed run asks
of the store before it writes (:meth:`~_Writing.done_keys`,
:meth:`~_Writing.statuses`). Separate from the store's core (opening, locking,
sessions) because it is what a probe does with an open writer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from ..errors import StoreError
from ._session import _in_session
from .schema import LAYER_METRICS_COLUMNS, SAMPLES_COLUMNS, SAMPLES_KEY, STEP_METRICS_COLUMNS

#: Columns a metric row inherits from its sample row when it does not set them.
_INHERITED = (
    "run_id",
    "dataset",
    "sample_id",
    "level",
    "modality",
    "category",
    "subcategory",
    "length_bucket",
    "n_prompt_tokens",
    "n_response_tokens",
)


def utcnow() -> datetime:
    """The current UTC time, naive (the store's TIMESTAMP columns are UTC)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


class _Writing:
    """The writing methods of :class:`~entprobe.store.ResultStore` (a mixin: it uses
    the core's ``path``, ``con``, ``session()`` and ``_require_writable()``)."""

    @_in_session
    def start_run(
        self,
        run_id: str,
        model: str,
        adapter: str,
        config: Mapping[str, Any],
        *,
        entprobe_version: str | None = None,
    ) -> None:
        """Record a run's start, or its resumption (``started_at`` is reset and
        ``finished_at`` cleared; the configuration is the latest session's)."""
        self._require_writable()
        if entprobe_version is None:
            entprobe_version = _package_version()
        self.con.execute(
            """
            INSERT INTO runs (run_id, model, adapter, config, entprobe_version, started_at, finished_at)
            VALUES (?, ?, ?, ?, ?, ?, NULL)
            ON CONFLICT (run_id) DO UPDATE SET
                config = excluded.config,
                entprobe_version = excluded.entprobe_version,
                started_at = excluded.started_at,
                finished_at = NULL
            """,
            [
                run_id,
                model,
                adapter,
                json.dumps(config, sort_keys=True, default=str),
                entprobe_version,
                utcnow(),
            ],
        )

    @_in_session
    def finish_run(self, run_id: str) -> None:
        """Set the run's ``finished_at``."""
        self._require_writable()
        self.con.execute("UPDATE runs SET finished_at = ? WHERE run_id = ?", [utcnow(), run_id])

    @_in_session
    def write_sample(
        self,
        sample_row: Mapping[str, Any],
        metric_rows: Sequence[Mapping[str, Any]] | pd.DataFrame = (),
        step_rows: Sequence[Mapping[str, Any]] | pd.DataFrame = (),
    ) -> None:
        """Write one (sample, level): its ``samples`` row, its ``layer_metrics`` rows
        and its ``step_metrics`` rows (per denoising step), in one transaction.

        A previous *failed* row of the same key is replaced (``--retry-failed``); a
        previous *ok* row is never overwritten.

        Args:
            sample_row: ``samples`` columns; ``run_id, dataset, sample_id, level,
                status`` are required, missing columns are NULL, ``created_at``
                defaults to now.
            metric_rows: ``layer_metrics`` columns, one mapping per (layer, metric);
                columns they leave out that the sample row has (``run_id``,
                ``dataset``, ``sample_id``, ``level``, ``modality``, ``category``,
                ``subcategory``, ``length_bucket``, ``n_prompt_tokens``,
                ``n_response_tokens``) are taken from it. A failed sample has none.
            step_rows: ``step_metrics`` columns (as ``metric_rows`` plus ``step``
                and ``n_steps``), one mapping per (step, layer, metric).

        Raises:
            StoreError: unknown or missing columns, a non-finite value, metric rows
                for a failed sample, an ok row already present for the key, or
                DuckDB refusing the rows (e.g. a repeated (layer, metric)).
        """
        import duckdb

        self._require_writable()
        sample = _sample_values(sample_row)
        metrics = _metric_frame(sample_row, metric_rows)
        steps = _metric_frame(sample_row, step_rows, STEP_METRICS_COLUMNS)
        key = [sample_row[c] for c in SAMPLES_KEY]
        where = " AND ".join(f"{c} = ?" for c in SAMPLES_KEY)
        con = self.con
        con.execute("BEGIN TRANSACTION")
        try:
            prev = con.execute(f"SELECT status FROM samples WHERE {where}", key).fetchone()
            if prev is not None and prev[0] == "ok":
                raise StoreError(
                    f"results store {self.path} already holds an ok result for {dict(zip(SAMPLES_KEY, key))}"
                )
            if prev is not None:
                con.execute(f"DELETE FROM layer_metrics WHERE {where}", key)
                con.execute(f"DELETE FROM step_metrics WHERE {where}", key)
                con.execute(f"DELETE FROM samples WHERE {where}", key)
            con.execute(_INSERT_SAMPLE, sample)
            for frame, insert in ((metrics, _INSERT_METRICS), (steps, _INSERT_STEPS)):
                if frame is None:
                    continue
                con.register("_entprobe_metrics", frame)
                try:
                    con.execute(insert)
                finally:
                    con.unregister("_entprobe_metrics")
            con.execute("COMMIT")
        except BaseException as exc:
            con.execute("ROLLBACK")
            if isinstance(exc, duckdb.Error):
                raise StoreError(
                    f"cannot write {dict(zip(SAMPLES_KEY, key))} to results store {self.path}: {exc}"
                ) from exc
            raise

    # --- what is already written (a resumed run skips it) ----------------------------
    @_in_session
    def done_keys(self, run_id: str, *, status: str | None = None) -> set[tuple[str, str, str]]:
        """The ``(dataset, sample_id, level)`` already written for ``run_id``.

        Args:
            status: only rows with this status ('ok' or 'failed'); None for both.
        """
        sql = "SELECT dataset, sample_id, level FROM samples WHERE run_id = ?"
        params: list[Any] = [run_id]
        if status is not None:
            sql += " AND status = ?"
            params.append(status)
        return {tuple(r) for r in self.con.execute(sql, params).fetchall()}  # type: ignore[misc]

    @_in_session
    def statuses(self, run_id: str) -> dict[tuple[str, str, str], str]:
        """``(dataset, sample_id, level) -> status`` for ``run_id``."""
        rows = self.con.execute(
            "SELECT dataset, sample_id, level, status FROM samples WHERE run_id = ?", [run_id]
        ).fetchall()
        return {(d, s, lv): st for d, s, lv, st in rows}


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("entprobe")
    except PackageNotFoundError:
        return "0.0.0+unknown"


_INSERT_SAMPLE = (
    f"INSERT INTO samples ({', '.join(SAMPLES_COLUMNS)}) VALUES ({', '.join('?' for _ in SAMPLES_COLUMNS)})"
)
_INSERT_METRICS = (
    f"INSERT INTO layer_metrics ({', '.join(LAYER_METRICS_COLUMNS)}) "
    f"SELECT {', '.join(LAYER_METRICS_COLUMNS)} FROM _entprobe_metrics"
)
_INSERT_STEPS = (
    f"INSERT INTO step_metrics ({', '.join(STEP_METRICS_COLUMNS)}) "
    f"SELECT {', '.join(STEP_METRICS_COLUMNS)} FROM _entprobe_metrics"
)


def _sample_values(row: Mapping[str, Any]) -> list[Any]:
    unknown = sorted(set(row) - set(SAMPLES_COLUMNS))
    if unknown:
        raise StoreError(f"sample row has unknown column(s) {unknown}; columns are {list(SAMPLES_COLUMNS)}")
    missing = [c for c in (*SAMPLES_KEY, "status") if row.get(c) is None]
    if missing:
        raise StoreError(f"sample row lacks {missing}")
    values = {c: row.get(c) for c in SAMPLES_COLUMNS}
    if values["created_at"] is None:
        values["created_at"] = utcnow()
    for col in ("n_chars", "n_prompt_tokens", "n_response_tokens"):
        if values[col] is not None:
            values[col] = int(values[col])
    for col in ("model_seconds", "estimate_seconds"):
        if values[col] is not None:
            values[col] = float(values[col])
    return list(values.values())


def _metric_frame(
    sample_row: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]] | pd.DataFrame,
    table_columns: Sequence[str] = LAYER_METRICS_COLUMNS,
) -> pd.DataFrame | None:
    if isinstance(rows, pd.DataFrame):
        rows = rows.to_dict("records")
    rows = list(rows)
    if not rows:
        return None
    where = {c: sample_row.get(c) for c in SAMPLES_KEY}
    if sample_row.get("status") != "ok":
        raise StoreError(f"a {sample_row.get('status')!r} sample cannot have metric rows ({where})")
    columns: dict[str, list[Any]] = {c: [] for c in table_columns}
    allowed = set(table_columns)
    for row in rows:
        unknown = set(row) - allowed
        if unknown:
            raise StoreError(
                f"metric rows have unknown column(s) {sorted(unknown)}; columns are {list(table_columns)}"
            )
        for col in table_columns:
            if col in row:
                value = row[col]
            elif col in _INHERITED:
                value = sample_row.get(col)
            else:
                value = None
            columns[col].append(value)
    for col in SAMPLES_KEY:
        if any(v != sample_row[col] for v in columns[col]):
            raise StoreError(f"metric rows disagree with their sample row on {col!r} ({where})")
    required = ("model", "adapter", "layer", "n_layers", "metric", "value")
    for col in required + (("step",) if "step" in columns else ()):
        if any(v is None for v in columns[col]):
            raise StoreError(f"metric rows lack {col!r} ({where})")
    try:
        values = [float(v) for v in columns["value"]]
    except (TypeError, ValueError) as exc:
        raise StoreError(f"metric values must be numbers ({where}): {exc}") from None
    bad = [layer for layer, v in zip(columns["layer"], values) if not math.isfinite(v)]
    if bad:
        raise StoreError(f"non-finite metric value(s) at layer(s) {bad} of {where}")
    columns["value"] = values
    frame = {}
    for col, vals in columns.items():
        if col in ("layer", "n_layers", "step") or (
            col in ("n_prompt_tokens", "n_response_tokens", "n_steps") and all(v is not None for v in vals)
        ):
            frame[col] = np.asarray([int(v) for v in vals], dtype=np.int64)
        elif col in ("n_prompt_tokens", "n_response_tokens", "n_steps"):
            frame[col] = pd.array([None if v is None else int(v) for v in vals], dtype="Int64")
        elif col == "value":
            frame[col] = pd.array(vals, dtype="float64")
        else:
            frame[col] = pd.array(vals, dtype="object")
    return pd.DataFrame(frame)
