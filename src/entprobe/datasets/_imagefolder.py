"""Image prompts from a folder of image files (``images:DIR``).

Without a CSV every image under DIR is a prompt with empty text; its id is its
path relative to DIR and, for images in subfolders, its category is the first
subfolder's name (the ``ImageFolder`` convention).

With a CSV (``?csv=FILE``, or the folder's only ``.csv`` file) the CSV lists the
prompts: a file column (``?file=``, default ``file``, ``filename``, ``image``,
``path`` or ``image_path``; paths relative to DIR) and optional ``text`` /
``question``, ``category``, ``subcategory`` and ``id`` columns (or ``?text=`` ...).
Image files the CSV does not list are reported as skipped (``not-listed``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from entprobe.errors import DatasetError

from ._csvfile import delimiter_for, read_header
from ._images import IMAGE_SUFFIXES, FileImage, check_image_file
from ._records import PromptRecord, SkippedRow
from ._rows import DelimitedRow, LoadContext, RowProblem, text_value

NAME = "images"
EXAMPLE = "images:~/pictures/probe-set?csv=labels.csv"
DESCRIPTION = "a folder of image files, optionally with a CSV of file, text and category columns"
OPTIONS = {
    "csv": "CSV listing the images (default: the folder's only .csv file)",
    "file": "CSV column holding the image path",
    "text": "CSV column holding the question / prompt text",
    "category": "CSV column holding the category",
    "subcategory": "CSV column holding the subcategory",
    "id": "CSV column holding a unique id",
    "delimiter": "CSV delimiter: tab, comma, semicolon or one character",
}

_FILE_COLUMNS = ("file", "filename", "image", "path", "image_path")
_TEXT_COLUMNS = ("text", "question", "prompt", "caption")


def load(path: Path, ctx: LoadContext) -> Iterator[PromptRecord | SkippedRow]:
    if not path.is_dir():
        raise DatasetError(f"{path}: images needs a folder of image files")
    images = sorted(
        p
        for p in path.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )
    table = _find_csv(path, ctx.options.get("csv"))
    if table is None:
        if not images:
            raise DatasetError(f"{path}: no image files ({', '.join(IMAGE_SUFFIXES)}) and no CSV")
        return _plain(path, images, ctx)
    names, rows = read_header(table, delimiter_for(table, ctx.options.get("delimiter")))
    columns = _Columns.choose(names, ctx.options, table)
    ctx.sources.append(str(table))
    return _listed(path, table, images, rows, names, columns, ctx)


def _find_csv(folder: Path, option: str | None) -> Path | None:
    if option:
        table = Path(option).expanduser()
        table = table if table.is_absolute() else folder / table
        if not table.is_file():
            raise DatasetError(f"{table}: no such CSV file (?csv=)")
        return table
    tables = sorted(folder.glob("*.csv"))
    if len(tables) > 1:
        raise DatasetError(
            f"{folder} holds {len(tables)} CSV files ({', '.join(t.name for t in tables[:5])}); "
            "name the one to use with ?csv=FILE"
        )
    return tables[0] if tables else None


def _plain(folder: Path, images: list[Path], ctx: LoadContext) -> Iterator[PromptRecord | SkippedRow]:
    ctx.sources.append(str(folder))
    for position, image in enumerate(images, 1):
        rel = image.relative_to(folder)
        try:
            check_image_file(str(image), ctx.max_pixels)
            yield PromptRecord(
                id=rel.as_posix(),
                dataset=ctx.dataset,
                modality="image",
                text="",
                category=rel.parts[0] if len(rel.parts) > 1 else None,
                subcategory=None,
                source=str(image),
                row=position,
                meta={"file": rel.as_posix()},
                image_ref=FileImage(str(image), ctx.max_pixels),
            )
        except Exception as problem:  # noqa: BLE001 - recorded per row
            yield ctx.skip(str(image), position, problem, rel.as_posix())


@dataclass(frozen=True)
class _Columns:
    file: str
    text: str | None
    category: str | None
    subcategory: str | None
    id: str | None

    @classmethod
    def choose(cls, names: list[str], options: dict[str, str], table: Path) -> _Columns:
        for option in ("file", "text", "category", "subcategory", "id"):
            if option in options and options[option] not in names:
                raise DatasetError(
                    f"{table}: no column {options[option]!r} (?{option}=); "
                    f"the header has {', '.join(names[:20])}"
                )

        def pick(option: str, defaults: tuple[str, ...]) -> str | None:
            return options.get(option) or next((d for d in defaults if d in names), None)

        file = pick("file", _FILE_COLUMNS)
        if file is None:
            raise DatasetError(
                f"{table}: no image file column; the header has "
                f"{', '.join(names[:20])}. Name it with ?file=COLUMN"
            )
        return cls(
            file,
            pick("text", _TEXT_COLUMNS),
            pick("category", ("category",)),
            pick("subcategory", ("subcategory", "sub_category")),
            pick("id", ("id", "ID")),
        )


def _listed(
    folder: Path,
    table: Path,
    images: list[Path],
    rows: Iterator[DelimitedRow],
    names: list[str],
    cols: _Columns,
    ctx: LoadContext,
) -> Iterator[PromptRecord | SkippedRow]:
    source = str(table)
    listed: set[Path] = set()
    for drow in rows:
        try:
            row = drow.as_dict(names)
            name = text_value(row[cols.file], cols.file)
            if not name:
                raise RowProblem(f"empty {cols.file!r} column", "missing-image")
            image = ctx.inside(Path(name), folder)
            listed.add(image.resolve())
            check_image_file(str(image), ctx.max_pixels)
            used = {cols.file, cols.text, cols.category, cols.subcategory, cols.id}
            rid = text_value(row[cols.id], cols.id) if cols.id else ""
            yield PromptRecord(
                id=rid or name,
                dataset=ctx.dataset,
                modality="image",
                text=text_value(row[cols.text], cols.text) if cols.text else "",
                category=(text_value(row[cols.category], cols.category) or None) if cols.category else None,
                subcategory=(text_value(row[cols.subcategory], cols.subcategory) or None)
                if cols.subcategory
                else None,
                source=source,
                row=drow.line,
                meta={"file": name, **{k: v for k, v in row.items() if k not in used}},
                image_ref=FileImage(str(image), ctx.max_pixels),
            )
        except Exception as problem:  # noqa: BLE001 - recorded per row
            yield ctx.skip(source, drow.line, problem)
    for image in images:
        if image.resolve() not in listed:
            yield SkippedRow(str(image), None, f"image file not listed in {table.name}", "not-listed")
