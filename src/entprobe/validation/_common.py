"""What the synthetic validations share: seeded random streams, the estimators (imported
at use, so ``entprobe --help`` loads no torch), formatting and the Spearman helper."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable

import numpy as np
from scipy.stats import spearmanr

from ._types import ValidationConfig

# Experiment tags keep the random streams of different experiments apart.
TAG = {"cluster_entropy": 1, "dependence_proxy": 2, "shannon_agreement": 3, "population": 4}


def estimators():
    # Imported at use so that the module (and ``entprobe --help``) loads without torch.
    from entprobe.estimators import conditional_entropy, matrix_entropy

    return matrix_entropy, conditional_entropy


def seeded_rng(config: ValidationConfig, seed: int, *tags: int) -> np.random.Generator:
    return np.random.default_rng([config.base_seed + seed, *tags])


def three_responses(
    rng: np.random.Generator, shape: tuple[int, int], noise: float, names: tuple[str, str, str]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Prompt states ``X`` of ``shape`` and three responses to it, named by ``names``:
    ``Y = X``, ``Y = X + noise eps`` and an independent ``Y`` (drawn in that order)."""
    x = rng.standard_normal(shape)
    same, noisy, independent = names
    return x, {
        same: x.copy(),
        noisy: x + noise * rng.standard_normal(shape),
        independent: rng.standard_normal(shape),
    }


def as_array(values: object) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=np.float64).reshape(-1)


def fmt(values: Iterable[float], digits: int = 3, style: str = "paren") -> str:
    v = np.asarray(list(values), dtype=np.float64)
    mean, std = float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else float("nan")
    if style == "pm":
        return f"{mean:.{digits}f} ± {std:.{digits}f}"
    return f"{mean:.{digits}f} ({std:.{digits}f})"


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def call_recording_warnings(fn: Callable, *args, **kwargs) -> tuple[np.ndarray, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = as_array(fn(*args, **kwargs))
    messages = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    return out, messages
