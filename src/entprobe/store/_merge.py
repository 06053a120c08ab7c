"""Merging stores into one and exporting a store: :class:`MergeSummary` and
:class:`_Merging`, the methods of :class:`~entprobe.store.ResultStore` that copy whole
tables in or out.

:meth:`~_Merging.merge_from` attaches each source store and copies, in one
transaction per source, the rows the target lacks (or has only as failed);
:meth:`~_Merging.export` writes every table to Parquet or CSV. Separate from writing
one sample at a time because both work table by table, in SQL, on a whole store.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import StoreError
from ._files import _sql_str, check_duckdb_file
from ._lock import _retry
from ._read import _ORDER
from ._session import _in_session
from .schema import LATER_TABLES, LAYER_METRICS_KEY, SAMPLES_KEY, TABLES

__all__ = ["MergeSummary"]


@dataclass
class MergeSummary:
    """What :meth:`ResultStore.merge_from` did.

    Attributes:
        stores: the stores merged in, in order.
        runs_added: runs that were new to the target.
        samples_added: (sample, level) rows copied that the target lacked.
        samples_replaced: failed rows of the target replaced by ok rows.
        duplicates: rows present in both with identical metrics (skipped).
        conflicts: ok rows present in both whose metrics differ (the target's kept
            when ``on_conflict="keep"``), as (run_id, dataset, sample_id, level).
    """

    stores: list[str] = field(default_factory=list)
    runs_added: int = 0
    samples_added: int = 0
    samples_replaced: int = 0
    duplicates: int = 0
    conflicts: list[tuple[str, str, str, str]] = field(default_factory=list)

    def report(self) -> str:
        text = (
            f"merged {len(self.stores)} store(s): {self.runs_added} new run(s), "
            f"{self.samples_added} sample row(s) added, {self.samples_replaced} failed "
            f"row(s) replaced by ok ones, {self.duplicates} duplicate(s) skipped"
        )
        if self.conflicts:
            text += f", {len(self.conflicts)} conflicting row(s) kept from the target"
        return text


class _Merging:
    """The merge and export methods of :class:`~entprobe.store.ResultStore` (a mixin:
    it uses the core's ``path``, ``wait``, ``con``, ``session()``,
    ``_require_writable()``, ``_check_tables()`` and ``_has_table()``)."""

    def merge_from(
        self, paths: Iterable[str | os.PathLike[str]], *, on_conflict: str = "error"
    ) -> MergeSummary:
        """Copy the rows of other stores (e.g. the shards of one run) into this one.

        Per (run, dataset, sample, level): a row the target lacks is copied with its
        metrics; a failed row of the target is replaced by an ok row of the source;
        an ok row present in both is a *duplicate* when all its metric values are
        equal (skipped) and a *conflict* otherwise. Runs are unioned; a run present in
        both keeps the earliest ``started_at`` and the latest ``finished_at`` (NULL
        while either is unfinished). Each source is merged in one transaction.

        Args:
            paths: stores to merge in (opened read-only; they must not be open for
                writing elsewhere).
            on_conflict: ``"error"`` (default): raise and leave the target unchanged
                for that source; ``"keep"``: keep the target's row and list the
                conflict in the summary.

        Raises:
            StoreError: a conflict with ``on_conflict="error"``, a source that is
                missing, the target itself, or not an entprobe store.
            StoreLockedError: a source is open for writing by another process.
        """

        self._require_writable()
        if on_conflict not in ("error", "keep"):
            raise ValueError(f"on_conflict must be 'error' or 'keep'; got {on_conflict!r}")
        paths = [Path(p) for p in paths]
        # Every source checked before the target is touched (or created).
        for src_path in paths:
            if not src_path.exists():
                raise StoreError(f"results store {src_path} does not exist")
            if src_path.resolve() == self.path.resolve():
                raise StoreError(f"cannot merge results store {src_path} into itself")
            check_duckdb_file(src_path)
        with self.session():
            return self._merge_sources(paths, on_conflict)

    def _merge_sources(self, paths: list[Path], on_conflict: str) -> MergeSummary:
        summary = MergeSummary()
        con = self.con
        for src_path in paths:
            src_path = Path(src_path)
            if not src_path.exists():
                raise StoreError(f"results store {src_path} does not exist")
            if src_path.resolve() == self.path.resolve():
                raise StoreError(f"cannot merge results store {src_path} into itself")
            check_duckdb_file(src_path)
            _retry(
                lambda: con.execute(f"ATTACH {_sql_str(src_path)} AS _entprobe_src (READ_ONLY)"),
                src_path,
                self.wait,
                "merge",
            )
            try:
                self._check_tables("_entprobe_src", src_path)
                self._merge_attached(summary, on_conflict, src_path)
            finally:
                con.execute("DETACH _entprobe_src")
            summary.stores.append(str(src_path))
        return summary

    def _merge_attached(self, summary: MergeSummary, on_conflict: str, src_path: Path) -> None:
        con = self.con
        key = ", ".join(SAMPLES_KEY)
        on = " AND ".join(f"t.{c} = s.{c}" for c in SAMPLES_KEY)
        con.execute("BEGIN TRANSACTION")
        try:
            # Classify every source row against the target.
            con.execute(
                f"""
                CREATE OR REPLACE TEMP TABLE _merge_plan AS
                SELECT s.{", s.".join(SAMPLES_KEY)},
                       CASE
                         WHEN t.status IS NULL THEN 'add'
                         WHEN t.status = 'failed' AND s.status = 'ok' THEN 'replace'
                         WHEN t.status = 'ok' AND s.status = 'ok' THEN 'both_ok'
                         ELSE 'skip'
                       END AS action
                FROM _entprobe_src.samples s
                LEFT JOIN samples t ON {on}
                """
            )
            # ok in both: compare all metric values (rows missing on one side differ).
            conflicts = con.execute(
                f"""
                WITH both_ok AS (SELECT {key} FROM _merge_plan WHERE action = 'both_ok'),
                tm AS (SELECT m.* FROM layer_metrics m SEMI JOIN both_ok b USING ({key})),
                sm AS (SELECT m.* FROM _entprobe_src.layer_metrics m SEMI JOIN both_ok b USING ({key}))
                SELECT DISTINCT {key}
                FROM tm FULL OUTER JOIN sm USING ({", ".join(LAYER_METRICS_KEY)})
                WHERE tm.value IS DISTINCT FROM sm.value
                ORDER BY {key}
                """
            ).fetchall()
            conflicts = [tuple(r) for r in conflicts]
            if conflicts and on_conflict == "error":
                shown = "; ".join("/".join(map(str, c)) for c in conflicts[:5])
                raise StoreError(
                    f"{len(conflicts)} sample(s) of {src_path} are ok in both stores with "
                    f"different values (first: {shown}); nothing was merged from it. Pass "
                    f"on_conflict='keep' (--on-conflict keep) to keep the target's rows"
                )
            counts = dict(con.execute("SELECT action, count(*) FROM _merge_plan GROUP BY action").fetchall())
            take = f"SELECT {key} FROM _merge_plan WHERE action IN ('add', 'replace')"
            con.execute(f"DELETE FROM layer_metrics WHERE ({key}) IN ({take})")
            con.execute(f"DELETE FROM step_metrics WHERE ({key}) IN ({take})")
            con.execute(f"DELETE FROM samples WHERE ({key}) IN ({take})")
            con.execute(
                f"INSERT INTO samples BY NAME SELECT s.* FROM _entprobe_src.samples s "
                f"SEMI JOIN ({take}) p USING ({key})"
            )
            con.execute(
                f"INSERT INTO layer_metrics BY NAME SELECT m.* FROM _entprobe_src.layer_metrics m "
                f"SEMI JOIN ({take}) p USING ({key})"
            )
            if self._has_table("step_metrics", "_entprobe_src"):
                con.execute(
                    f"INSERT INTO step_metrics BY NAME SELECT m.* FROM _entprobe_src.step_metrics m "
                    f"SEMI JOIN ({take}) p USING ({key})"
                )
            new_runs = con.execute(
                "SELECT count(*) FROM _entprobe_src.runs s ANTI JOIN runs t USING (run_id)"
            ).fetchone()[0]
            con.execute(
                """
                UPDATE runs SET
                    started_at = least(runs.started_at, s.started_at),
                    finished_at = CASE WHEN runs.finished_at IS NULL OR s.finished_at IS NULL
                                       THEN NULL
                                       ELSE greatest(runs.finished_at, s.finished_at) END
                FROM _entprobe_src.runs s
                WHERE runs.run_id = s.run_id
                """
            )
            con.execute(
                "INSERT INTO runs BY NAME SELECT s.* FROM _entprobe_src.runs s "
                "ANTI JOIN runs t USING (run_id)"
            )
            con.execute("DROP TABLE _merge_plan")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        summary.runs_added += int(new_runs)
        summary.samples_added += int(counts.get("add", 0))
        summary.samples_replaced += int(counts.get("replace", 0))
        summary.duplicates += int(counts.get("both_ok", 0)) - len(conflicts)
        summary.conflicts.extend(conflicts)  # type: ignore[arg-type]

    @_in_session
    def export(self, out_dir: str | os.PathLike[str], fmt: str = "parquet") -> list[Path]:
        """Write each table to ``out_dir/<table>.<fmt>`` with DuckDB's COPY.

        Args:
            out_dir: folder, created if missing; existing files are overwritten.
            fmt: ``"parquet"`` or ``"csv"`` (with a header row).

        Returns:
            The written files, in the order ``runs``, ``samples``, ``layer_metrics``,
            then ``step_metrics`` when the store has such rows.

        Raises:
            ValueError: an unknown format.
        """
        options = {"parquet": "FORMAT parquet", "csv": "FORMAT csv, HEADER true"}
        if fmt not in options:
            raise ValueError(f"fmt must be 'parquet' or 'csv'; got {fmt!r}")
        from .._outputs import writable_folder

        out = writable_folder(out_dir, "export folder (--out)")
        written = []
        later = tuple(
            t
            for t in LATER_TABLES
            if self._has_table(t) and self.con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        )
        for table in TABLES + later:
            target = out / f"{table}.{fmt}"
            tmp = out / f".{table}.{fmt}.tmp"
            query = f"SELECT * FROM {table} ORDER BY {', '.join(_ORDER[table])}"
            self.con.execute(f"COPY ({query}) TO {_sql_str(tmp)} ({options[fmt]})")
            os.replace(tmp, target)
            written.append(target)
        return written
