"""Checks and SQL spelling of the store's file on disk.

:func:`check_duckdb_file` reads a file's header to refuse, untouched, anything that is
not a DuckDB database; :func:`_sql_str` spells a file path as a SQL literal for the
statements that take no parameters (ATTACH, COPY). Both are needed by the store's
core, its reader snapshots and its merge/export, so they live apart from all three.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import StoreError

__all__ = ["check_duckdb_file"]


def _sql_str(value: str | os.PathLike[str]) -> str:
    """A SQL string literal (for statements that take no parameters: ATTACH, COPY)."""
    return "'" + str(value).replace("'", "''") + "'"


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
