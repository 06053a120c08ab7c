"""T2I-CoReBench text prompts (``t2i-corebench:PATH``).

Two public layouts:

* GitHub: a folder (or its ``data/`` subfolder) of per-dimension files
  ``C-MI.json`` ... ``R-RR.json``, each a JSON object keyed by prompt ID
  (``"R-LR-001"``) whose values hold ``"Main Class"``, ``"Sub Class"``,
  ``"Prompt"``, ``"Checklist"`` and ``"Remark"``. PATH may also be one such file.
* Hub: ``splits/*.jsonl`` (or ``*.jsonl`` in the folder, or one JSONL file), one
  object per line with the same fields plus ``"ID"`` (and, in one mirror, ``"task"``);
  or the same as parquet: ``splits/*.parquet``, any ``*.parquet`` below the folder
  (the hub's automatic conversion ``<config>/<split>/0000.parquet``), or one
  parquet file. Parquet rows are numbered by their 1-based position in the file.
  A folder holding both JSONL and parquet splits is read from its JSONL.

The dimension (subcategory) comes from the ``task`` field, the ID prefix, the
file name (for ``<split>/0000.parquet``, the split folder's name; hub split names
spell ``C-MI`` as ``C_MI``) or the ``Sub Class`` name, whichever are present; they
must agree.
Category follows the paper's Table 1: Composition (C-MI, C-MA, C-MR, C-TR),
Deductive (R-LR, R-BR, R-HR, R-PR), Inductive (R-GR, R-AR), Abductive (R-CR, R-RR).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from entprobe.errors import DatasetError

from ._parquet import PARQUET_SUFFIX, ParquetFile, find_parquet
from ._records import PromptRecord, SkippedRow
from ._rows import LoadContext, RowProblem, iter_jsonl, read_json, read_json_or_fail, text_value

NAME = "t2i-corebench"
EXAMPLE = "t2i-corebench:~/data/T2I-CoReBench/data"
DESCRIPTION = (
    "T2I-CoReBench text prompts: a folder of C-MI.json ... R-RR.json, or the hub "
    "layout splits/*.jsonl or *.parquet (or one JSONL / parquet file)"
)
OPTIONS: dict[str, str] = {}

# dimension code -> (Table 1 category, dimension name)
DIMENSIONS: dict[str, tuple[str, str]] = {
    "C-MI": ("Composition", "Multi-Instance"),
    "C-MA": ("Composition", "Multi-Attribute"),
    "C-MR": ("Composition", "Multi-Relation"),
    "C-TR": ("Composition", "Text Rendering"),
    "R-LR": ("Deductive", "Logical Reasoning"),
    "R-BR": ("Deductive", "Behavioral Reasoning"),
    "R-HR": ("Deductive", "Hypothetical Reasoning"),
    "R-PR": ("Deductive", "Procedural Reasoning"),
    "R-GR": ("Inductive", "Generalization Reasoning"),
    "R-AR": ("Inductive", "Analogical Reasoning"),
    "R-CR": ("Abductive", "Commonsense Reasoning"),
    "R-RR": ("Abductive", "Reconstructive Reasoning"),
}
CATEGORIES = ("Composition", "Deductive", "Inductive", "Abductive")
_MAIN_CLASS = {"C": "composition", "R": "reasoning"}

_CODE = re.compile(r"^([CR])[-_ ]?([A-Z]{2})(?![A-Z])", re.IGNORECASE)
_NAME_TO_CODE = {re.sub(r"[^a-z]", "", name.lower()): code for code, (_, name) in DIMENSIONS.items()}
_NAME_TO_CODE["behaviouralreasoning"] = "R-BR"
_KNOWN_FIELDS = {"Main Class", "Sub Class", "Prompt", "Checklist", "Remark", "ID", "id", "task"}


def dimension_code(text: object) -> str | None:
    """``"R-LR"`` from ``"R-LR-001"``, ``"r_lr"``, ``"R-LR.json"``; else ``None``."""
    if not isinstance(text, str):
        return None
    m = _CODE.match(text.strip())
    if not m:
        return None
    code = f"{m.group(1)}-{m.group(2)}".upper()
    return code if code in DIMENSIONS else None


def load(path: Path, ctx: LoadContext) -> Iterator[PromptRecord | SkippedRow]:
    files, kind = _resolve(path)
    if path.is_file() and kind == "json":
        # a single file the user named: one that is not JSON at all is an error now
        return _rows_of_json(path, ctx, read_json_or_fail(str(path)))
    if path.is_file() and kind == "parquet":
        try:
            ParquetFile(path)
        except RowProblem as problem:
            raise DatasetError(f"{path}: {problem.reason}") from None
    return _iter_files(files, kind, ctx)


def _resolve(path: Path) -> tuple[list[Path], str]:
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in (".json", ".jsonl", PARQUET_SUFFIX):
            return [path], suffix[1:]
        raise DatasetError(f"{path}: a T2I-CoReBench file must be .json, .jsonl or .parquet")
    for base in (path, path / "data"):
        found = [base / f"{code}.json" for code in DIMENSIONS if (base / f"{code}.json").is_file()]
        if found:
            return found, "json"
    for base in (path / "splits", path):
        found = sorted(base.glob("*.jsonl"), key=_file_order) if base.is_dir() else []
        if found:
            return found, "jsonl"
    found = sorted(find_parquet(path), key=_file_order)
    if found:
        return found, "parquet"
    raise DatasetError(
        f"{path}: no T2I-CoReBench files; expected C-MI.json ... R-RR.json (GitHub layout, "
        "in the folder or its data/) or splits/*.jsonl or *.parquet (hub layout)"
    )


def _file_code(path: Path) -> str | None:
    """The dimension a file's name says; ``<split>/0000.parquet`` is named by its folder."""
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    if stem.isdigit():
        return dimension_code(path.parent.name)
    return dimension_code(stem)


def _file_order(path: Path) -> tuple[int, str]:
    code = _file_code(path)
    return (list(DIMENSIONS).index(code) if code else len(DIMENSIONS), str(path))


def _iter_files(files: list[Path], kind: str, ctx: LoadContext) -> Iterator[PromptRecord | SkippedRow]:
    for file in files:
        if kind == "jsonl":
            yield from _rows_of_jsonl(file, ctx)
            continue
        if kind == "parquet":
            yield from _rows_of_parquet(file, ctx)
            continue
        try:
            data = read_json(str(file))
        except RowProblem as problem:
            ctx.sources.append(str(file))
            yield ctx.skip(str(file), None, problem)
            continue
        yield from _rows_of_json(file, ctx, data)


def _rows_of_json(file: Path, ctx: LoadContext, data: object) -> Iterator[PromptRecord | SkippedRow]:
    source = str(file)
    ctx.sources.append(source)
    if isinstance(data, dict):
        entries = [(str(key), item) for key, item in data.items()]
    elif isinstance(data, list):
        entries = [(None, item) for item in data]
    else:
        yield SkippedRow(
            source,
            None,
            f"file holds a JSON {type(data).__name__}; expected an "
            "object keyed by prompt ID or a list of prompts",
            "unreadable-file",
        )
        return
    for position, (key, item) in enumerate(entries, 1):
        yield _outcome(item, key, source, position, file, ctx)


def _rows_of_jsonl(file: Path, ctx: LoadContext) -> Iterator[PromptRecord | SkippedRow]:
    source = str(file)
    ctx.sources.append(source)
    for line, item in iter_jsonl(source):
        if isinstance(item, RowProblem):
            yield ctx.skip(source, line, item)
        else:
            yield _outcome(item, None, source, line, file, ctx)


def _rows_of_parquet(file: Path, ctx: LoadContext) -> Iterator[PromptRecord | SkippedRow]:
    source = str(file)
    ctx.sources.append(source)
    try:
        table = ParquetFile(file)
        for row, item in table.rows():
            yield _outcome(item, None, source, row, file, ctx)
    except RowProblem as problem:  # the whole file, or the rest of it, is unreadable
        yield ctx.skip(source, None, problem)


def _outcome(
    item: object, key: str | None, source: str, row: int, file: Path, ctx: LoadContext
) -> PromptRecord | SkippedRow:
    rid = key if key is not None else _field_id(item)
    try:
        return _record(item, rid, source, row, file, ctx)
    except Exception as problem:  # noqa: BLE001 - recorded per row, see LoadContext.skip
        return ctx.skip(source, row, problem, rid)


def _field_id(item: object) -> str | None:
    if isinstance(item, dict):
        for name in ("ID", "id"):
            value = item.get(name)
            if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
                return str(value).strip()
    return None


def _record(
    item: object, rid: str | None, source: str, row: int, file: Path, ctx: LoadContext
) -> PromptRecord:
    if not isinstance(item, dict):
        raise RowProblem(f"entry should be a JSON object, got {type(item).__name__}")
    if "Prompt" not in item:
        raise RowProblem("missing field 'Prompt'", "missing-field")
    text = text_value(item["Prompt"], "Prompt")
    if not text:
        raise RowProblem("empty prompt", "empty-prompt")
    code = _dimension(item, rid, file)
    category, dim_name = DIMENSIONS[code]
    main_class = text_value(item.get("Main Class"), "Main Class")
    if main_class and main_class.lower() != _MAIN_CLASS[code[0]]:
        raise RowProblem(
            f"Main Class {main_class!r} does not fit dimension {code}; expected "
            f"{_MAIN_CLASS[code[0]].capitalize()!r}",
            "unknown-category",
        )
    meta = {
        "main_class": main_class or None,
        "sub_class": text_value(item.get("Sub Class"), "Sub Class") or None,
        "dimension": dim_name,
        "checklist": item.get("Checklist"),
        "remark": item.get("Remark"),
    }
    meta.update({k: v for k, v in item.items() if k not in _KNOWN_FIELDS})
    return PromptRecord(
        id=rid or f"{code}-{row:03d}",
        dataset=ctx.dataset,
        modality="text",
        text=text,
        category=category,
        subcategory=code,
        source=source,
        row=row,
        meta=meta,
    )


def _dimension(item: dict, rid: str | None, file: Path) -> str:
    found: dict[str, str] = {}
    task = item.get("task")
    if isinstance(task, str) and task.strip():
        code = dimension_code(task)
        if code is None:
            raise RowProblem(f"unknown T2I-CoReBench dimension {task!r} in field 'task'", "unknown-category")
        found["task"] = code
    for where, code in (("ID", dimension_code(rid)), ("file name", _file_code(file))):
        if code:
            found[where] = code
    if not found:
        sub = item.get("Sub Class")
        code = _NAME_TO_CODE.get(re.sub(r"[^a-z]", "", sub.lower())) if isinstance(sub, str) else None
        if code is None:
            raise RowProblem(
                f"unknown T2I-CoReBench dimension: no dimension code in ID {rid!r} or file "
                f"{file.name!r}, and Sub Class {sub!r} is not one of the 12 dimensions",
                "unknown-category",
            )
        return code
    codes = set(found.values())
    if len(codes) > 1:
        said = ", ".join(f"{where} says {code}" for where, code in found.items())
        raise RowProblem(f"conflicting T2I-CoReBench dimensions: {said}", "unknown-category")
    return codes.pop()
