"""Text prompts from a CSV file with a header row (``csv:PATH``).

Columns as for ``jsonl`` (``?text=``, ``?category=``, ``?subcategory=``, ``?id=``;
the text column defaults to ``text``, ``prompt``, ``question``, ``caption`` or
``instruction``). The delimiter is ``,`` (tab for ``.tsv`` files) unless
``?delimiter=`` says ``tab``, ``comma``, ``semicolon`` or one character.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from entprobe.errors import DatasetError

from ._jsonl import OPTIONS as _TEXT_OPTIONS
from ._jsonl import TextFields
from ._records import PromptRecord, SkippedRow
from ._rows import DelimitedRow, LoadContext, iter_delimited

NAME = "csv"
EXAMPLE = "csv:prompts.csv?text=prompt&category=group"
DESCRIPTION = "text prompts in a CSV file with a header (a text column, optional category columns)"
OPTIONS = {**_TEXT_OPTIONS, "delimiter": "tab, comma, semicolon or one character"}

_DELIMITERS = {"tab": "\t", "comma": ",", "semicolon": ";", "\\t": "\t"}


def delimiter_for(path: Path, option: str | None) -> str:
    """The delimiter named by ``option``, else by the file's suffix."""
    if option is None:
        return "\t" if path.suffix.lower() == ".tsv" else ","
    value = _DELIMITERS.get(option.lower(), option)
    if len(value) != 1:
        raise DatasetError(f"delimiter must be tab, comma, semicolon or one character, got {option!r}")
    return value


def read_header(path: Path, delimiter: str) -> tuple[list[str], Iterator[DelimitedRow]]:
    """The header names and the iterator over the remaining rows.

    Raises:
        DatasetError: the file is empty or its header cannot be parsed.
    """
    rows = iter_delimited(str(path), delimiter)
    header = next(rows, None)
    if header is None or header.fields is None:
        why = "is empty" if header is None else f"has an unreadable header ({header.problem})"
        raise DatasetError(f"{path} {why}; expected a header row")
    return [name.strip() for name in header.fields], rows


def load(path: Path, ctx: LoadContext) -> Iterator[PromptRecord | SkippedRow]:
    if not path.is_file():
        raise DatasetError(f"{path}: csv needs a file, not a folder")
    names, rows = read_header(path, delimiter_for(path, ctx.options.get("delimiter")))
    fields = TextFields.choose(names, ctx.options, str(path))
    for option in ("text", "category", "subcategory", "id"):
        if option in ctx.options and ctx.options[option] not in names:
            raise DatasetError(
                f"{path}: no column {ctx.options[option]!r} (?{option}=); the header has "
                f"{', '.join(names[:20])}"
            )
    ctx.sources.append(str(path))
    return _rows(path, names, rows, fields, ctx)


def _rows(
    path: Path, names: list[str], rows: Iterator[DelimitedRow], fields: TextFields, ctx: LoadContext
) -> Iterator[PromptRecord | SkippedRow]:
    source = str(path)
    for drow in rows:
        try:
            row = drow.as_dict(names)
            yield fields.record(row, stem=path.stem, source=source, line=drow.line, ctx=ctx)
        except Exception as problem:  # noqa: BLE001 - recorded per row
            yield ctx.skip(source, drow.line, problem)
