"""MMBench as parquet on the hub (``mmbench:FILE.parquet`` or ``mmbench:FOLDER``).

Mirrors differ, so columns are recognised by name case-insensitively and by
content, never by one mirror's spelling:

* ``image``: an Image feature (a struct of ``bytes`` and ``path``), raw bytes, or
  base64 text; as in the TSV, text of at most 64 characters is the ``index`` of the
  row holding the image. A struct with no bytes but a ``path`` names a file beside
  the parquet file.
* ``index``: string or integer; circular-evaluation copies share
  ``index % 1_000_000`` (collapsed as in the TSV, across the files of a split).
* ``l2-category``, ``L2-category`` or ``l2_category``; options are the one-letter
  upper-case columns (``A`` ... ``D``).

A folder may hold several splits (``en/dev-00000-of-00001.parquet``,
``data/validation-*``, the hub's automatic ``<config>/<split>/0000.parquet``); with
more than one, pick it with ``?split=NAME`` (``en/dev``, or just ``dev`` when that
is unambiguous). The shards of one split are read together.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from entprobe.errors import DatasetError

from ._images import (
    FileImage,
    ImageRef,
    _decode,
    check_image_bytes,
    check_image_file,
    decode_base64,
)
from ._mmbench import _META_COLUMNS, _REFERENCE_MAX_CHARS, finish_rows, l2_column, parse_int, pending_row
from ._parquet import PARQUET_SUFFIX, ParquetFile, find_parquet, read_parquet_cell, split_key
from ._records import PromptRecord, SkippedRow
from ._rows import Collapsed, LoadContext, RowProblem, is_missing, text_value

__all__ = ["ParquetCellImage", "is_parquet_target", "load_parquet"]


@dataclass(frozen=True)
class ParquetCellImage:
    """An image in one cell of a parquet file (struct, bytes or base64), re-read
    from its row; ``key`` (the row's ``index``) is checked so a changed file is noticed."""

    path: str
    row: int
    column: str
    key_column: str
    key: str
    max_pixels: int | None

    def open(self, mode: str | None = "RGB") -> Any:
        key = read_parquet_cell(self.path, self.row, self.key_column)
        if str(key).strip() != self.key:
            raise DatasetError(
                f"{self.path} changed since it was loaded: row {self.row} no longer has "
                f"index {self.key}; load the prompt set again"
            )
        value = read_parquet_cell(self.path, self.row, self.column)
        try:
            data = _image_bytes(value)
        except RowProblem as err:
            raise DatasetError(str(err)) from None
        if data is None:
            raise DatasetError(f"{self.path} row {self.row} holds no image bytes any more")
        return _decode(data, self.max_pixels, mode)

    def describe(self) -> str:
        return f"{self.path}#row{self.row}"


def load_parquet(path: Path, ctx: LoadContext) -> Iterator[PromptRecord | SkippedRow | Collapsed]:
    """Rows of one parquet file, or of one split of a folder of them.

    Raises:
        DatasetError: no parquet files, several splits and no (or an unknown)
            ``split`` option, or a named file that is not parquet.
    """
    files = [path] if path.is_file() else _split_files(path, ctx.options.get("split"))
    tables = []
    for file in files:
        try:
            tables.append(ParquetFile(file))
        except RowProblem as problem:
            raise DatasetError(f"{file}: {problem.reason}") from None
    columns = [_Columns.find(table, Path(table.path)) for table in tables]
    ctx.sources.extend(str(f) for f in files)
    return _rows(tables, columns, ctx)


def _split_files(folder: Path, wanted: str | None) -> list[Path]:
    files = find_parquet(folder)
    if not files:
        raise DatasetError(
            f"{folder}: no MMBench TSV or parquet files; name a .tsv file, a .parquet "
            "file or a folder of parquet files"
        )
    splits: dict[str, list[Path]] = {}
    for file in files:
        splits.setdefault(split_key(file, folder), []).append(file)
    if wanted is None:
        if len(splits) == 1:
            return next(iter(splits.values()))
        raise DatasetError(
            f"{folder} holds {len(splits)} MMBench splits ({', '.join(splits)}); pick one "
            f"with ?split=NAME, e.g. 'mmbench:{folder}?split={next(iter(splits))}'"
        )
    wanted = wanted.strip("/")
    matches = [key for key in splits if key == wanted or key.endswith("/" + wanted)]
    if len(matches) != 1:
        which = "matches none" if not matches else f"matches {len(matches)}: {', '.join(matches)}"
        raise DatasetError(f"split {wanted!r} {which} of the splits in {folder} ({', '.join(splits)})")
    return splits[matches[0]]


@dataclass
class _Columns:
    index: str
    question: str
    image: str
    hint: str | None
    category: str | None
    l2: str | None
    options: list[str]
    extra: dict[str, str]

    @classmethod
    def find(cls, table: ParquetFile, path: Path) -> _Columns:
        names = list(table.columns)
        lower: dict[str, str] = {}
        for name in names:
            lower.setdefault(name.strip().lower(), name)
        l2 = l2_column(lower, names, path, "MMBench parquet")
        return cls(
            index=lower["index"],
            question=lower["question"],
            image=lower["image"],
            hint=lower.get("hint"),
            category=lower.get("category"),
            l2=l2,
            options=[n for n in names if len(n.strip()) == 1 and n.strip().isupper()],
            extra={key: lower[col] for col, key in _META_COLUMNS.items() if col in lower},
        )


def _rows(
    tables: list[ParquetFile], columns: list[_Columns], ctx: LoadContext
) -> Iterator[PromptRecord | SkippedRow | Collapsed]:
    outcomes: list[Any] = []
    images: dict[int, ImageRef | RowProblem] = {}
    for table, cols in zip(tables, columns):
        source = table.path
        try:
            for row, values in table.rows():
                raw_index = values.get(cols.index)
                try:
                    outcomes.append(_parse(row, values, cols, source, images, ctx))
                except Exception as problem:  # noqa: BLE001 - recorded per row
                    rid = None if is_missing(raw_index) else str(raw_index).strip()
                    outcomes.append(ctx.skip(source, row, problem, rid))
        except RowProblem as problem:  # the file broke part-way: say so, keep what was read
            outcomes.append(ctx.skip(source, None, problem))
    return finish_rows(outcomes, images, ctx)


def _parse(
    row: int,
    values: dict[str, Any],
    cols: _Columns,
    source: str,
    images: dict[int, ImageRef | RowProblem],
    ctx: LoadContext,
) -> Any:
    raw_index = text_value(values[cols.index], "index")
    index = parse_int(raw_index, "index")
    image: ImageRef | None = None
    ref: int | None = None
    cell = values[cols.image]
    if isinstance(cell, str) and not is_missing(cell) and len(cell.strip()) <= _REFERENCE_MAX_CHARS:
        ref = parse_int(cell.strip(), "image reference")
    else:
        try:
            image = _check_image(cell, row, cols, raw_index, source, ctx)
        except RowProblem as problem:
            images.setdefault(index, problem)
            raise
        images.setdefault(index, image)

    def text(column: str | None, name: str) -> str:
        return "" if column is None else text_value(values[column], name)

    fields = {
        "question": text(cols.question, "question"),
        "hint": text(cols.hint, "hint"),
        "category": text(cols.category, "category"),
        "l2": text(cols.l2, "l2-category"),
        "options": {name.strip(): text(name, name) for name in cols.options},
        **{key: text(column, column) for key, column in cols.extra.items()},
    }
    return pending_row(index, row, fields, image, ref, source)


def _check_image(cell: Any, row: int, cols: _Columns, key: str, source: str, ctx: LoadContext) -> ImageRef:
    data = _image_bytes(cell)
    if data is None:
        path = cell.get("path") if isinstance(cell, dict) else None
        if isinstance(path, str) and path.strip():
            file = Path(source).parent / path.strip()
            check_image_file(str(file), ctx.max_pixels)
            return FileImage(str(file), ctx.max_pixels)
        raise RowProblem("no image in the image column", "missing-image")
    check_image_bytes(data, ctx.max_pixels)
    return ParquetCellImage(source, row, cols.image, cols.index, key, ctx.max_pixels)


def _image_bytes(cell: Any) -> bytes | None:
    """The encoded image in a cell: an Image-feature struct's ``bytes``, raw bytes,
    or base64 text; ``None`` when the cell holds no bytes."""
    if isinstance(cell, dict):
        cell = cell.get("bytes")
    if cell is None:
        return None
    if isinstance(cell, (bytes, bytearray, memoryview)):
        return bytes(cell) or None
    if isinstance(cell, str):
        return None if is_missing(cell) else decode_base64(cell)
    raise RowProblem(f"image cell holds a {type(cell).__name__}; expected bytes or base64 text", "bad-image")


def is_parquet_target(path: Path) -> bool:
    """True for a ``.parquet`` file or a folder (MMBench TSVs are single files)."""
    return path.is_dir() or path.suffix.lower() == PARQUET_SUFFIX
