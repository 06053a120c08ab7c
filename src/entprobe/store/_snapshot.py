"""Reader snapshots: a read-only store is copied into memory when it is opened.

A reader attaches the file read-only, copies the whole database into an in-memory
connection and lets go of the file at once, so that it never blocks the writer for
longer than the copy and can read while a probe writes. Separate from the store's
core because it is the readers' whole way of touching the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._files import _sql_str
from ._lock import _retry

__all__ = ["snapshot"]


def snapshot(path: Path, wait: float) -> Any:
    """An in-memory DuckDB connection holding a copy of the store at ``path``
    (retried for up to ``wait`` seconds while a writer is inside a transaction)."""
    import duckdb

    con = duckdb.connect()
    try:

        def copy() -> None:
            con.execute(f"ATTACH {_sql_str(path)} AS _entprobe_file (READ_ONLY)")
            try:
                con.execute("COPY FROM DATABASE _entprobe_file TO memory")
            finally:
                con.execute("DETACH _entprobe_file")

        _retry(copy, path, wait, "read")
    except BaseException:
        con.close()
        raise
    return con
