"""The DuckDB results store: :class:`ResultStore`."""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import StoreError, StoreLockedError
from .schema import (
    ADDED_COLUMNS,
    LATER_TABLES,
    LAYER_METRICS_COLUMNS,
    LAYER_METRICS_KEY,
    RUNS_COLUMNS,
    SAMPLES_COLUMNS,
    SAMPLES_KEY,
    SCHEMA_VERSION,
    STEP_METRICS_COLUMNS,
    TABLES,
    create_tables,
)

__all__ = ["MergeSummary", "ResultStore", "check_duckdb_file", "writer_pid"]

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

# DuckDB lets one process open a file several times and shares the database between
# the connections; writers are counted here so a second writer in the same process
# is refused like one in another process.
_OPEN_WRITERS: dict[str, int] = {}
_OPEN_LOCK = threading.Lock()


def utcnow() -> datetime:
    """The current UTC time, naive (the store's TIMESTAMP columns are UTC)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _sql_str(value: str | os.PathLike[str]) -> str:
    """A SQL string literal (for statements that take no parameters: ATTACH, COPY)."""
    return "'" + str(value).replace("'", "''") + "'"


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc)
    return "lock" in text.lower() or "different configuration" in text


#: The first bytes of a DuckDB database file carry this magic at offset 8.
_DUCKDB_MAGIC = b"DUCK"


def check_duckdb_file(path: str | os.PathLike[str]) -> None:
    """Raise :class:`StoreError` unless ``path`` is a DuckDB database file (its
    header is read, nothing is opened or written)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as exc:
        raise StoreError(f"cannot read results store {path}: {exc}") from exc
    if head[8:12] != _DUCKDB_MAGIC:
        what = "an empty file" if not head else f"a file beginning {head[:12]!r}"
        raise StoreError(
            f"{path} is not a DuckDB database ({what}); --store must name an entprobe results "
            f"store (.duckdb) or a new file. It was left untouched"
        )


def _version_number(version: Any) -> int:
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return 10**9  # unreadable: treat as newer than this entprobe


def _retry(call: Callable[[], Any], path: Path, wait: float, what: str) -> Any:
    """``call()``, retried with backoff while another process has the DuckDB file
    open (a writer inside a transaction, or a reader copying it)."""
    import duckdb

    deadline = time.monotonic() + wait
    delay = 0.01
    while True:
        try:
            return call()
        except duckdb.Error as exc:
            if not _is_lock_error(exc):
                raise StoreError(f"cannot open results store {path}: {exc}") from exc
            if time.monotonic() >= deadline:
                raise StoreLockedError(
                    f"results store {path} stayed busy for {wait:.0f} s (another process has it "
                    f"open) while trying to {what} it: {exc}"
                ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


def lock_path(path: str | os.PathLike[str]) -> Path:
    """The writer's lock file of a store: ``<store>.lock`` beside it."""
    path = Path(path)
    return path.with_name(path.name + ".lock")


def writer_pid(path: str | os.PathLike[str]) -> int | None:
    """The pid of the process writing the store now, or None (read from its lock
    file; a stale file left by a killed process gives None)."""
    lp = lock_path(path)
    try:
        pid = int(lp.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if _lock_is_held(lp) else None


def _lock_is_held(lp: Path) -> bool:
    # Not probed with flock: a probe would make a writer starting at that instant
    # fail. The pid in the file is checked instead (the file is removed on a clean
    # exit; a killed writer leaves it with a dead pid).
    try:
        pid = int(lp.read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return False
    return True


def _in_session(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run a store method inside :meth:`ResultStore.session`."""
    import functools

    @functools.wraps(method)
    def wrapper(self: ResultStore, *args: Any, **kwargs: Any) -> Any:
        with self.session():
            return method(self, *args, **kwargs)

    return wrapper


class _LockFile:
    """An exclusive ``flock`` on ``<store>.lock``, held by one writer. The file is
    removed on release; an acquirer checks that the file it locked is still the one
    at the path, so removal cannot let two writers in."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd

    @classmethod
    def acquire(cls, store: Path) -> _LockFile:
        lp = lock_path(store)
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: DuckDB's own lock only
            return cls(lp, -1)
        for _ in range(100):
            try:
                fd = os.open(lp, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise StoreError(f"cannot create the lock file {lp} of results store {store}: {exc}") from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                pid = writer_pid(store)
                who = f"process {pid}" if pid is not None else "another process"
                raise StoreLockedError(
                    f"results store {store} is being written by {who} (lock file {lp}); wait for "
                    f"it to finish, or use another --store. `entprobe status --store {store}` "
                    f"shows its progress"
                ) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(lp).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                return cls(lp, fd)
            os.close(fd)  # the previous holder removed it between our open and lock
        raise StoreLockedError(f"cannot take the lock file {lp} of results store {store}")

    def release(self) -> None:
        if self.fd < 0:
            return
        try:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        finally:
            os.close(self.fd)
            self.fd = -1


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


class ResultStore:
    """A DuckDB results store (schema: :mod:`entprobe.store.schema`).

    Open it as a context manager.

    **Writers** hold an entprobe lock file (``<store>.lock``, an exclusive ``flock``
    with the writer's pid in it) for as long as the object is open: a second writer,
    in this or another process, gets :class:`~entprobe.errors.StoreLockedError` at
    once. The DuckDB file itself is opened only around each transaction (a sample's
    rows, a run's start or end, a merge) and closed again, so that other processes
    can read it in between. The file is created, with its tables, on the first write:
    opening a writer and closing it without writing leaves nothing behind.

    **Readers** (``read_only=True``) copy the whole store into memory when opened and
    let go of the file at once, so they can read while a probe writes (they retry
    for up to ``wait`` seconds while a writer is inside a transaction) and never
    block it for longer than the copy. A reader sees the store as of its opening.

    An existing file is checked before anything is written to it: a file that is not
    a DuckDB database, or a DuckDB database that entprobe did not create (no
    ``store_info`` schema version), is refused untouched.

    The read methods :meth:`runs`, :meth:`samples` and :meth:`layer_metrics` are
    what analysis uses; their columns are the tables' columns of DEVELOPERS.md.

    Args:
        path: the ``.duckdb`` file; created (with its folder) on the first write.
        read_only: open for reading only; the file must exist.
        wait: seconds to retry while another process has the DuckDB file open in a
            transaction (writer) or is copying it (reader).

    Raises:
        StoreLockedError: another writer holds the store.
        StoreError: a read-only store that does not exist, a file that is not a
            DuckDB database or not an entprobe store, or a folder that cannot be
            written.

    Example:
        >>> with ResultStore("results.duckdb", read_only=True) as store:  # doctest: +SKIP
        ...     df = store.layer_metrics(level="prompt", layer=[0, 1])
    """

    def __init__(self, path: str | os.PathLike[str], *, read_only: bool = False, wait: float = 120.0) -> None:
        self.path = Path(path)
        self.read_only = bool(read_only)
        self.wait = float(wait)
        self._key = str(self.path.resolve())
        self._con: Any = None
        self._lock: _LockFile | None = None
        self._tables_ready = False
        self._depth = 0
        if self.path.is_dir():
            raise StoreError(f"results store {self.path} is a folder; give a .duckdb file path")
        if read_only and not self.path.exists():
            raise StoreError(f"results store {self.path} does not exist")
        if self.path.exists():
            check_duckdb_file(self.path)
        if read_only:
            self._con = self._snapshot()
            try:
                self._check_schema()
            except Exception:
                self.close()
                raise
            return
        with _OPEN_LOCK:
            if _OPEN_WRITERS.get(self._key):
                raise StoreLockedError(
                    f"results store {self.path} is already open for writing in this process"
                )
            _OPEN_WRITERS[self._key] = 1
        try:
            folder = self.path.parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the folder of results store {self.path}: {exc}") from exc
            if not os.access(folder, os.W_OK | os.X_OK):
                raise StoreError(f"cannot write results store {self.path}: folder {folder} is not writable")
            self._lock = _LockFile.acquire(self.path)
            if self.path.exists():
                self._check_owner()
        except BaseException:
            self.close()
            raise

    # --- life cycle -----------------------------------------------------------------
    def _release(self) -> None:
        if not self.read_only:
            with _OPEN_LOCK:
                _OPEN_WRITERS.pop(self._key, None)

    def close(self) -> None:
        """Close the connection and release the lock (idempotent)."""
        try:
            if self._con is not None:
                try:
                    self._con.close()
                finally:
                    self._con = None
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None
            self._release()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        mode = "r" if self.read_only else "rw"
        return f"ResultStore({str(self.path)!r}, mode={mode!r})"

    @property
    def con(self) -> Any:
        """The DuckDB connection: the in-memory copy (reader), or the file, opened for
        the current transaction (writer; use it inside :meth:`session`)."""
        if self._con is not None:
            return self._con
        if self.read_only or self._lock is None:
            raise StoreError(f"results store {self.path} is closed")
        raise StoreError("internal error: a writer's connection is used outside session()")

    @contextmanager
    def session(self) -> Iterator[Any]:
        """Hold the DuckDB file open for the block (writers; nested blocks share the
        connection), then close it so that readers can copy the store. Readers: a
        no-op around their in-memory copy."""
        if self.read_only or self._con is not None:
            if self._con is None:
                raise StoreError(f"results store {self.path} is closed")
            self._depth += 1
            try:
                yield self._con
            finally:
                self._depth -= 1
            return
        if self._lock is None:
            raise StoreError(f"results store {self.path} is closed")
        self._con = self._connect_file()
        try:
            if not self._tables_ready:
                create_tables(self._con)
                self._tables_ready = True
            yield self._con
        finally:
            con, self._con = self._con, None
            con.close()

    def _connect_file(self) -> Any:
        import duckdb

        return _retry(lambda: duckdb.connect(str(self.path)), self.path, self.wait, "write")

    def _snapshot(self) -> Any:
        import duckdb

        con = duckdb.connect()
        try:

            def copy() -> None:
                con.execute(f"ATTACH {_sql_str(self.path)} AS _entprobe_file (READ_ONLY)")
                try:
                    con.execute("COPY FROM DATABASE _entprobe_file TO memory")
                finally:
                    con.execute("DETACH _entprobe_file")

            _retry(copy, self.path, self.wait, "read")
        except BaseException:
            con.close()
            raise
        return con

    def _check_owner(self) -> None:
        """Refuse, untouched, a DuckDB file that entprobe did not create."""
        import duckdb

        def peek() -> tuple[set[str], Any]:
            con = duckdb.connect(str(self.path), read_only=True)
            try:
                tables = {
                    r[0]
                    for r in con.execute(
                        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
                    ).fetchall()
                }
                version = None
                if "store_info" in tables:
                    row = con.execute("SELECT value FROM store_info WHERE key = 'schema_version'").fetchone()
                    version = None if row is None else row[0]
                return tables, version
            finally:
                con.close()

        tables, version = _retry(peek, self.path, self.wait, "check")
        if not tables:
            return  # an empty DuckDB file: nothing of anybody's to damage
        if version is None:
            shown = ", ".join(sorted(tables)[:8]) + (" ..." if len(tables) > 8 else "")
            raise StoreError(
                f"{self.path} is a DuckDB database that entprobe did not create (tables: {shown}; "
                f"no store_info schema version); refusing to write into it. Give --store a new "
                f"file name"
            )
        if _version_number(version) > _version_number(SCHEMA_VERSION):
            raise StoreError(
                f"results store {self.path} has schema version {version}; this entprobe writes "
                f"version {SCHEMA_VERSION}; upgrade entprobe or use a new --store file"
            )

    def _check_schema(self) -> None:
        self._check_tables("main", self.path)

    def _check_tables(self, database: str, path: Path) -> None:
        if database == "main":
            database = self.con.execute("SELECT current_database()").fetchone()[0]
        found = {
            r[0]
            for r in self.con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = ?", [database]
            ).fetchall()
        }
        missing = [t for t in TABLES if t not in found]
        if missing:
            raise StoreError(f"{path} is not an entprobe results store (missing table(s) {missing})")

    def _require_writable(self) -> None:
        if self.read_only:
            raise StoreError(f"results store {self.path} is open read-only")

    # --- writing --------------------------------------------------------------------
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

    # --- reading --------------------------------------------------------------------
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

    def _has_table(self, table: str, database: str | None = None) -> bool:
        database = database or self.con.execute("SELECT current_database()").fetchone()[0]
        return bool(
            self.con.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND table_name = ?",
                [database, table],
            ).fetchone()[0]
        )

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

    # --- merge and export -----------------------------------------------------------
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
