"""Text prompts from a JSON-lines file (``jsonl:PATH``), one object per line.

The text field is ``text``, ``prompt``, ``question``, ``caption`` or ``instruction``
(the first the first object has), or the one named with ``?text=FIELD``. Optional
``?category=FIELD``, ``?subcategory=FIELD`` (default: ``category`` /
``subcategory`` when present) and ``?id=FIELD`` (default ``id``; otherwise
``<file stem>-<line>``). Every other field goes to ``meta``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from entprobe.errors import DatasetError

from ._records import PromptRecord, SkippedRow
from ._rows import LoadContext, RowProblem, iter_jsonl, text_value

NAME = "jsonl"
EXAMPLE = "jsonl:prompts.jsonl?text=prompt&category=topic"
DESCRIPTION = "text prompts, one JSON object per line (a text field, optional category fields)"
OPTIONS = {
    "text": "field holding the prompt text",
    "category": "field holding the category",
    "subcategory": "field holding the subcategory",
    "id": "field holding a unique id",
}

TEXT_CANDIDATES = ("text", "prompt", "Prompt", "question", "caption", "instruction")


@dataclass(frozen=True)
class TextFields:
    """Which fields of a row hold the text, category, subcategory and id."""

    text: str
    category: str | None
    subcategory: str | None
    id: str | None

    @classmethod
    def choose(cls, keys: list[str], options: Mapping[str, str], where: str) -> TextFields:
        """Pick the fields from the first row's keys and the SPEC options.

        Raises:
            DatasetError: no text field, or a named field is not in the first row
                (for files with a header, ``keys`` is the header).
        """
        text = options.get("text") or next((k for k in TEXT_CANDIDATES if k in keys), None)
        if text is None:
            raise DatasetError(
                f"{where}: no text field; found {', '.join(keys[:20]) or 'none'}. Name it with "
                f"?text=FIELD (looked for {', '.join(TEXT_CANDIDATES)})"
            )

        def pick(option: str, *defaults: str) -> str | None:
            if option in options:
                return options[option]
            return next((d for d in defaults if d in keys), None)

        return cls(
            text=text,
            category=pick("category", "category"),
            subcategory=pick("subcategory", "subcategory", "sub_category"),
            id=pick("id", "id", "ID"),
        )

    def record(
        self, row: Mapping[str, object], *, stem: str, source: str, line: int, ctx: LoadContext
    ) -> PromptRecord:
        if self.text not in row:
            raise RowProblem(f"missing field {self.text!r}", "missing-field")
        text = text_value(row[self.text], self.text)
        if not text:
            raise RowProblem("empty prompt", "empty-prompt")
        rid = text_value(row.get(self.id), self.id) if self.id else ""
        used = {self.text, self.category, self.subcategory, self.id}
        return PromptRecord(
            id=rid or f"{stem}-{line}",
            dataset=ctx.dataset,
            modality="text",
            text=text,
            category=self._optional(row, self.category),
            subcategory=self._optional(row, self.subcategory),
            source=source,
            row=line,
            meta={k: v for k, v in row.items() if k not in used},
        )

    @staticmethod
    def _optional(row: Mapping[str, object], name: str | None) -> str | None:
        if name is None:
            return None
        return text_value(row.get(name), name) or None


def load(path: Path, ctx: LoadContext) -> Iterator[PromptRecord | SkippedRow]:
    if not path.is_file():
        raise DatasetError(f"{path}: jsonl needs a file, not a folder")
    first = next((item for _, item in iter_jsonl(str(path)) if isinstance(item, dict)), None)
    if first is None:
        raise DatasetError(f"{path}: no line holds a JSON object")
    fields = TextFields.choose(list(first), ctx.options, str(path))
    ctx.sources.append(str(path))
    return _rows(path, fields, ctx)


def _rows(path: Path, fields: TextFields, ctx: LoadContext) -> Iterator[PromptRecord | SkippedRow]:
    source = str(path)
    for line, item in iter_jsonl(source):
        try:
            if isinstance(item, RowProblem):
                raise item
            if not isinstance(item, dict):
                raise RowProblem(f"line should hold a JSON object, got {type(item).__name__}")
            yield fields.record(item, stem=path.stem, source=source, line=line, ctx=ctx)
        except Exception as problem:  # noqa: BLE001 - recorded per row
            yield ctx.skip(source, line, problem)
