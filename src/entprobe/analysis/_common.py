"""Shared vocabulary and helpers: prompt-type names, input checks, the bootstrap."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from entprobe.errors import ProbeInputError

#: The paper's Table 1 prompt types, in its column order.
TEXT_CATEGORIES: tuple[str, ...] = ("Composition", "Abductive", "Inductive", "Deductive")
IMAGE_CATEGORIES: tuple[str, ...] = ("Attribute", "Logical", "Relation", "Coarse", "Single", "Cross")

#: Length buckets of text prompts (Fig. 4), in display order.
LENGTH_BUCKETS: tuple[str, ...] = ("short", "middle", "long")

#: Bootstrap resamples used unless the caller asks otherwise.
DEFAULT_N_BOOT = 2000

#: Default share of depth counted as "early layers" for the cross-modal asymmetry.
DEFAULT_EARLY_FRACTION = 0.25

_CATEGORY_ALIASES: dict[str, str] = {
    # lower-cased spelling -> the paper's name
    "single-instance": "Single",
    "single instance": "Single",
    "single_instance": "Single",
    "cross-instance": "Cross",
    "cross instance": "Cross",
    "cross_instance": "Cross",
    "relational": "Relation",
    "logic": "Logical",
}
_CANONICAL = {c.lower(): c for c in TEXT_CATEGORIES + IMAGE_CATEGORIES}


def normalize_category(category: object) -> object:
    """Map a ``category`` spelling onto the paper's Table 1 name.

    ``"Single-instance"`` becomes ``"Single"``, ``"cross-instance"`` becomes
    ``"Cross"``, ``"deductive"`` becomes ``"Deductive"``; a category the paper does
    not name is returned unchanged, and a missing one stays missing.

    Example:
        >>> normalize_category("Single-instance")
        'Single'
    """
    if category is None or (isinstance(category, float) and np.isnan(category)):
        return category
    if category is pd.NA:
        return category
    key = str(category).strip().lower()
    return _CANONICAL.get(key) or _CATEGORY_ALIASES.get(key) or category


def category_order(categories: Iterable[object]) -> list[str]:
    """The paper's column order, then any other categories alphabetically."""
    present = {str(c) for c in categories if isinstance(c, str)}
    known = [c for c in TEXT_CATEGORIES + IMAGE_CATEGORIES if c in present]
    return known + sorted(present - set(known))


def require_columns(df: pd.DataFrame, columns: Sequence[str], *, name: str) -> None:
    """Raise :class:`ProbeInputError` naming what ``df`` lacks."""
    if not isinstance(df, pd.DataFrame):
        raise ProbeInputError(f"{name} must be a pandas DataFrame; got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ProbeInputError(f"{name} lacks column(s) {missing}; it has {list(df.columns)}")


def check_fraction(value: float, *, name: str) -> float:
    value = float(value)
    if not 0.0 < value <= 1.0:
        raise ProbeInputError(f"{name} must be in (0, 1]; got {value}")
    return value


def check_n_boot(n_boot: int) -> int:
    if int(n_boot) != n_boot or n_boot < 1:
        raise ProbeInputError(f"n_boot must be a positive integer; got {n_boot!r}")
    return int(n_boot)


def cell_rng(seed: int, key: Iterable[object]) -> np.random.Generator:
    """A generator seeded by ``seed`` and a cell's key.

    Seeding per cell keeps a cell's bootstrap identical whatever other models or
    categories sit in the same table.
    """
    tag = zlib.crc32("\x1f".join(str(k) for k in key).encode("utf-8"))
    return np.random.default_rng(np.random.SeedSequence([int(seed), tag]))


def bootstrap_mean_ci(
    values: Sequence[float] | np.ndarray,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    confidence: float = 0.95,
    seed: int = 0,
    key: Iterable[object] = (),
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of a mean.

    Draws ``n_boot`` resamples of ``values`` with replacement (seeded by ``seed`` and
    ``key``), takes each resample's mean and returns the ``(1 - confidence) / 2`` and
    ``(1 + confidence) / 2`` quantiles. With fewer than two values the interval is
    undefined and both ends are NaN.

    Args:
        values: the observations, shape ``(n,)``.
        n_boot: number of resamples ``B``.
        confidence: coverage of the interval, e.g. 0.95.
        seed: base seed; ``key`` (e.g. ``("BAGEL", "text", "Composition")``) is
            mixed in so that each table cell has its own reproducible stream.

    Example:
        >>> lo, hi = bootstrap_mean_ci([1.0, 2.0, 3.0, 4.0], n_boot=200)
        >>> 1.0 <= lo <= hi <= 4.0
        True
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    n_boot = check_n_boot(n_boot)
    if not 0.0 < confidence < 1.0:
        raise ProbeInputError(f"confidence must be in (0, 1); got {confidence}")
    if x.size < 2:
        return float("nan"), float("nan")
    rng = cell_rng(seed, key)
    means = np.empty(n_boot)
    # Chunked so that B x n indices stay small for large cells.
    chunk = max(1, 2_000_000 // x.size)
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = rng.integers(0, x.size, size=(stop - start, x.size))
        means[start:stop] = x[idx].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(means, [tail, 1.0 - tail])
    return float(lo), float(hi)


_MODALITY_ORDER = {"text": 0, "image": 1}
_LEVEL_ORDER = {"prompt": 0, "image-gen": 1, "text-gen": 2}


def sort_table(df: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Sort by model name, modality text-then-image, paper category order, layer."""
    if df.empty:
        return df.reset_index(drop=True)
    keys = []
    for col in columns:
        if col == "modality":
            keys.append(df[col].map(lambda m: (_MODALITY_ORDER.get(m, 9), str(m))))
        elif col == "level":
            keys.append(df[col].map(lambda m: (_LEVEL_ORDER.get(m, 9), str(m))))
        elif col == "category":
            order = {c: i for i, c in enumerate(category_order(df[col]))}
            keys.append(df[col].map(lambda c: order.get(c, len(order))))
        elif col == "length_bucket":
            order = {b: i for i, b in enumerate(LENGTH_BUCKETS)}
            keys.append(df[col].map(lambda b: (order.get(b, 9), str(b))))
        else:
            keys.append(df[col])
    tmp = pd.DataFrame({f"k{i}": k.values for i, k in enumerate(keys)}, index=df.index)
    order = tmp.sort_values(list(tmp.columns), kind="stable").index
    return df.loc[order].reset_index(drop=True)
