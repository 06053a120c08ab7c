"""The DuckDB results store: :class:`ResultStore`.

This module holds the class's core: the attributes ``path``, ``read_only`` and
``wait``; opening (the writer's lock, the reader's snapshot) and
:meth:`~ResultStore.close` (also as a context manager); :meth:`~ResultStore.session`
and :attr:`~ResultStore.con`; and the checks of an existing file (its owner and schema
version, the tables present). The other public methods come from mixins, one module
per job:

* :mod:`._write` (:class:`~._write._Writing`): :meth:`~ResultStore.start_run`,
  :meth:`~ResultStore.finish_run`, :meth:`~ResultStore.write_sample`,
  :meth:`~ResultStore.done_keys`, :meth:`~ResultStore.statuses`.
* :mod:`._read` (:class:`~._read._Reading`): :meth:`~ResultStore.layer_metrics`,
  :meth:`~ResultStore.step_metrics`, :meth:`~ResultStore.samples`,
  :meth:`~ResultStore.runs`, :meth:`~ResultStore.run_config`.
* :mod:`._merge` (:class:`~._merge._Merging`): :meth:`~ResultStore.merge_from` (its
  result: :class:`MergeSummary`) and :meth:`~ResultStore.export`.

Helpers: :mod:`._lock` (the ``<store>.lock`` writer lock, :func:`writer_pid`, retries
while the DuckDB file is busy), :mod:`._snapshot` (a reader's in-memory copy),
:mod:`._files` (:func:`check_duckdb_file`), :mod:`._session` (the ``_in_session``
decorator of the mixins' methods). The tables are created by
:mod:`entprobe.store.schema` only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import StoreError, StoreLockedError
from ._files import check_duckdb_file
from ._lock import _OPEN_LOCK, _OPEN_WRITERS, _LockFile, _retry, writer_pid
from ._merge import MergeSummary, _Merging
from ._read import _Reading
from ._snapshot import snapshot
from ._write import _Writing
from .schema import SCHEMA_VERSION, TABLES, create_tables

__all__ = ["MergeSummary", "ResultStore", "check_duckdb_file", "writer_pid"]


def _version_number(version: Any) -> int:
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return 10**9  # unreadable: treat as newer than this entprobe


class ResultStore(_Writing, _Reading, _Merging):
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
            self._con = snapshot(self.path, self.wait)
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

    # --- owner and schema checks ------------------------------------------------------
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

    def _has_table(self, table: str, database: str | None = None) -> bool:
        database = database or self.con.execute("SELECT current_database()").fetchone()[0]
        return bool(
            self.con.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND table_name = ?",
                [database, table],
            ).fetchone()[0]
        )
