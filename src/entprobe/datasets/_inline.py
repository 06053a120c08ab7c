"""Prompts given inline (in a notebook) as :class:`PromptSet` objects.

:func:`prompt_sets` takes what a notebook has at hand (text strings, PIL images,
``(image, question)`` pairs, dicts, :class:`PromptRecord` s, SPEC strings and
loaded :class:`PromptSet` s) and returns prompt sets the pipeline probes like any
loaded from a file. :func:`split_by_modality` splits them into the text and image
sets that ``--text-prompts`` / ``--image-prompts`` would give.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from entprobe.errors import DatasetError, ProbeInputError

from ._records import PromptRecord, PromptSet
from ._registry import load_prompts, parse_spec

__all__ = ["INLINE_DATASET", "EncodedImage", "prompt_sets", "split_by_modality"]

#: Dataset name of prompts given inline (strings, images) rather than as a SPEC.
INLINE_DATASET = "prompts"

# The keys a prompt dict may have (the PromptRecord fields a notebook can set).
_DICT_KEYS = {"text", "image", "id", "category", "subcategory"}


@dataclass(frozen=True)
class EncodedImage:
    """An in-memory image (PNG bytes), so that inline records pickle to workers.

    Implements the :class:`~entprobe.datasets._images.ImageRef` protocol.
    """

    data: bytes

    def open(self, mode: str | None = "RGB") -> Image.Image:
        im = Image.open(io.BytesIO(self.data))
        im.load()
        return im.convert(mode) if mode is not None and im.mode != mode else im

    def describe(self) -> str:
        return f"<in-memory PNG, {len(self.data):,} bytes>"


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _is_image(value: object) -> bool:
    return isinstance(value, Image.Image)


def _as_spec(text: str) -> str | None:
    """``text`` if it names a prompt set (a known format and an existing path or a
    bundled sample), else ``None`` (it is then a text prompt)."""
    try:
        scheme, target, _ = parse_spec(text)
    except DatasetError:
        return None
    if scheme == "sample" or Path(target).expanduser().exists():
        return text
    return None


def _inline_record(item: Any, position: int) -> PromptRecord:
    """The record of one inline prompt, ``position`` (0-based) among the inline ones.

    Raises:
        ProbeInputError: an item of an unknown kind, an unknown dict key, or a text
            or image of the wrong type.
    """
    fields: dict[str, Any] = {}
    if isinstance(item, str):
        fields["text"] = item
    elif _is_image(item):
        fields["image"] = item
    elif isinstance(item, tuple) and len(item) == 2 and _is_image(item[0]):
        fields["image"], fields["text"] = item
    elif isinstance(item, Mapping):
        unknown = sorted(set(item) - _DICT_KEYS)
        if unknown:
            raise ProbeInputError(
                f"prompt {position}: unknown key(s) {unknown}; a prompt dict takes text, "
                "image, id, category, subcategory"
            )
        fields = dict(item)
    else:
        raise ProbeInputError(
            f"prompt {position} is a {type(item).__name__}; expected a text string, a PIL "
            "image, an (image, question) pair, a dict, a SPEC string or a PromptSet"
        )
    text = fields.get("text") or ""
    image = fields.get("image")
    if not isinstance(text, str):
        raise ProbeInputError(f"prompt {position}: text must be a string, got {type(text).__name__}")
    if image is not None and not _is_image(image):
        raise ProbeInputError(f"prompt {position}: image must be a PIL image, got {type(image).__name__}")
    return PromptRecord(
        id=str(fields.get("id", position)),
        dataset=INLINE_DATASET,
        modality="image" if image is not None else "text",
        text=text,
        category=fields.get("category"),
        subcategory=fields.get("subcategory"),
        source="<inline>",
        row=position,
        image_ref=None if image is None else EncodedImage(_png(image)),
    )


def _content_spec(name: str, records: Sequence[PromptRecord]) -> str:
    """``NAME:sha256=<16 hex>`` of the records' content.

    The spec enters the run id, so the bytes hashed here must never change: each
    record's ``repr((id, modality, text, category, subcategory))``, then the SHA-256
    of its PNG bytes (inline images) or its image reference's description.
    """
    digest = hashlib.sha256()
    for rec in records:
        digest.update(repr((rec.id, rec.modality, rec.text, rec.category, rec.subcategory)).encode())
        if isinstance(rec.image_ref, EncodedImage):
            digest.update(hashlib.sha256(rec.image_ref.data).digest())
        elif rec.image_ref is not None:
            digest.update(rec.image_ref.describe().encode())
    return f"{name}:sha256={digest.hexdigest()[:16]}"


def prompt_sets(prompts: Any, *, limit: int | None = None) -> list[PromptSet]:
    """Turn what a notebook has into :class:`~entprobe.datasets.PromptSet` objects.

    Args:
        prompts: one item or an iterable of: text strings, PIL images,
            ``(image, question)`` pairs, dicts (``text``, ``image``, ``id``,
            ``category``, ``subcategory``), :class:`PromptRecord` s, SPEC strings
            (a known format and an existing path, or ``sample:...``; anything else
            is a text prompt) and :class:`PromptSet` s.
        limit: first ``limit`` records of each prompt set (inline prompts count as one set).

    Returns:
        The SPEC sets in the order given, then one set of the inline prompts
        (dataset ``"prompts"``, ids ``"0"``, ``"1"``, ... by position unless given)
        and one set per dataset of the records given. An inline set's ``spec`` is a
        hash of its content, so other prompts make another run.

    Raises:
        ProbeInputError: an item of an unknown kind, or no prompts.
        DatasetError: a SPEC that cannot be loaded.

    Example:
        >>> [(ps.name, len(ps.records)) for ps in prompt_sets(["a red cube", "two cats"])]
        [('prompts', 2)]
    """
    if isinstance(prompts, (str, bytes, PromptSet, PromptRecord, tuple, Mapping)) or _is_image(prompts):
        prompts = [prompts]
    sets: list[PromptSet] = []
    inline: list[PromptRecord] = []
    given: dict[str, list[PromptRecord]] = {}
    for item in prompts:
        if isinstance(item, PromptSet):
            sets.append(item)
        elif isinstance(item, PromptRecord):
            given.setdefault(item.dataset, []).append(item)
        elif isinstance(item, str) and _as_spec(item) is not None:
            sets.append(load_prompts(item, limit=limit))
        else:
            inline.append(_inline_record(item, len(inline)))
    for name, records in [(INLINE_DATASET, inline), *given.items()]:
        if not records:
            continue
        kept = records if limit is None else records[:limit]
        sets.append(
            PromptSet(
                name=name,
                spec=_content_spec(name, kept),
                records=list(kept),
                n_rows=len(records),
                n_limited=len(records) - len(kept),
            )
        )
    if not sets:
        raise ProbeInputError("no prompts given")
    return sets


def split_by_modality(sets: Sequence[PromptSet]) -> tuple[list[PromptSet], list[PromptSet]]:
    """``(text sets, image sets)``: each set's records of that modality.

    A set holding both (RealUnify) is given to each, with only that modality's
    records; a set of one modality is passed on as it is.
    """
    text: list[PromptSet] = []
    image: list[PromptSet] = []
    for ps in sets:
        for modality, out in (("text", text), ("image", image)):
            records = [r for r in ps.records if r.modality == modality]
            if records:
                out.append(
                    ps if len(records) == len(ps.records) else dataclasses.replace(ps, records=records)
                )
    return text, image
