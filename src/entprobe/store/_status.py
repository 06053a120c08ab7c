"""Progress of the runs in a results store, readable while a probe writes to it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._lock import writer_pid
from ._store import ResultStore

__all__ = ["RunProgress", "StoreStatus", "store_status"]


@dataclass
class RunProgress:
    """One run's counts.

    Attributes:
        planned: (sample, level) pairs its latest session set out to do (its shard),
            or None for runs that did not record it (re-estimations, older stores).
        by_level: ``level -> (ok, failed)``.
        last_write: ``created_at`` of its newest sample row.
    """

    run_id: str
    model: str
    adapter: str
    started_at: Any
    finished_at: Any
    planned: int | None
    ok: int = 0
    failed: int = 0
    by_level: dict[str, tuple[int, int]] = field(default_factory=dict)
    last_write: Any = None

    @property
    def done(self) -> int:
        return self.ok + self.failed


@dataclass
class StoreStatus:
    """What :func:`store_status` found: the runs and the writer (pid), if any."""

    path: Path
    writer_pid: int | None
    runs: list[RunProgress]

    def report(self) -> str:
        """A few lines per run, for ``entprobe status``."""
        who = f"being written by process {self.writer_pid}" if self.writer_pid else "no probe writing now"
        lines = [f"{self.path}: {len(self.runs)} run(s); {who}"]
        for r in self.runs:
            state = (
                "finished"
                if r.finished_at is not None
                else (
                    "running" if self.writer_pid else "stopped before the end (rerun the command to resume)"
                )
            )
            of = f" of {r.planned}" if r.planned is not None else ""
            pct = f" ({100 * r.done / r.planned:.0f}%)" if r.planned else ""
            lines.append(f"run {r.run_id}  {r.model}  [{r.adapter}]  {state}")
            lines.append(
                f"  {r.done}{of} (sample, level) done{pct}: {r.ok} ok, {r.failed} failed; "
                f"started {r.started_at}, last write {r.last_write}"
            )
            for level, (ok, failed) in sorted(r.by_level.items()):
                lines.append(f"    {level:<9} {ok} ok, {failed} failed")
        return "\n".join(lines)


def store_status(path: str | os.PathLike[str], *, wait: float = 120.0) -> StoreStatus:
    """Counts per run and level of the store at ``path``, read from a copy taken in
    a moment (safe while a probe writes).

    Raises:
        StoreError: the file is missing or not an entprobe store.
        StoreLockedError: the file stayed busy for ``wait`` seconds.
    """
    path = Path(path)
    with ResultStore(path, read_only=True, wait=wait) as store:
        runs = store.runs()
        counts = store.con.execute(
            "SELECT run_id, level, status, count(*), max(created_at) FROM samples "
            "GROUP BY run_id, level, status"
        ).fetchall()
    out = []
    for r in runs.itertuples():
        planned = (r.config.get("session") or {}).get("planned_pairs") if isinstance(r.config, dict) else None
        out.append(
            RunProgress(
                run_id=r.run_id,
                model=r.model,
                adapter=r.adapter,
                started_at=_none(r.started_at),
                finished_at=_none(r.finished_at),
                planned=None if planned is None else int(planned),
            )
        )
    by_id = {r.run_id: r for r in out}
    for run_id, level, status, n, last in counts:
        run = by_id.get(run_id)
        if run is None:
            continue
        ok, failed = run.by_level.get(level, (0, 0))
        if status == "ok":
            ok += int(n)
            run.ok += int(n)
        else:
            failed += int(n)
            run.failed += int(n)
        run.by_level[level] = (ok, failed)
        if last is not None and (run.last_write is None or last > run.last_write):
            run.last_write = last
    return StoreStatus(path=path, writer_pid=writer_pid(path), runs=out)


def _none(value: Any) -> Any:
    import pandas as pd

    return None if value is None or pd.isna(value) else value
