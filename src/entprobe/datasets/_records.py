"""The uniform records every loader yields: :class:`PromptRecord`, :class:`SkippedRow`
and the :class:`PromptSet` that holds them with the load report."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from entprobe.errors import DatasetError

from ._buckets import count_tokens, length_buckets

if TYPE_CHECKING:
    from PIL import Image

    from ._images import ImageRef

__all__ = ["PromptRecord", "SkippedRow", "PromptSet", "MODALITIES", "SKIP_KINDS"]

MODALITIES = ("text", "image")

# Why a row was skipped, as a short machine-readable kind; the reason says the rest.
SKIP_KINDS = {
    "malformed": "malformed row (bad JSON, wrong number of fields, bad value)",
    "missing-field": "a required field is missing",
    "empty-prompt": "empty prompt text",
    "unknown-category": "category / dimension / task type not known for the format",
    "bad-image": "image that cannot be decoded (bad base64, corrupt or unknown format)",
    "image-too-large": "image over the pixel limit (decompression-bomb guard)",
    "missing-image": "image file or image field missing",
    "dangling-reference": "image refers to a row that has no usable image",
    "duplicate-id": "id already used by an earlier row",
    "not-listed": "image file not listed in the folder's CSV",
    "unreadable-file": "a whole file in a folder could not be read",
}


@dataclass(frozen=True)
class SkippedRow:
    """A row (or, with ``row=None``, a whole file) that a loader could not use.

    Attributes:
        source: The file the row is in.
        row: Line number (line-based files) or 1-based entry position (JSON files);
            ``None`` when a whole file in a folder could not be read.
        reason: What was wrong, in words.
        kind: One of :data:`SKIP_KINDS`.
        id: The row's id when it could be read.
    """

    source: str
    row: int | None
    reason: str
    kind: str = "malformed"
    id: str | None = None

    def __str__(self) -> str:
        where = self.source if self.row is None else f"{self.source}:{self.row}"
        name = f" [{self.id}]" if self.id else ""
        return f"{where}{name}: {self.reason}"


@dataclass(frozen=True)
class PromptRecord:
    """One prompt, text or image, in the same shape whatever file it came from.

    Attributes:
        id: Unique within its dataset.
        dataset: ``"t2i-corebench"``, ``"mmbench"``, ``"realunify"``, ``"jsonl"``,
            ``"csv"``, ``"images"``, ``"sample-t2i"``, ``"sample-mmbench"``.
        modality: ``"text"`` or ``"image"``.
        text: The text prompt; for an image prompt the question text (hint,
            question, options), possibly ``""``.
        category: The paper's Table 1 group (``"Composition"``, ``"Deductive"``,
            ``"Attribute"``, ``"Coarse"`` ...), or the user's category column.
        subcategory: E.g. the T2I-CoReBench dimension ``"C-MI"`` or the MMBench
            leaf category.
        n_chars: Character length of ``text`` (filled in when not given).
        source: The file the record came from.
        row: Line number or entry position in that file (see :class:`SkippedRow`).
        meta: Everything else (checklist, answer, options, task_type ...).
        image_ref: Where the image lives (file, TSV cell, base64 text); the pixels
            are read only by :meth:`load_image`.

    Example:
        >>> r = PromptRecord(id="p1", dataset="jsonl", modality="text", text="a red cube")
        >>> r.n_chars
        10
    """

    id: str
    dataset: str
    modality: str
    text: str
    category: str | None = None
    subcategory: str | None = None
    n_chars: int = None  # type: ignore[assignment]  # filled from ``text``
    source: str = ""
    row: int | None = None
    meta: dict = field(default_factory=dict, hash=False)
    image_ref: ImageRef | None = field(default=None, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise DatasetError(
                f"PromptRecord {self.id!r}: modality must be one of {MODALITIES}, got {self.modality!r}"
            )
        if self.n_chars is None:
            object.__setattr__(self, "n_chars", len(self.text))

    @property
    def has_image(self) -> bool:
        return self.image_ref is not None

    @property
    def image_source(self) -> str | None:
        """Where the image is read from (a path, or ``path@offset`` for a TSV cell)."""
        return None if self.image_ref is None else self.image_ref.describe()

    def load_image(self, mode: str | None = "RGB") -> Image.Image:
        """Decode this record's image now (nothing is decoded at load time).

        Args:
            mode: Pillow mode to convert to; ``None`` keeps the stored mode.

        Returns:
            The fully loaded ``PIL.Image.Image``.

        Raises:
            DatasetError: The record has no image, or the image cannot be read or
                decoded any more; the message names the file, row and id.
        """
        if self.image_ref is None:
            raise DatasetError(
                f"{self.dataset} record {self.id!r} ({self.source}, row {self.row}) "
                f"has no image (modality {self.modality!r})"
            )
        try:
            return self.image_ref.open(mode)
        except DatasetError as err:
            raise DatasetError(
                f"{self.dataset} record {self.id!r} ({self.source}, row {self.row}): {err}"
            ) from err


@dataclass
class PromptSet:
    """The records of one prompt set and the report of how they were loaded.

    Every row a loader read ends up in exactly one place, so
    ``n_rows == len(records) + n_skipped_rows + n_collapsed + n_limited``.

    Attributes:
        name: Dataset name (``records[i].dataset``).
        spec: The SPEC string it was loaded from.
        records: The usable prompts, in file order.
        skipped: Rows (and whole files, ``row=None``) that could not be used.
        n_rows: Rows read.
        n_collapsed: MMBench circular-evaluation copies folded into their first row.
        n_limited: Usable records dropped by ``limit``.
        sources: Files read.
    """

    name: str
    spec: str
    records: list[PromptRecord] = field(default_factory=list)
    skipped: list[SkippedRow] = field(default_factory=list)
    n_rows: int = 0
    n_collapsed: int = 0
    n_limited: int = 0
    sources: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[PromptRecord]:
        return iter(self.records)

    @property
    def n_skipped_rows(self) -> int:
        return sum(1 for s in self.skipped if s.row is not None)

    def counts(self, key: str) -> dict[str, int]:
        """Number of records per value of ``key`` (``"category"``, ``"subcategory"``,
        ``"modality"`` ...), in first-seen order; ``None`` shows as ``"(none)"``."""
        counter: Counter[str] = Counter()
        for record in self.records:
            value = getattr(record, key)
            counter["(none)" if value is None else str(value)] += 1
        return dict(counter)

    def skip_counts(self) -> dict[str, int]:
        """Number of skipped rows / files per :data:`SKIP_KINDS` kind."""
        return dict(Counter(s.kind for s in self.skipped))

    def token_counts(self, count: Callable[[str], int] | None = None) -> dict[str, int]:
        """Token count of each record's text, by id.

        Args:
            count: ``text -> n_tokens``, e.g. from the model's tokenizer; default
                :func:`count_tokens` (words and punctuation marks).
        """
        count = count or count_tokens
        return {r.id: int(count(r.text)) for r in self.records}

    def length_buckets(
        self,
        count: Callable[[str], int] | None = None,
        thresholds: tuple[int, int] | None = None,
    ) -> dict[str, str]:
        """``id -> "short" | "middle" | "long"``; see :func:`length_buckets`."""
        return length_buckets(self.token_counts(count), thresholds)

    def summary(self) -> str:
        """One line: records kept out of rows read, and where the others went."""
        parts = [f"{len(self.records)} records from {self.n_rows} rows in {len(self.sources)} file(s)"]
        if self.n_collapsed:
            parts.append(f"{self.n_collapsed} circular-evaluation copies collapsed")
        if self.n_limited:
            parts.append(f"{self.n_limited} records dropped by the limit")
        n_files = len(self.skipped) - self.n_skipped_rows
        if self.skipped:
            files = f" and {n_files} file(s)" if n_files else ""
            parts.append(f"skipped {self.n_skipped_rows} row(s){files}")
        else:
            parts.append("nothing skipped")
        return "; ".join(parts)

    def skipped_lines(self, max_skipped: int | None = 20) -> list[str]:
        """Totals per kind, then one line per skipped row (at most ``max_skipped``)."""
        if not self.skipped:
            return []
        by_kind = ", ".join(f"{n} {kind}" for kind, n in sorted(self.skip_counts().items()))
        lines = [f"skipped by kind: {by_kind}"]
        shown = self.skipped if max_skipped is None else self.skipped[:max_skipped]
        lines.extend(f"  {s}" for s in shown)
        if len(shown) < len(self.skipped):
            lines.append(f"  ... and {len(self.skipped) - len(shown)} more")
        return lines

    def report(self, max_skipped: int | None = 20) -> str:
        """The load report: rows read, records kept, and every skip with its reason.

        Args:
            max_skipped: List at most this many skipped rows (``None``: all); the
                totals per kind always cover all of them.
        """
        lines = [f"{self.name}: {self.summary()}"]
        lines.extend(f"  {line}" for line in self.skipped_lines(max_skipped))
        return "\n".join(lines)
