"""Reading rows out of files, shared by the loaders.

Each reader yields one item per row, either the parsed row or the
:class:`RowProblem` that row had, so a loader can count every row it was given.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from entprobe.errors import DatasetError

from ._records import SkippedRow

__all__ = [
    "LoadContext",
    "RowProblem",
    "Collapsed",
    "DelimitedRow",
    "iter_delimited",
    "read_tsv_record",
    "iter_jsonl",
    "read_json",
    "read_json_or_fail",
    "text_value",
    "is_missing",
    "format_options",
]


class RowProblem(Exception):
    """Why one row cannot be used; ``kind`` is one of ``SKIP_KINDS``."""

    def __init__(self, reason: str, kind: str = "malformed") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


@dataclass(frozen=True)
class Collapsed:
    """A row folded into an earlier record (an MMBench circular-evaluation copy)."""

    source: str
    row: int
    kept_id: str


@dataclass
class LoadContext:
    """What a loader is asked for: dataset name, SPEC options and limits. Loaders
    append every file they read to ``sources``."""

    dataset: str
    options: dict[str, str] = field(default_factory=dict)
    dedup: bool = True
    max_pixels: int | None = None
    sources: list[str] = field(default_factory=list)
    #: let image paths named in a data file point outside its folder.
    allow_outside_paths: bool = False

    def inside(self, image: Path, folder: Path) -> Path:
        """``image`` (absolute, or relative to ``folder``) if it lies inside
        ``folder`` after resolving ``..`` and links, or ``allow_outside_paths``.

        Raises:
            RowProblem: the path leaves the folder.
        """
        image = image.expanduser()
        image = image if image.is_absolute() else folder / image
        if self.allow_outside_paths:
            return image
        try:
            image.resolve().relative_to(folder.resolve())
        except ValueError:
            raise RowProblem(
                f"image path {str(image)!r} points outside the data folder {str(folder)!r}; "
                f"pass --allow-outside-paths to allow it",
                "outside-folder",
            ) from None
        return image

    def skip(self, source: str, row: int | None, problem: Exception, id: str | None = None) -> SkippedRow:
        """The :class:`SkippedRow` for ``problem``; an exception that is not a
        :class:`RowProblem` is a bug in a loader, recorded rather than raised so one
        odd row cannot stop a load halfway."""
        if isinstance(problem, RowProblem):
            return SkippedRow(source, row, problem.reason, problem.kind, id)
        return SkippedRow(source, row, f"unexpected {type(problem).__name__}: {problem}", "malformed", id)


# ---------------------------------------------------------------- CSV / TSV


def _raise_csv_field_limit() -> None:
    # base64 images in MMBench TSVs are far longer than csv's default 128 KiB field
    limit = min(sys.maxsize, 2**31 - 1)
    if csv.field_size_limit() < limit:
        csv.field_size_limit(limit)


@dataclass
class DelimitedRow:
    """One record of a CSV/TSV file: where it starts and its fields (or problem)."""

    line: int
    end_line: int
    offset: int
    fields: list[str] | None
    problem: RowProblem | None = None

    def as_dict(self, names: list[str]) -> dict[str, str]:
        """The row as ``{column: field}`` under the header ``names``.

        Raises:
            RowProblem: the row's own problem, or a field count other than the header's.
        """
        if self.problem is not None:
            raise self.problem
        values = self.fields or []
        if len(values) != len(names):
            raise RowProblem(f"row has {len(values)} fields; the header has {len(names)}")
        return dict(zip(names, values, strict=True))


class _LineFeed:
    """Feeds decoded lines to ``csv.reader`` while counting bytes and lines, so the
    byte offset and line number where each record starts are known (csv.reader
    pulls exactly the lines of one record, no read-ahead)."""

    def __init__(self, fh, offset: int = 0) -> None:
        self.fh = fh
        self.offset = offset
        self.lines = 0

    def __iter__(self) -> _LineFeed:
        return self

    def __next__(self) -> str:
        raw = self.fh.readline()
        if not raw:
            raise StopIteration
        if self.offset == 0 and raw.startswith(b"\xef\xbb\xbf"):
            raw_text = raw[3:]
        else:
            raw_text = raw
        self.offset += len(raw)
        self.lines += 1
        return raw_text.decode("utf-8", errors="surrogateescape")


def _utf8_problem(fields: list[str]) -> RowProblem | None:
    for value in fields:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as err:
            return RowProblem(f"row is not valid UTF-8 (byte {err.start} of a field)")
    return None


def iter_delimited(path: str, delimiter: str) -> Iterator[DelimitedRow]:
    """Yield every record of a delimited file (header included, as the first).

    Quoting follows the ``csv`` module's defaults, which read what pandas writes.
    Rows with bad quoting or bytes come back with ``problem`` set.
    """
    _raise_csv_field_limit()
    with open(path, "rb") as fh:
        feed = _LineFeed(fh)
        reader = csv.reader(feed, delimiter=delimiter)
        while True:
            offset, line = feed.offset, feed.lines + 1
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                yield DelimitedRow(
                    line,
                    max(line, feed.lines),
                    offset,
                    None,
                    RowProblem(f"row cannot be parsed ({err})"),
                )
                continue
            if not fields:
                continue  # a blank line is not a row
            yield DelimitedRow(line, max(line, feed.lines), offset, fields, _utf8_problem(fields))


def read_tsv_record(path: str, offset: int, delimiter: str = "\t") -> list[str] | None:
    """The fields of the record starting at byte ``offset`` (``None`` at end of file)."""
    _raise_csv_field_limit()
    with open(path, "rb") as fh:
        fh.seek(offset)
        feed = _LineFeed(fh, offset=offset)
        try:
            return next(csv.reader(feed, delimiter=delimiter))
        except (StopIteration, csv.Error):
            return None


# ---------------------------------------------------------------- JSON


def iter_jsonl(path: str) -> Iterator[tuple[int, object]]:
    """Yield ``(line_number, value)`` per non-blank line; ``value`` is a
    :class:`RowProblem` for a line that is not valid UTF-8 or JSON (e.g. truncated)."""
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                yield (
                    number,
                    RowProblem(f"line is not valid UTF-8 ({err.reason} at byte {err.start})"),
                )
                continue
            try:
                yield number, json.loads(text)
            except json.JSONDecodeError as err:
                yield (
                    number,
                    RowProblem(f"line is not valid JSON ({err.msg} at column {err.colno})"),
                )


def read_json(path: str) -> object:
    """Parse a whole JSON file.

    Raises:
        RowProblem: kind ``unreadable-file``, naming the line and column.
    """
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as err:
        raise RowProblem(f"file cannot be read ({err})", "unreadable-file") from None
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as err:
        raise RowProblem(
            f"file is not valid UTF-8 ({err.reason} at byte {err.start})", "unreadable-file"
        ) from None
    except json.JSONDecodeError as err:
        raise RowProblem(
            f"file is not valid JSON ({err.msg} at line {err.lineno}, column {err.colno}); "
            "none of its rows could be read",
            "unreadable-file",
        ) from None


def read_json_or_fail(path: str) -> object:
    """:func:`read_json` for a file the user named directly: failure is a DatasetError."""
    try:
        return read_json(path)
    except RowProblem as err:
        raise DatasetError(f"{path}: {err.reason}") from None


# ---------------------------------------------------------------- values

# what pandas (and so VLMEvalKit) reads back as NaN from an empty or "nan" cell
_MISSING = {"", "nan", "NaN", "NAN"}


def is_missing(value: object) -> bool:
    """True for ``None``, float NaN and empty / ``"nan"`` text (an empty hint or option)."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and value.strip() in _MISSING


def text_value(value: object, name: str) -> str:
    """A field that must hold text: strings pass, numbers are written out, missing is
    ``""``; anything else is a malformed row."""
    if is_missing(value):
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise RowProblem(f"field {name!r} should be text, got {type(value).__name__}")


def format_options(options: dict[str, str]) -> str:
    """``A. first\\nB. second`` for the options of a multiple-choice question."""
    return "\n".join(f"{letter}. {text}" for letter, text in options.items())
