"""RealUnify items (``realunify:PATH``): a folder with its JSON files, or one file.

* UEG (understanding enhances generation), ``UEG_direct.json`` / ``UEG_step.json``:
  text prompts for image generation, ``prompt`` (direct) or ``new_prompt`` (step),
  with ``task_type`` in world_knowledge, commonsense_reasoning, logical_reasoning,
  mathematical_reasoning, scientific_reasoning, code_to_image, and ``question_list``.
* GEU (generation enhances understanding), ``GEU_direct.json`` / ``GEU_step.json``:
  image understanding items with a question, options, an A-D ``answer`` and
  ``task_type``. The image is read from ``image`` / ``image_path`` / ``img`` /
  ``images`` ..., a path relative to the JSON file (or base64 text).

A file's kind comes from its name (``UEG*`` / ``GEU*``); a file named otherwise is
read item by item (an item with an image field is GEU). Files may hold a JSON list,
an object keyed by id, or JSON lines. Category is ``task_type``; subcategory is the
file's variant (``UEG_direct``, ``GEU_step`` ...); ids are ``"<file stem>:<id>"``
because the direct and step files share item ids.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from entprobe.errors import DatasetError

from ._images import Base64Image, FileImage, check_image_bytes, check_image_file, decode_base64
from ._records import PromptRecord, SkippedRow
from ._rows import (
    LoadContext,
    RowProblem,
    format_options,
    is_missing,
    iter_jsonl,
    read_json,
    read_json_or_fail,
    text_value,
)

NAME = "realunify"
EXAMPLE = "realunify:~/data/RealUnify"
DESCRIPTION = (
    "RealUnify JSON files: UEG_*.json (text prompts for image generation, by task_type) "
    "and GEU_*.json (image understanding items)"
)
OPTIONS: dict[str, str] = {}

UEG_TASK_TYPES = (
    "world_knowledge",
    "commonsense_reasoning",
    "logical_reasoning",
    "mathematical_reasoning",
    "scientific_reasoning",
    "code_to_image",
)
_IMAGE_KEYS = ("image", "image_path", "img", "img_path", "image_file", "images", "image_paths")
_ID_KEYS = ("id", "ID", "index", "idx", "question_id")
_BASE64_MIN_CHARS = 64  # a longer run of base64 characters (no dot, so no file suffix) is an image
_BASE64 = re.compile(r"(data:[\w/+.-]*;base64,)?[A-Za-z0-9+/=\s]+")


def load(path: Path, ctx: LoadContext) -> Iterator[PromptRecord | SkippedRow]:
    if path.is_file():
        if path.suffix.lower() not in (".json", ".jsonl"):
            raise DatasetError(f"{path}: a RealUnify file must be .json or .jsonl")
        if path.suffix.lower() == ".json":
            data = read_json_or_fail(str(path))
            ctx.sources.append(str(path))
            return _items(path, data, ctx)
        return _iter_files([path], ctx)
    files = sorted(
        p
        for p in path.iterdir()
        if p.suffix.lower() in (".json", ".jsonl") and p.stem.upper().startswith(("UEG", "GEU"))
    )
    if not files:
        raise DatasetError(
            f"{path}: no RealUnify files; expected UEG_direct.json, UEG_step.json, "
            "GEU_direct.json and/or GEU_step.json"
        )
    return _iter_files(files, ctx)


def _iter_files(files: list[Path], ctx: LoadContext) -> Iterator[PromptRecord | SkippedRow]:
    for file in files:
        ctx.sources.append(str(file))
        if file.suffix.lower() == ".jsonl":
            for line, item in iter_jsonl(str(file)):
                if isinstance(item, RowProblem):
                    yield ctx.skip(str(file), line, item)
                else:
                    yield _outcome(file, line, None, item, ctx)
            continue
        try:
            data = read_json(str(file))
        except RowProblem as problem:
            yield ctx.skip(str(file), None, problem)
            continue
        yield from _items(file, data, ctx)


def _items(file: Path, data: object, ctx: LoadContext) -> Iterator[PromptRecord | SkippedRow]:
    if isinstance(data, dict) and all(isinstance(v, dict) for v in data.values()):
        entries = [(str(k), v) for k, v in data.items()]
    elif isinstance(data, list):
        entries = [(None, v) for v in data]
    else:
        yield SkippedRow(
            str(file),
            None,
            f"file holds a JSON {type(data).__name__}; expected a list of items or an object keyed by id",
            "unreadable-file",
        )
        return
    for position, (key, item) in enumerate(entries, 1):
        yield _outcome(file, position, key, item, ctx)


def _outcome(
    file: Path, row: int, key: str | None, item: object, ctx: LoadContext
) -> PromptRecord | SkippedRow:
    rid = f"{file.stem}:{key or _item_id(item) or row}"
    try:
        return _record(file, row, rid, item, ctx)
    except Exception as problem:  # noqa: BLE001 - recorded per row
        return ctx.skip(str(file), row, problem, rid)


def _item_id(item: object) -> str | None:
    if isinstance(item, dict):
        for name in _ID_KEYS:
            value = item.get(name)
            if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
                return str(value).strip()
    return None


def _record(file: Path, row: int, rid: str, item: object, ctx: LoadContext) -> PromptRecord:
    if not isinstance(item, dict):
        raise RowProblem(f"item should be a JSON object, got {type(item).__name__}")
    stem = file.stem.upper()
    kind = (
        "UEG"
        if stem.startswith("UEG")
        else "GEU"
        if stem.startswith("GEU")
        else ("GEU" if any(k in item for k in _IMAGE_KEYS) else "UEG")
    )
    if "task_type" not in item:
        raise RowProblem("missing field 'task_type'", "missing-field")
    task_type = text_value(item["task_type"], "task_type")
    if not task_type:
        raise RowProblem("empty task_type", "unknown-category")
    step = "step" in file.stem.lower()
    common = {"task": kind, "variant": file.stem, "task_type": task_type}
    # What a text (UEG) and an image (GEU) record share: id, place and categories.
    where = {
        "id": rid,
        "dataset": ctx.dataset,
        "category": task_type,
        "subcategory": file.stem,
        "source": str(file),
        "row": row,
    }
    if kind == "UEG":
        if task_type not in UEG_TASK_TYPES:
            raise RowProblem(
                f"unknown UEG task_type {task_type!r}; expected one of {', '.join(UEG_TASK_TYPES)}",
                "unknown-category",
            )
        keys = ("new_prompt", "prompt") if step else ("prompt", "new_prompt")
        text = _first_text(item, keys)
        meta = {**common, **{k: v for k, v in item.items() if k not in (keys[0], "task_type")}}
        return PromptRecord(**where, modality="text", text=text, meta=meta)
    question = _first_text(item, ("question", "new_question", "prompt"))
    options = _options(item)
    text = question + ("\nOptions:\n" + format_options(options) if options else "")
    image, extra_images = _image(item, file, ctx)
    meta = {
        **common,
        "question": question,
        "options": options,
        "image": image.describe() if isinstance(image, FileImage) else None,
        "extra_images": extra_images,
        **{k: v for k, v in item.items() if k not in ("question", "task_type", *_IMAGE_KEYS)},
    }
    return PromptRecord(**where, modality="image", text=text, meta=meta, image_ref=image)


def _first_text(item: dict, keys: tuple[str, ...]) -> str:
    present = [k for k in keys if k in item]
    if not present:
        raise RowProblem(f"missing field {keys[0]!r}", "missing-field")
    text = text_value(item[present[0]], present[0])
    if not text:
        raise RowProblem(f"empty {present[0]}", "empty-prompt")
    return text


def _options(item: dict) -> dict[str, str]:
    raw = item.get("options", item.get("choices"))
    if isinstance(raw, list):
        return {chr(ord("A") + i): text_value(v, "options") for i, v in enumerate(raw) if not is_missing(v)}
    if isinstance(raw, dict):
        return {str(k): text_value(v, "options") for k, v in raw.items() if not is_missing(v)}
    return {k: text_value(item[k], k) for k in "ABCDEF" if k in item and not is_missing(item[k])}


def _image(item: dict, file: Path, ctx: LoadContext) -> tuple[FileImage | Base64Image, list]:
    """The item's (first) image, checked, and any further image paths."""
    key = next((k for k in _IMAGE_KEYS if k in item), None)
    value = item.get(key) if key else None
    extra: list = []
    if isinstance(value, list):
        value, extra = (value[0], value[1:]) if value else (None, [])
    if not isinstance(value, str) or not value.strip():
        raise RowProblem(f"no image (none of the fields {', '.join(_IMAGE_KEYS)})", "missing-image")
    value = value.strip()
    path = Path(value).expanduser() if len(value) < 4096 else None
    if path is not None and not path.is_absolute():
        path = file.parent / path
    if (path is None or not _exists(path)) and len(value) > _BASE64_MIN_CHARS and _BASE64.fullmatch(value):
        check_image_bytes(decode_base64(value), ctx.max_pixels)
        return Base64Image(value, ctx.max_pixels), extra
    if path is None:
        raise RowProblem("image field is neither a file path nor base64", "bad-image")
    path = ctx.inside(path, file.parent)
    check_image_file(str(path), ctx.max_pixels)
    return FileImage(str(path), ctx.max_pixels), extra


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # e.g. a base64 string too long to be a file name
        return False
