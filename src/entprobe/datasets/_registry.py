"""SPEC strings -> loaders: :func:`load_prompts` and :func:`list_formats`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote

from entprobe.errors import DatasetError, ProbeInputError

from . import _bundled, _csvfile, _imagefolder, _jsonl, _mmbench, _realunify, _t2i_corebench
from ._images import DEFAULT_MAX_PIXELS
from ._records import PromptRecord, PromptSet, SkippedRow
from ._rows import Collapsed, LoadContext

__all__ = ["FormatInfo", "list_formats", "load_prompts", "parse_spec"]

_LOADERS = {
    module.NAME: module for module in (_t2i_corebench, _mmbench, _realunify, _jsonl, _csvfile, _imagefolder)
}
_SCHEMES = (*_LOADERS, _bundled.NAME)
_SPEC = re.compile(r"^([A-Za-z][\w-]*):(.*)$", re.DOTALL)
_OPTIONS = re.compile(r"^[A-Za-z_]\w*=[^&]*(&[A-Za-z_]\w*=[^&]*)*$")


class FormatInfo(NamedTuple):
    """One prompt-set format: its SPEC scheme, an example SPEC and what it reads."""

    name: str
    example: str
    description: str


def list_formats() -> list[FormatInfo]:
    """The prompt-set formats :func:`load_prompts` reads, with an example SPEC each.

    Example:
        >>> [f.name for f in list_formats()][:2]
        ['t2i-corebench', 'mmbench']
    """
    modules = [*_LOADERS.values(), _bundled]
    return [FormatInfo(m.NAME, m.EXAMPLE, m.DESCRIPTION) for m in modules]


def parse_spec(spec: str) -> tuple[str, str, dict[str, str]]:
    """Split ``FORMAT:PATH[?key=value&...]`` into ``(format, path, options)``.

    The ``?...`` part is read as options only when it looks like ``key=value``
    pairs and the whole text after ``FORMAT:`` is not an existing path.

    Raises:
        DatasetError: no ``FORMAT:`` prefix, an unknown format, or no path.
    """
    if not isinstance(spec, str):
        raise DatasetError(f"SPEC must be a string like 'mmbench:PATH.tsv', got {type(spec).__name__}")
    match = _SPEC.match(spec.strip())
    if not match:
        raise DatasetError(
            f"SPEC {spec!r} has no format; write FORMAT:PATH, e.g. "
            f"'mmbench:MMBench_DEV_EN.tsv' (formats: {', '.join(_SCHEMES)})"
        )
    scheme, target = match.group(1).lower(), match.group(2).strip()
    if scheme not in _SCHEMES:
        raise DatasetError(
            f"unknown prompt-set format {match.group(1)!r} in SPEC {spec!r}; "
            f"known formats: {', '.join(_SCHEMES)} (see `entprobe datasets`)"
        )
    options: dict[str, str] = {}
    if "?" in target and not _exists(Path(target).expanduser()):
        head, _, tail = target.rpartition("?")
        if _OPTIONS.match(tail):
            target = head
            for pair in tail.split("&"):
                key, _, value = pair.partition("=")
                options[key] = unquote(value)
    if not target:
        raise DatasetError(f"SPEC {spec!r} names no path after '{scheme}:'")
    return scheme, target, options


def load_prompts(
    spec: str,
    *,
    limit: int | None = None,
    dedup: bool = True,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    options: Mapping[str, str] | None = None,
    allow_outside_paths: bool = False,
) -> PromptSet:
    """Load a prompt set named by a SPEC string into uniform :class:`PromptRecord` s.

    Bad rows never stop a load: each is skipped and listed in ``PromptSet.skipped``
    with its reason, and ``PromptSet.report()`` says how many and why. Images are
    only header-checked here; :meth:`PromptRecord.load_image` decodes them.

    Args:
        spec: ``FORMAT:PATH`` with optional ``?key=value&...`` options, e.g.
            ``"t2i-corebench:data/"``, ``"mmbench:MMBench_DEV_EN.tsv"``,
            ``"csv:prompts.csv?text=prompt"``, ``"sample:mmbench"``; see
            :func:`list_formats`.
        limit: Keep only the first ``limit`` usable records (the rest are counted in
            ``n_limited``); ``None`` keeps all.
        dedup: Collapse MMBench circular-evaluation copies to one prompt per question.
        max_pixels: Images with more pixels are skipped (decompression-bomb guard);
            ``None`` leaves only Pillow's own limit.
        options: Format options, merged over those in the SPEC.
        allow_outside_paths: Image paths named in a data file (an ``images:`` CSV, a
            RealUnify JSON) must lie inside its folder; True lifts that (otherwise
            such a row is skipped with kind ``outside-folder``).

    Returns:
        The :class:`PromptSet`, records in file order.

    Raises:
        DatasetError: unknown format, missing path, unknown option, or a file that
            cannot be read at all (raised before any record is produced).
        ProbeInputError: ``limit`` or ``max_pixels`` is not a positive integer.

    Example:
        >>> ps = load_prompts("sample:t2i")
        >>> sorted(ps.counts("category"))
        ['Abductive', 'Composition', 'Deductive', 'Inductive']
    """
    for name, value in (("limit", limit), ("max_pixels", max_pixels)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ProbeInputError(f"{name} must be a positive integer or None, got {value!r}")
    scheme, target, spec_options = parse_spec(spec)
    if scheme == _bundled.NAME:
        loader, path, dataset = _bundled.resolve(target)
    else:
        loader, path, dataset = _LOADERS[scheme], Path(target).expanduser(), scheme
        if not _exists(path):
            raise DatasetError(f"{scheme}: {path} does not exist")
    merged = {**spec_options, **(options or {})}
    unknown = sorted(set(merged) - set(loader.OPTIONS))
    if unknown:
        known = ", ".join(loader.OPTIONS) or "none"
        raise DatasetError(f"unknown option(s) {', '.join(unknown)} for {scheme}; known: {known}")
    ctx = LoadContext(
        dataset=dataset,
        options=merged,
        dedup=dedup,
        max_pixels=max_pixels,
        allow_outside_paths=allow_outside_paths,
    )
    try:
        outcomes = loader.load(path, ctx)
    except PermissionError as err:
        raise DatasetError(f"{path} cannot be read ({err})") from None

    prompt_set = PromptSet(name=dataset, spec=spec)
    try:
        _collect(outcomes, prompt_set, limit)
    except OSError as err:  # the file system failed under us (file removed, disk error)
        raise DatasetError(f"reading {path} failed after {prompt_set.n_rows} rows ({err})") from None
    prompt_set.sources = list(dict.fromkeys(ctx.sources))
    return prompt_set


def _collect(outcomes: Iterable, prompt_set: PromptSet, limit: int | None) -> None:
    first_row: dict[str, PromptRecord] = {}
    for item in outcomes:
        if isinstance(item, SkippedRow):
            prompt_set.skipped.append(item)
            prompt_set.n_rows += item.row is not None
            continue
        prompt_set.n_rows += 1
        if isinstance(item, Collapsed):
            prompt_set.n_collapsed += 1
        elif item.id in first_row:
            earlier = first_row[item.id]
            prompt_set.skipped.append(
                SkippedRow(
                    item.source,
                    item.row,
                    f"id {item.id!r} already used ({earlier.source}, row {earlier.row})",
                    "duplicate-id",
                    item.id,
                )
            )
        else:
            first_row[item.id] = item
            if limit is not None and len(prompt_set.records) >= limit:
                prompt_set.n_limited += 1
            else:
                prompt_set.records.append(item)


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # a name too long for the file system, say
        return False
