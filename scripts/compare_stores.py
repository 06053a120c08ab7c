"""Compare the numbers of two results stores: the same runs, bit for bit.

    python scripts/compare_stores.py BEFORE.duckdb AFTER.duckdb

Checks that both stores hold the same run ids, the same (run, sample, level, layer,
metric) keys in ``layer_metrics`` and ``step_metrics``, the same sample statuses, and
that every value (and certified bound) is identical as a float64 bit pattern. Used to
show that a refactoring left ``entprobe demo`` unchanged. Exits 1 on any difference.
"""

from __future__ import annotations

import sys

import numpy as np

from entprobe.store import ResultStore

KEYS = {
    "layer_metrics": ["run_id", "dataset", "sample_id", "level", "layer", "metric"],
    "step_metrics": ["run_id", "dataset", "sample_id", "level", "step", "layer", "metric"],
}


def _tables(path: str) -> dict:
    with ResultStore(path, read_only=True) as store:
        return {
            "runs": store.runs(),
            "samples": store.samples(),
            "layer_metrics": store.layer_metrics(),
            "step_metrics": store.step_metrics(),
        }


def compare(before: str, after: str) -> list[str]:
    a, b = _tables(before), _tables(after)
    problems = []
    runs_a, runs_b = set(a["runs"]["run_id"]), set(b["runs"]["run_id"])
    if runs_a != runs_b:
        problems.append(
            f"run ids differ: only before {sorted(runs_a - runs_b)}, only after {sorted(runs_b - runs_a)}"
        )
    key = ["run_id", "dataset", "sample_id", "level"]
    sa = a["samples"].set_index(key)["status"].sort_index()
    sb = b["samples"].set_index(key)["status"].sort_index()
    if not sa.equals(sb):
        problems.append("sample keys or statuses differ")
    for table, cols in KEYS.items():
        ta = a[table].set_index(cols).sort_index()
        tb = b[table].set_index(cols).sort_index()
        if not ta.index.equals(tb.index):
            problems.append(f"{table}: keys differ ({len(ta)} rows before, {len(tb)} after)")
            continue
        for col in ("value", "lower", "upper"):
            if col not in ta:
                continue
            x = ta[col].to_numpy(dtype=np.float64)
            y = tb[col].to_numpy(dtype=np.float64)
            same = (x.view(np.int64) == y.view(np.int64)) | (np.isnan(x) & np.isnan(y))
            if not same.all():
                worst = np.nanmax(np.abs(x - y))
                problems.append(
                    f"{table}.{col}: {int((~same).sum())} of {len(x)} values differ (max |diff| {worst:.3g})"
                )
    return problems


if __name__ == "__main__":
    found = compare(sys.argv[1], sys.argv[2])
    for line in found:
        print(line)
    if not found:
        print("identical: same run ids, keys and statuses; every value bit for bit")
    sys.exit(1 if found else 0)
