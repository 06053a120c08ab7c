"""Reading a store: :class:`_Reading`, the query methods of
:class:`~entprobe.store.ResultStore`.

:meth:`~_Reading.layer_metrics`, :meth:`~_Reading.step_metrics`,
:meth:`~_Reading.samples` and :meth:`~_Reading.runs` (filtered, ordered rows of one
table, also of an older store that lacks later tables or columns) and
:meth:`~_Reading.run_config`. Separate from the store's core and its writing because
this is all that analysis and reports use.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pandas as pd

from ..errors import StoreError
from ._session import _in_session
from .schema import (
    ADDED_COLUMNS,
    LATER_TABLES,
    LAYER_METRICS_COLUMNS,
    RUNS_COLUMNS,
    SAMPLES_COLUMNS,
    SAMPLES_KEY,
    STEP_METRICS_COLUMNS,
)

_ORDER = {
    "runs": ("run_id",),
    "samples": SAMPLES_KEY,
    "layer_metrics": ("run_id", "dataset", "sample_id", "level", "metric", "layer"),
    "step_metrics": ("run_id", "dataset", "sample_id", "level", "metric", "step", "layer"),
}
_COLUMNS = {
    "runs": RUNS_COLUMNS,
    "samples": SAMPLES_COLUMNS,
    "layer_metrics": LAYER_METRICS_COLUMNS,
    "step_metrics": STEP_METRICS_COLUMNS,
}


class _Reading:
    """The reading methods of :class:`~entprobe.store.ResultStore` (a mixin: it uses
    the core's ``path``, ``con``, ``session()`` and ``_has_table()``)."""

    def _present_columns(self, table: str) -> set[str]:
        """Columns ``table`` has (an older store opened read-only lacks the later ones)."""
        added = {c for t, c, _ in ADDED_COLUMNS if t == table}
        if not added:
            return set(_COLUMNS[table])
        rows = self.con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = ? AND database_name = current_database()",
            [table],
        ).fetchall()
        return {r[0] for r in rows}

    @_in_session
    def _select(self, table: str, filters: Mapping[str, Any]) -> pd.DataFrame:
        columns = _COLUMNS[table]
        unknown = sorted(set(filters) - set(columns))
        if unknown:
            raise TypeError(f"{table}() got unknown filter(s) {unknown}; filter on columns {list(columns)}")
        clauses, params = [], []
        for col, value in filters.items():
            if isinstance(value, (list, tuple, set, frozenset)):
                values = list(value)
                if not values:
                    clauses.append("FALSE")
                    continue
                clauses.append(f"{col} IN ({', '.join('?' for _ in values)})")
                params.extend(values)
            elif value is None:
                clauses.append(f"{col} IS NULL")
            else:
                clauses.append(f"{col} = ?")
                params.append(value)
        if table in LATER_TABLES and not self._has_table(table):
            # An older store opened read-only: it has no such rows.
            return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
        present = self._present_columns(table)
        sql = (
            "SELECT "
            + ", ".join(c if c in present else f"CAST(NULL AS DOUBLE) AS {c}" for c in columns)
            + f" FROM {table}"
        )
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY " + ", ".join(_ORDER[table])
        return self.con.execute(sql, params).df()

    def layer_metrics(self, **filters: Any) -> pd.DataFrame:
        """Rows of ``layer_metrics``, ordered by run, dataset, sample, level, metric, layer.

        Args:
            **filters: ``column=value`` (equality), ``column=[v1, v2]`` (any of), or
                ``column=None`` (IS NULL), e.g. ``level="prompt", layer=[0, 1]``.

        Returns:
            A DataFrame with the columns of :data:`~entprobe.store.schema.LAYER_METRICS_COLUMNS`.

        Raises:
            TypeError: a filter that is not a column.
        """
        return self._select("layer_metrics", filters)

    def step_metrics(self, **filters: Any) -> pd.DataFrame:
        """Rows of ``step_metrics`` (per denoising step of a step-wise image generator,
        ``--image-response-step``), ordered by run, dataset, sample, level, metric,
        step, layer; filters as in :meth:`layer_metrics`. Empty for a store without
        such rows (also one of schema 1)."""
        return self._select("step_metrics", filters)

    def samples(self, **filters: Any) -> pd.DataFrame:
        """Rows of ``samples`` (ok and failed), ordered by their key; filters as
        in :meth:`layer_metrics`."""
        return self._select("samples", filters)

    def runs(self, **filters: Any) -> pd.DataFrame:
        """Rows of ``runs``; ``config`` is parsed into a dict."""
        df = self._select("runs", filters)
        df["config"] = [json.loads(c) if isinstance(c, str) else c for c in df["config"]]
        return df

    @_in_session
    def run_config(self, run_id: str) -> dict[str, Any]:
        """The configuration of ``run_id``.

        Raises:
            StoreError: no such run.
        """
        row = self.con.execute("SELECT config FROM runs WHERE run_id = ?", [run_id]).fetchone()
        if row is None:
            raise StoreError(f"results store {self.path} has no run {run_id!r}")
        return json.loads(row[0])
