"""MMBench image prompts from a VLMEvalKit TSV (``mmbench:PATH.tsv``); the hub's
parquet mirrors are read by :mod:`._mmbench_parquet` into the same records.

Columns: ``index, question, hint, A, B, C, D, answer, category, image, source,
l2-category, comment, split`` (only ``index``, ``question``, ``image`` and one of
``l2-category`` / ``category`` are required; hint and options may be empty or
``nan``). ``image`` is base64, or (at most 64 characters) the ``index`` of the row
holding the image. Circular-evaluation copies share ``index % 1_000_000``; by
default they are collapsed into the first row of their group (``dedup=False`` keeps
every row). The record text is the question text a model would see: the hint, the
question and the options.

Category is the paper's Table 1 image type from ``l2-category`` (or, when that
column is missing or empty, from the leaf ``category``); subcategory is the leaf
``category``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from entprobe.errors import DatasetError

from ._images import ImageRef, TsvCellImage, check_image_bytes, decode_base64
from ._records import PromptRecord, SkippedRow
from ._rows import (
    Collapsed,
    DelimitedRow,
    LoadContext,
    RowProblem,
    format_options,
    is_missing,
    iter_delimited,
)

NAME = "mmbench"
EXAMPLE = "mmbench:~/LMUData/MMBench_DEV_EN.tsv"
DESCRIPTION = (
    "MMBench image prompts, VLMEvalKit TSV (base64 or index-referenced images) or the "
    "hub's parquet (a .parquet file or a folder; ?split=NAME picks one of several); "
    "circular-evaluation copies collapsed unless --no-dedup"
)
OPTIONS: dict[str, str] = {"split": "split of a parquet folder holding several, e.g. en/dev"}

# l2-category -> the paper's Table 1 image type
L2_CATEGORIES: dict[str, str] = {
    "coarse_perception": "Coarse",
    "finegrained_perception (instance-level)": "Single-instance",
    "finegrained_perception (cross-instance)": "Cross-instance",
    "attribute_reasoning": "Attribute",
    "relation_reasoning": "Relation",
    "logic_reasoning": "Logical",
}
CATEGORIES = tuple(L2_CATEGORIES.values())

# MMBench's 20 leaf abilities -> l2-category, for files without l2-category
LEAF_CATEGORIES: dict[str, str] = {
    **dict.fromkeys(
        ["image_style", "image_scene", "image_emotion", "image_quality", "image_topic"],
        "coarse_perception",
    ),
    **dict.fromkeys(
        ["object_localization", "attribute_recognition", "celebrity_recognition", "ocr"],
        "finegrained_perception (instance-level)",
    ),
    **dict.fromkeys(
        ["spatial_relationship", "attribute_comparison", "action_recognition"],
        "finegrained_perception (cross-instance)",
    ),
    **dict.fromkeys(
        ["physical_property_reasoning", "function_reasoning", "identity_reasoning"],
        "attribute_reasoning",
    ),
    **dict.fromkeys(["social_relation", "physical_relation", "nature_relation"], "relation_reasoning"),
    **dict.fromkeys(["future_prediction", "structuralized_imagetext_understanding"], "logic_reasoning"),
}

CIRCULAR_MOD = 1_000_000
_REFERENCE_MAX_CHARS = 64  # VLMEvalKit's rule: a shorter image cell is an index
_META_COLUMNS = {"answer": "answer", "source": "origin", "comment": "comment", "split": "split"}

_C = TypeVar("_C")  # how a table names its columns: a position (TSV) or a name (parquet)


def load(path: Path, ctx: LoadContext) -> Iterator[PromptRecord | SkippedRow | Collapsed]:
    from ._mmbench_parquet import is_parquet_target, load_parquet

    if is_parquet_target(path):
        return load_parquet(path, ctx)
    if "split" in ctx.options:
        raise DatasetError(f"{path}: the split option picks a split of a parquet folder; a TSV is one split")
    rows = iter_delimited(str(path), "\t")
    try:
        header = next(rows, None)
    except OSError as err:
        raise DatasetError(f"{path} cannot be read ({err})") from None
    if header is None:
        raise DatasetError(f"{path} is empty; expected a VLMEvalKit TSV with a header row")
    if header.problem is not None:
        raise DatasetError(f"{path}: the header row cannot be read ({header.problem.reason})")
    columns = _Columns.from_header(header.fields or [], path)
    ctx.sources.append(str(path))
    return _load_rows(rows, columns, str(path), ctx)


def l2_column(lower: Mapping[str, _C], names: Sequence[str], path: Path, what: str) -> _C | None:
    """The ``l2-category`` (or ``l2_category``) column of an MMBench table, None when
    only the leaf ``category`` is there.

    Args:
        lower: lower-cased column name -> the table's own column (index or name).
        names: the header as found, named in the error.
        what: what the file was expected to be, e.g. ``"an MMBench TSV"``.

    Raises:
        DatasetError: ``index``, ``question``, ``image`` or both category columns are missing.
    """
    missing = [n for n in ("index", "question", "image") if n not in lower]
    l2 = lower.get("l2-category", lower.get("l2_category"))
    if "category" not in lower and l2 is None:
        missing.append("l2-category or category")
    if missing:
        raise DatasetError(
            f"{path} is not {what}: missing column(s) {', '.join(missing)}; found {', '.join(names[:20])}"
        )
    return l2


@dataclass
class _Columns:
    names: list[str]
    index: int
    question: int
    image: int
    hint: int | None
    category: int | None
    l2: int | None
    options: list[tuple[str, int]]
    extra: dict[str, int]

    @classmethod
    def from_header(cls, names: list[str], path: Path) -> _Columns:
        names = [n.strip() for n in names]
        lower = {n.lower(): i for i, n in reversed(list(enumerate(names)))}
        l2 = l2_column(lower, names, path, "an MMBench TSV")
        options = [(n, i) for i, n in enumerate(names) if len(n) == 1 and n.isupper()]
        extra = {key: lower[col] for col, key in _META_COLUMNS.items() if col in lower}
        return cls(
            names,
            lower["index"],
            lower["question"],
            lower["image"],
            lower.get("hint"),
            lower.get("category"),
            l2,
            options,
            extra,
        )


@dataclass
class _Pending:
    """A row that parsed; its image may still be a reference to resolve."""

    index: int
    row: int
    fields: dict
    image: ImageRef | None
    ref: int | None
    source: str = ""


def _load_rows(
    rows: Iterator[DelimitedRow], cols: _Columns, source: str, ctx: LoadContext
) -> Iterator[PromptRecord | SkippedRow | Collapsed]:
    # one pass: check each base64 image's header and remember where it is; rows
    # whose image is a reference are resolved after the pass (it may point ahead)
    outcomes: list[_Pending | SkippedRow] = []
    images: dict[int, ImageRef | RowProblem] = {}
    for drow in rows:
        try:
            outcomes.append(_parse(drow, cols, source, images, ctx))
        except Exception as problem:  # noqa: BLE001 - recorded per row
            outcomes.append(ctx.skip(source, drow.line, problem, _raw_index(drow, cols)))
    return finish_rows(outcomes, images, ctx)


def finish_rows(
    outcomes: list[_Pending | SkippedRow],
    images: dict[int, ImageRef | RowProblem],
    ctx: LoadContext,
) -> Iterator[PromptRecord | SkippedRow | Collapsed]:
    """Resolve image references, then collapse circular-evaluation copies (shared
    by the TSV and the parquet reader; ``images`` maps index -> image or problem)."""
    resolved: list[_Pending | SkippedRow] = []
    for item in outcomes:
        if isinstance(item, _Pending) and item.ref is not None:
            try:
                item.image = _resolve(item.ref, images)
            except RowProblem as problem:
                item = ctx.skip(item.source, item.row, problem, str(item.index))
        resolved.append(item)

    groups: dict[int, list[_Pending]] = {}
    if ctx.dedup:
        for item in resolved:
            if isinstance(item, _Pending):
                groups.setdefault(item.index % CIRCULAR_MOD, []).append(item)
    for item in resolved:
        if isinstance(item, SkippedRow):
            yield item
            continue
        group = groups.get(item.index % CIRCULAR_MOD, [item])
        first = min(group, key=lambda p: p.index)  # the original has index < 1_000_000
        if first is not item and first.index == item.index:
            where = "" if first.source == item.source else f" of {first.source}"
            yield SkippedRow(
                item.source,
                item.row,
                f"index {item.index} already used on line {first.row}{where}",
                "duplicate-id",
                str(item.index),
            )
        elif first is not item:
            yield Collapsed(item.source, item.row, str(first.index))
        else:
            copies = sorted({p.index for p in group} - {item.index})
            yield _record(item, copies, item.source, ctx)


def _raw_index(drow: DelimitedRow, cols: _Columns) -> str | None:
    if drow.fields and len(drow.fields) > cols.index:
        return drow.fields[cols.index].strip() or None
    return None


def _parse(
    drow: DelimitedRow,
    cols: _Columns,
    source: str,
    images: dict[int, ImageRef | RowProblem],
    ctx: LoadContext,
) -> _Pending:
    if drow.problem is not None:
        raise drow.problem
    fields = drow.fields or []
    if len(fields) != len(cols.names):
        span = (
            f" (the row spans lines {drow.line}-{drow.end_line}: an unbalanced quote?)"
            if drow.end_line > drow.line
            else ""
        )
        raise RowProblem(f"row has {len(fields)} fields; the header has {len(cols.names)}{span}")
    raw_index = fields[cols.index].strip()
    index = parse_int(raw_index, "index")

    image_cell = fields[cols.image].strip()
    image, ref = None, None
    if is_missing(image_cell):
        raise RowProblem("no image in the image column", "missing-image")
    if len(image_cell) <= _REFERENCE_MAX_CHARS:
        ref = parse_int(image_cell, "image reference")
    else:
        try:
            check_image_bytes(decode_base64(image_cell), ctx.max_pixels)
        except RowProblem as problem:
            images.setdefault(index, problem)
            raise
        image = TsvCellImage(source, drow.offset, cols.image, cols.index, raw_index, ctx.max_pixels)
        images.setdefault(index, image)

    def cell(i: int | None) -> str:
        return "" if i is None else fields[i]

    values = {
        "question": cell(cols.question),
        "hint": cell(cols.hint),
        "category": cell(cols.category),
        "l2": cell(cols.l2),
        "options": {name: fields[i] for name, i in cols.options},
        **{key: fields[i] for key, i in cols.extra.items()},
    }
    return pending_row(index, drow.line, values, image, ref, source)


def pending_row(
    index: int, row: int, values: dict, image: ImageRef | None, ref: int | None, source: str
) -> _Pending:
    """Check one row's text fields (``question``, ``hint``, ``category``, ``l2``,
    ``options`` and the meta columns, as text) and keep it for :func:`finish_rows`.

    Raises:
        RowProblem: empty question or unknown category.
    """
    question = values["question"].strip()
    if is_missing(question):
        raise RowProblem("empty question", "empty-prompt")
    leaf = values["category"].strip()
    leaf = "" if is_missing(leaf) else leaf
    l2 = values["l2"].strip()
    if is_missing(l2):
        if leaf not in LEAF_CATEGORIES:
            raise RowProblem(f"unknown MMBench category {leaf!r} and no l2-category", "unknown-category")
        l2 = LEAF_CATEGORIES[leaf]
    if l2 not in L2_CATEGORIES:
        raise RowProblem(
            f"unknown MMBench l2-category {l2!r}; expected one of {', '.join(L2_CATEGORIES)}",
            "unknown-category",
        )
    hint = "" if is_missing(values["hint"]) else values["hint"].strip()
    options = {name: text.strip() for name, text in values["options"].items() if not is_missing(text)}
    parsed = {
        "question": question,
        "hint": hint or None,
        "options": options,
        "l2": l2,
        "leaf": leaf or None,
        **{
            key: (None if is_missing(values[key]) else values[key].strip())
            for key in _META_COLUMNS.values()
            if key in values
        },
    }
    return _Pending(index, row, parsed, image, ref, source)


def parse_int(text: str, what: str) -> int:
    try:
        value = float(text) if "." in text else int(text)
    except ValueError:
        raise RowProblem(f"{what} {text[:40]!r} is not an integer") from None
    if value != int(value):
        raise RowProblem(f"{what} {text!r} is not an integer")
    return int(value)


def _resolve(target: int, images: dict[int, ImageRef | RowProblem]) -> ImageRef:
    found = images.get(target)
    if found is None:
        raise RowProblem(
            f"image refers to index {target}, but no row with that index holds an image",
            "dangling-reference",
        )
    if isinstance(found, RowProblem):
        raise RowProblem(
            f"image refers to index {target}, whose image is unusable ({found.reason})",
            "dangling-reference",
        )
    return found


def _record(item: _Pending, copies: list[int], source: str, ctx: LoadContext) -> PromptRecord:
    f = item.fields
    parts = []
    if f["hint"]:
        parts.append(f"Hint: {f['hint']}")
    parts.append(f"Question: {f['question']}")
    if f["options"]:
        parts.append("Options:\n" + format_options(f["options"]))
    meta = {
        "index": item.index,
        "question": f["question"],
        "hint": f["hint"],
        "options": f["options"],
        "answer": f.get("answer"),
        "l2_category": f["l2"],
        "mmbench_category": f["leaf"],
        "split": f.get("split"),
        "origin": f.get("origin"),
        "comment": f.get("comment"),
        "image_from_index": None if item.ref is None else item.ref,
    }
    if copies:
        meta["circular_copies"] = copies
    return PromptRecord(
        id=str(item.index),
        dataset=ctx.dataset,
        modality="image",
        text="\n".join(parts),
        category=L2_CATEGORIES[f["l2"]],
        subcategory=f["leaf"] or f["l2"],
        source=source,
        row=item.row,
        meta=meta,
        image_ref=item.image,
    )
