"""Per-layer estimator results as the store wants them: a value, or value with certified bounds.

With ``spectrum="topk:K"`` the estimators return :class:`~entprobe.estimators.EntropyBounds`;
a level's values are then an ``(n_layers + 1, 3)`` array (value, lower, upper) instead of
``(n_layers + 1,)``, and each ``layer_metrics`` row gets ``lower`` and ``upper``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["layer_values", "metric_value"]


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
