"""Reading parquet files (the benchmarks' hub layouts) with DuckDB.

Rows come back as plain Python values (``str``, ``int``, ``bytes``, ``dict`` for a
struct, ``list``), fetched in batches so a file of images is never held whole.
Row numbers are 1-based positions in the file, as for JSON entries.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from entprobe.errors import DatasetError

from ._rows import RowProblem

__all__ = [
    "PARQUET_SUFFIX",
    "ParquetFile",
    "find_parquet",
    "read_parquet_cell",
    "split_key",
]

PARQUET_SUFFIX = ".parquet"
_BATCH = 256
# "dev-00000-of-00003" -> "dev": the hub's shards of one split
_SHARD = re.compile(r"-\d{5}-of-\d{5}$")


def _connect() -> Any:
    import duckdb

    return duckdb.connect(":memory:")


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class ParquetFile:
    """One parquet file: its columns and its rows.

    Raises (on construction):
        RowProblem: kind ``unreadable-file`` when the file is not parquet or cannot
            be read; the caller decides whether that stops the load.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._con = _connect()
        try:
            described = self._con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [self.path]).fetchall()
        except Exception as err:  # duckdb raises IOException, InvalidInputException, ...
            self._con.close()
            raise RowProblem(
                f"not a readable parquet file ({type(err).__name__}: {_first_line(err)})",
                "unreadable-file",
            ) from None
        #: column name -> DuckDB type text, e.g. ``"STRUCT(bytes BLOB, path VARCHAR)"``
        self.columns: dict[str, str] = {row[0]: str(row[1]) for row in described}

    def rows(self, columns: Sequence[str] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
        """Yield ``(row_number, {column: value})``, 1-based, in file order.

        Args:
            columns: only these columns (default: all), e.g. to leave images out.

        Raises:
            RowProblem: ``unreadable-file`` if reading fails part-way.
        """
        names = list(self.columns) if columns is None else list(columns)
        select = ", ".join(_quoted(n) for n in names) or "1"
        try:
            cursor = self._con.execute(f"SELECT {select} FROM read_parquet(?)", [self.path])
            number = 0
            while True:
                batch = cursor.fetchmany(_BATCH)
                if not batch:
                    return
                for values in batch:
                    number += 1
                    yield number, dict(zip(names, values))
        except RowProblem:
            raise
        except Exception as err:
            raise RowProblem(
                f"reading the parquet file failed ({type(err).__name__}: {_first_line(err)})",
                "unreadable-file",
            ) from None
        finally:
            self._con.close()


def read_parquet_cell(path: str, row: int, column: str) -> Any:
    """The value in ``column`` of 1-based row ``row`` of a parquet file.

    Raises:
        DatasetError: the file cannot be read or has no such row / column.
    """
    con = _connect()
    try:
        found = con.execute(
            f"SELECT {_quoted(column)} FROM read_parquet(?, file_row_number = true) "
            "WHERE file_row_number = ?",
            [path, row - 1],
        ).fetchall()
    except Exception as err:
        raise DatasetError(f"{path} cannot be read ({_first_line(err)})") from None
    finally:
        con.close()
    if not found:
        raise DatasetError(f"{path} has no row {row} any more; load the prompt set again")
    return found[0][0]


def find_parquet(folder: Path) -> list[Path]:
    """Every ``*.parquet`` below ``folder`` (hidden folders excluded), sorted."""
    return sorted(
        p
        for p in folder.rglob(f"*{PARQUET_SUFFIX}")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def split_key(file: Path, root: Path) -> str:
    """The split a hub parquet file belongs to, as a path below ``root``.

    ``en/dev-00000-of-00001.parquet`` -> ``"en/dev"``; the hub's automatic
    conversion ``en/dev/0000.parquet`` -> ``"en/dev"``; ``dev.parquet`` -> ``"dev"``.
    """
    rel = file.relative_to(root) if file.is_relative_to(root) else Path(file.name)
    stem = _SHARD.sub("", file.name[: -len(PARQUET_SUFFIX)])
    if stem.isdigit():  # <config>/<split>/0000.parquet: the folder is the split
        return rel.parent.as_posix() or "."
    parent = rel.parent.as_posix()
    return stem if parent in ("", ".") else f"{parent}/{stem}"


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
