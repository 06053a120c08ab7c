"""Estimation of one (sample, level): states (or a stored Gram) -> per-layer values.

The probe calls :func:`estimate_level` on a worker thread (``--overlap``), and
``entprobe reestimate`` calls :func:`values_from_gram` on the Grams a probe stored;
both end in the same estimator calls, so re-estimating with a run's own options gives
its numbers back bit for bit.

Per-layer values are what the store wants: ``(n_layers + 1,)`` values, or with
``spectrum="topk:K"`` an ``(n_layers + 1, 3)`` array of value, lower and upper bound
(:func:`layer_values`), written as ``value`` (and ``lower``, ``upper``) columns
(:func:`metric_value`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .options import EstimatorOptions
from .summary import SampleFailure

__all__ = [
    "LevelEstimate",
    "LevelStates",
    "estimate_level",
    "layer_values",
    "metric_value",
    "values_from_gram",
    "width_report",
]


@dataclass
class LevelStates:
    """What one (sample, level) hands to the estimators.

    Attributes:
        states: ``(n_layers + 1, n, d)``: the prompt's content tokens (prompt level), or
            ``[prompt; response]`` with the prompt rows first (response levels).
        n_prompt: prompt rows of ``states`` for the response levels; None for the prompt level.
        steps: step-wise image generators: step -> ``[prompt; response at that step]``.
    """

    states: torch.Tensor
    n_prompt: int | None = None
    steps: dict[int, torch.Tensor] = field(default_factory=dict)


@dataclass
class LevelEstimate:
    """The estimators' result for one :class:`LevelStates`.

    Attributes:
        values: per-layer values (see :func:`layer_values`).
        gram: the float64 centred Gram the values came from, when it is to be stored.
        seconds: estimation time, denoising steps included.
        steps: step -> ``(values, n_response_tokens)``.
    """

    values: np.ndarray
    gram: Any
    seconds: float
    steps: dict[int, tuple[np.ndarray, int]] = field(default_factory=dict)


def _array(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().to("cpu").numpy()
    return np.asarray(x, dtype=np.float64).reshape(-1)


def layer_values(result: Any) -> np.ndarray:
    """An estimator's result -> ``(L,)`` values, or ``(L, 3)`` value/lower/upper for bounds."""
    from ..estimators import EntropyBounds

    if isinstance(result, EntropyBounds):
        return np.stack([_array(result.value), _array(result.lower), _array(result.upper)], axis=-1)
    return _array(result)


def metric_value(v: Any) -> dict[str, float | None]:
    """One layer's entry of :func:`layer_values` -> ``value`` (and ``lower``, ``upper``) columns."""
    arr = np.ravel(np.asarray(v, dtype=np.float64))
    if arr.size == 3:
        return {"value": float(arr[0]), "lower": float(arr[1]), "upper": float(arr[2])}
    return {"value": float(arr[0])}


def finite_or_fail(values: np.ndarray) -> np.ndarray:
    """``values``, or :class:`SampleFailure` naming the layers that are not finite."""
    bad = np.flatnonzero(~np.isfinite(values).reshape(len(values), -1).all(axis=-1))
    if bad.size:
        raise SampleFailure(f"the estimator gave non-finite values at layer(s) {[int(i) for i in bad]}")
    return values


def values_from_gram(gram: Any, n_prompt: int | None, estimator: EstimatorOptions) -> np.ndarray:
    """Per-layer values from a linear Gram ``(n_layers + 1, n, n)`` (``n_prompt`` None:
    the prompt's entropy; else the proxy with the first ``n_prompt`` rows the prompt)."""
    from ..estimators import conditional_entropy_from_gram, matrix_entropy_from_gram

    if n_prompt is None:
        result = matrix_entropy_from_gram(gram, **estimator.entropy_kwargs())
    else:
        result = conditional_entropy_from_gram(gram, n_prompt, **estimator.conditional_kwargs())
    return finite_or_fail(layer_values(result))


def _values(states: torch.Tensor, n_prompt: int | None, estimator: EstimatorOptions, keep_gram: bool):
    from ..estimators import conditional_entropy, linear_gram, matrix_entropy

    if keep_gram:
        # The Gram is stored, so the estimate is made from it (what `reestimate` reads
        # back). Centred: the estimators are translation invariant and this keeps the
        # float64 round-off relative to the tokens' spread.
        gram = linear_gram(states, centre=True)
        return values_from_gram(gram, n_prompt, estimator), gram
    # From the states: the same numbers to round-off, and when the states have fewer
    # features than tokens the PCA is a d x d eigenproblem, not n x n.
    if n_prompt is None:
        result = matrix_entropy(states, **estimator.entropy_kwargs())
    else:
        prompt, response = states[..., :n_prompt, :], states[..., n_prompt:, :]
        result = conditional_entropy(prompt, response, **estimator.conditional_kwargs())
    return finite_or_fail(layer_values(result)), None


def estimate_level(level: LevelStates, estimator: EstimatorOptions, *, keep_gram: bool) -> LevelEstimate:
    """The level's per-layer values (and Gram, with ``keep_gram``), and those of each
    denoising step (the proxy of that step's response given the teacher-forced prompt).

    Raises:
        SampleFailure: the estimators gave non-finite values.
        ProbeInputError: the estimators refused the states (e.g. fewer than 2 tokens).
    """
    start = time.perf_counter()
    values, gram = _values(level.states, level.n_prompt, estimator, keep_gram)
    steps: dict[int, tuple[np.ndarray, int]] = {}
    for step, states in level.steps.items():
        # The same route as the level's own values (from a Gram under --save-grams).
        step_values, _ = _values(states, level.n_prompt, estimator, keep_gram)
        steps[step] = (step_values, int(states.shape[-2]) - int(level.n_prompt or 0))
    return LevelEstimate(values, gram, time.perf_counter() - start, steps)


def width_report(store: Any, run_ids: Any = None) -> str | None:
    """``interval width (topk bounds): ...`` over the certified rows of ``store``, or None.

    Args:
        store: a :class:`~entprobe.store.ResultStore` (reader or writer).
        run_ids: restrict to these runs (None: all).
    """
    df = store.layer_metrics() if run_ids is None else store.layer_metrics(run_id=list(run_ids))
    if df.empty or "lower" not in df or df["lower"].isna().all():
        return None
    df = df.dropna(subset=["lower", "upper"])
    width = df["upper"] - df["lower"]
    parts = [
        f"{metric}: mean {w.mean():.4g}, max {w.max():.4g} over {len(w)} layer rows"
        for metric, w in width.groupby(df["metric"])
    ]
    return "certified interval width (spectrum topk; upper - lower, in the run's base): " + "; ".join(parts)


def step_rows(steps: Mapping[int, tuple[np.ndarray, int]]) -> list[tuple[int, int, int, float]]:
    """``(step, layer, n_response_tokens, value)`` of each denoising step's values."""
    return [
        (step, layer, n_response, metric_value(v)["value"])
        for step, (step_values, n_response) in steps.items()
        for layer, v in enumerate(step_values)
    ]
