"""Length buckets (short / middle / long) for the paper's length analysis (Fig. 4)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from entprobe.errors import ProbeInputError

__all__ = ["BUCKETS", "count_tokens", "length_buckets", "tercile_thresholds"]

BUCKETS = ("short", "middle", "long")

# CJK ideographs, kana and hangul count one token per character (no spaces between
# words); any other run of letters/digits/underscore is one token; every other
# non-space character (punctuation, symbols) is a token of its own.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+|[^\w\s]")


def count_tokens(text: str) -> int:
    """A tokenizer-free token count: words and punctuation marks.

    A run of letters, digits or underscores is one token, each other non-space
    character is one token, and each CJK character is one token. Used when no
    model tokenizer is at hand (``entprobe datasets inspect`` without
    ``--tokenizer``); the probe pipeline counts with the model's tokenizer.

    Example:
        >>> count_tokens("A red cube, left of 2 spheres.")
        9
    """
    return len(_TOKEN.findall(text))


def tercile_thresholds(lengths: Mapping[str, int]) -> tuple[int, int]:
    """The two cut points that split ``lengths`` into terciles.

    With the lengths sorted ascending as ``v[0..n-1]``, the cuts are
    ``v[ceil(n/3) - 1]`` and ``v[ceil(2n/3) - 1]``, so with distinct lengths each
    bucket gets a third (the first buckets get the remainder); equal lengths
    always share a bucket.

    Raises:
        ProbeInputError: ``lengths`` is empty.
    """
    if not lengths:
        raise ProbeInputError("lengths is empty; need at least one prompt to split into terciles")
    values = sorted(_checked(lengths).values())
    n = len(values)
    return values[math.ceil(n / 3) - 1], values[math.ceil(2 * n / 3) - 1]


def length_buckets(lengths: Mapping[str, int], thresholds: tuple[int, int] | None = None) -> dict[str, str]:
    """Assign each prompt to the ``"short"``, ``"middle"`` or ``"long"`` bucket.

    With ``thresholds=(t1, t2)``: short if ``n <= t1``, middle if ``t1 < n <= t2``,
    long if ``n > t2``. Without, ``t1, t2`` are the prompt set's terciles
    (:func:`tercile_thresholds`), so the buckets are relative to the set.

    Args:
        lengths: ``id -> token count`` (non-negative integers) for one prompt set.
        thresholds: Fixed ``(t1, t2)`` with ``0 <= t1 <= t2``, or ``None``.

    Returns:
        ``id -> bucket`` for every id in ``lengths`` (empty for empty input).

    Raises:
        ProbeInputError: A length is not a non-negative integer, or the thresholds
            are not two integers with ``0 <= t1 <= t2``.

    Example:
        >>> length_buckets({"a": 3, "b": 10, "c": 40})
        {'a': 'short', 'b': 'middle', 'c': 'long'}
        >>> length_buckets({"a": 3, "b": 10, "c": 40}, thresholds=(5, 50))
        {'a': 'short', 'b': 'middle', 'c': 'middle'}
    """
    lengths = _checked(lengths)
    if thresholds is None:
        if not lengths:
            return {}
        t1, t2 = tercile_thresholds(lengths)
    else:
        t1, t2 = _checked_thresholds(thresholds)
    return {key: "short" if n <= t1 else "middle" if n <= t2 else "long" for key, n in lengths.items()}


def _checked(lengths: Mapping[str, int]) -> dict[str, int]:
    if not isinstance(lengths, Mapping):
        raise ProbeInputError(f"lengths must be a mapping id -> token count, got {type(lengths).__name__}")
    out = {}
    for key, n in lengths.items():
        if isinstance(n, bool) or not _is_integral(n) or n < 0:
            raise ProbeInputError(f"lengths[{key!r}] must be a non-negative integer token count, got {n!r}")
        out[key] = int(n)
    return out


def _checked_thresholds(thresholds: tuple[int, int]) -> tuple[int, int]:
    try:
        t1, t2 = thresholds
    except (TypeError, ValueError):
        raise ProbeInputError(f"thresholds must be two integers (t1, t2), got {thresholds!r}") from None
    for t in (t1, t2):
        if isinstance(t, bool) or not _is_integral(t):
            raise ProbeInputError(f"thresholds must be two integers (t1, t2), got {thresholds!r}")
    if not 0 <= t1 <= t2:
        raise ProbeInputError(f"thresholds must satisfy 0 <= t1 <= t2, got {thresholds!r}")
    return int(t1), int(t2)


def _is_integral(value: object) -> bool:
    # numpy integers are fine; floats and strings are not
    try:
        return int(value) == value and not isinstance(value, (float, str))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return False
