"""The paper's tables as pure functions over the store's query results.

Every function takes DataFrames with the columns of the store's tables
(``layer_metrics``, ``samples``, ``runs``; see DEVELOPERS.md), filters and
aggregates, and returns a new DataFrame. Nothing here reads files.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from entprobe.analysis._common import (
    DEFAULT_EARLY_FRACTION,
    DEFAULT_N_BOOT,
    bootstrap_mean_ci,
    check_fraction,
    check_n_boot,
    normalize_category,
    require_columns,
    sort_table,
)
from entprobe.errors import ProbeInputError

__all__ = [
    "embedding_entropy_table",
    "prompt_length_points",
    "length_trend",
    "layer_trajectories",
    "cross_modal_asymmetry",
    "response_proxy_table",
    "model_probes",
    "PROBE_COLUMNS",
    "PROBE_LABELS",
]

#: Per-model probe columns used by :func:`model_probes` and the correlation.
PROBE_COLUMNS: tuple[str, ...] = ("image_gen_ce", "text_gen_ce", "asymmetry")
#: Display names (the paper's Table 6 rows).
PROBE_LABELS: dict[str, str] = {
    "image_gen_ce": "Image Conditional Entropy",
    "text_gen_ce": "Text Conditional Entropy",
    "asymmetry": "Cross-Modal Entropy Asymmetry",
}

_UNCATEGORISED = "(uncategorised)"


def _select(
    lm: pd.DataFrame,
    *,
    level: str | Sequence[str],
    metric: str,
    modality: str | None = None,
) -> pd.DataFrame:
    levels = [level] if isinstance(level, str) else list(level)
    mask = lm["level"].isin(levels) & (lm["metric"] == metric)
    if modality is not None:
        mask &= lm["modality"] == modality
    out = lm.loc[mask].copy()
    if "category" in out.columns:
        out["category"] = out["category"].map(normalize_category).fillna(_UNCATEGORISED)
    return out


def _mean_ci_table(
    df: pd.DataFrame,
    keys: list[str],
    *,
    n_boot: int,
    confidence: float,
    seed: int,
) -> pd.DataFrame:
    rows = []
    for key, grp in df.groupby(keys, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        vals = grp["value"].to_numpy(dtype=np.float64)
        lo, hi = bootstrap_mean_ci(vals, n_boot=n_boot, confidence=confidence, seed=seed, key=key)
        rows.append(
            {
                **dict(zip(keys, key)),
                "n": int(vals.size),
                "mean": float(vals.mean()),
                "ci_low": lo,
                "ci_high": hi,
            }
        )
    out = pd.DataFrame(rows, columns=[*keys, "n", "mean", "ci_low", "ci_high"])
    return sort_table(out, keys)


def embedding_entropy_table(
    layer_metrics: pd.DataFrame,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Table 1: mean embedding entropy (layer 0) per model, modality and prompt type.

    Uses the rows with ``level == 'prompt'``, ``metric == 'entropy'`` and
    ``layer == 0``; each row is one prompt of one run. Categories are mapped onto
    the paper's names (:func:`normalize_category`); prompts without a category are
    grouped as ``"(uncategorised)"``.

    .. math:: \\bar H = \\frac{1}{n} \\sum_{i=1}^{n} H_\\alpha(\\text{prompt}_i, \\text{layer } 0)

    Args:
        layer_metrics: the ``layer_metrics`` table (needs ``model, modality,
            category, level, layer, metric, value``).
        n_boot: bootstrap resamples ``B`` for the percentile interval.
        confidence: interval coverage.
        seed: bootstrap seed (mixed with each cell's key).

    Returns:
        One row per ``(model, modality, category)``: ``n`` prompts, ``mean`` entropy
        in bits, ``ci_low`` and ``ci_high`` (NaN when ``n < 2``). Sorted by model,
        text before image, then the paper's column order.

    Raises:
        ProbeInputError: a column is missing or ``n_boot`` is not positive.

    Example:
        >>> lm = pd.DataFrame({"model": "m", "modality": "text", "category": "Deductive",
        ...     "level": "prompt", "layer": 0, "metric": "entropy", "value": [1.0, 3.0]})
        >>> embedding_entropy_table(lm, n_boot=100)[["category", "n", "mean"]].values.tolist()
        [['Deductive', 2, 2.0]]
    """
    require_columns(
        layer_metrics,
        ["model", "modality", "category", "level", "layer", "metric", "value"],
        name="layer_metrics",
    )
    check_n_boot(n_boot)
    rows = _select(layer_metrics, level="prompt", metric="entropy")
    rows = rows.loc[rows["layer"] == 0]
    return _mean_ci_table(
        rows, ["model", "modality", "category"], n_boot=n_boot, confidence=confidence, seed=seed
    )


def prompt_length_points(
    layer_metrics: pd.DataFrame,
    samples: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per text prompt: its length and its embedding (layer 0) entropy.

    The length is the prompt's character count (``samples.n_chars``, joined on
    ``run_id, dataset, sample_id, level``); where it is unavailable, the number of
    prompt tokens (``layer_metrics.n_prompt_tokens``) is used and ``length_unit``
    says so.

    Returns:
        Columns ``model, run_id, dataset, sample_id, length_bucket, length,
        length_unit, entropy``.
    """
    require_columns(
        layer_metrics,
        ["run_id", "model", "dataset", "sample_id", "modality", "level", "layer", "metric", "value"],
        name="layer_metrics",
    )
    rows = _select(layer_metrics, level="prompt", metric="entropy", modality="text")
    rows = rows.loc[rows["layer"] == 0]
    keys = ["run_id", "dataset", "sample_id", "level"]
    rows = rows.assign(length=np.nan, length_unit="characters")
    if samples is not None and not samples.empty and "n_chars" in samples.columns:
        require_columns(samples, keys, name="samples")
        chars = samples[keys + ["n_chars"]].drop_duplicates(keys)
        rows = rows.merge(chars, on=keys, how="left")
        rows["length"] = pd.to_numeric(rows["n_chars"], errors="coerce")
    if "n_prompt_tokens" in rows.columns:
        no_chars = rows["length"].isna()
        rows.loc[no_chars, "length"] = pd.to_numeric(rows.loc[no_chars, "n_prompt_tokens"], errors="coerce")
        rows.loc[no_chars, "length_unit"] = "tokens"
    rows = rows.dropna(subset=["length"])
    if "length_bucket" not in rows.columns:
        rows["length_bucket"] = None
    out = rows[
        ["model", "run_id", "dataset", "sample_id", "length_bucket", "length", "length_unit", "value"]
    ].rename(columns={"value": "entropy"})
    return out.sort_values(["model", "length"], kind="stable").reset_index(drop=True)


def length_trend(points: pd.DataFrame, *, n_bins: int = 8) -> pd.DataFrame:
    """Fig. 4 (left): mean embedding entropy per model within prompt-length bins.

    Bins are shared by all models: edges at the quantiles of all prompts' lengths
    (so each bin holds about the same number of prompts overall), merged where
    quantiles coincide. Each bin is half-open ``[length_low, length_high)`` except
    the last, which is closed.

    Args:
        points: output of :func:`prompt_length_points`.
        n_bins: the most bins to use.

    Returns:
        One row per ``(model, bin)``: ``bin, length_low, length_high,
        length_mean, n, entropy_mean, entropy_se, length_unit``.
    """
    require_columns(points, ["model", "length", "entropy"], name="points")
    if n_bins < 1:
        raise ProbeInputError(f"n_bins must be at least 1; got {n_bins}")
    cols = [
        "model",
        "bin",
        "length_low",
        "length_high",
        "length_mean",
        "n",
        "entropy_mean",
        "entropy_se",
        "length_unit",
    ]
    if points.empty:
        return pd.DataFrame(columns=cols)
    lengths = points["length"].to_numpy(dtype=np.float64)
    edges = np.unique(np.quantile(lengths, np.linspace(0.0, 1.0, n_bins + 1)))
    if edges.size == 1:
        edges = np.array([edges[0], edges[0]])
    # searchsorted on inner edges; the maximum goes into the last bin.
    bins = np.searchsorted(edges[1:-1], lengths, side="right")
    pts = points.assign(bin=bins)
    unit = points["length_unit"].iloc[0] if "length_unit" in points.columns else "characters"
    rows = []
    for (model, b), grp in pts.groupby(["model", "bin"], sort=True):
        e = grp["entropy"].to_numpy(dtype=np.float64)
        rows.append(
            {
                "model": model,
                "bin": int(b),
                "length_low": float(edges[b]),
                "length_high": float(edges[b + 1]),
                "length_mean": float(grp["length"].mean()),
                "n": int(e.size),
                "entropy_mean": float(e.mean()),
                "entropy_se": float(e.std(ddof=1) / np.sqrt(e.size)) if e.size > 1 else float("nan"),
                "length_unit": unit,
            }
        )
    return pd.DataFrame(rows, columns=cols)


def layer_trajectories(
    layer_metrics: pd.DataFrame,
    *,
    level: str | Sequence[str] = "prompt",
    metric: str = "entropy",
    by: Sequence[str] = ("modality",),
    modality: str | None = None,
) -> pd.DataFrame:
    """Mean value per layer (Figs. 4-5, §5.3, §6): one trajectory per model and group.

    Args:
        layer_metrics: the ``layer_metrics`` table.
        level: ``'prompt'``, ``'text-gen'`` or ``'image-gen'``, or several (then
            put ``"level"`` in ``by``).
        metric: ``'entropy'`` or ``'conditional_entropy'``.
        by: extra grouping columns, e.g. ``("modality", "category")`` or
            ``("length_bucket",)``.
        modality: keep only this modality, if given.

    Returns:
        One row per ``(model, n_layers, *by, layer)``: ``rel_depth = layer /
        n_layers``, ``n`` rows, ``mean``, ``std`` (ddof=1) and ``se = std / sqrt(n)``
        (NaN when ``n < 2``).

    Example:
        >>> lm = pd.DataFrame({"model": "m", "modality": "text", "level": "prompt",
        ...     "metric": "entropy", "layer": [0, 1, 2], "n_layers": 2, "value": [1., 2., 3.]})
        >>> layer_trajectories(lm)["rel_depth"].tolist()
        [0.0, 0.5, 1.0]
    """
    by = list(by)
    require_columns(
        layer_metrics,
        ["model", "level", "metric", "layer", "n_layers", "value", *by, *(["modality"] if modality else [])],
        name="layer_metrics",
    )
    rows = _select(layer_metrics, level=level, metric=metric, modality=modality)
    keys = ["model", "n_layers", *by, "layer"]
    cols = [*keys, "rel_depth", "n", "mean", "std", "se"]
    if rows.empty:
        return pd.DataFrame(columns=cols)
    for col in by:
        rows[col] = rows[col].fillna(_UNCATEGORISED if col == "category" else "(none)")
    g = rows.groupby(keys, sort=False)["value"]
    out = g.agg(n="count", mean="mean", std="std").reset_index()
    out["se"] = out["std"] / np.sqrt(out["n"])
    out["rel_depth"] = out["layer"].astype(float) / out["n_layers"].astype(float)
    return sort_table(out[cols], keys)


def cross_modal_asymmetry(
    layer_metrics: pd.DataFrame,
    *,
    early_fraction: float = DEFAULT_EARLY_FRACTION,
) -> pd.DataFrame:
    """§5.3: mean (text - image) prompt entropy over the early layers, per model.

    For each layer ``l`` with ``l <= early_fraction * n_layers`` (layer 0, the
    embeddings, included), take the mean prompt entropy of text prompts and of
    image prompts at that layer; the asymmetry is the mean of their difference over
    those layers:

    .. math:: A = \\frac{1}{|E|} \\sum_{l \\in E} (\\bar H_{text}(l) - \\bar H_{image}(l)),
              \\quad E = \\{ l : l / N \\le f \\}

    Models without both text and image prompt rows are left out.

    Returns:
        One row per model: ``n_layers, early_fraction, early_layers`` (e.g. "0-6"),
        ``n_early_layers, n_text, n_image`` (prompts), ``text_mean, image_mean``
        (bits, averaged over the early layers) and ``asymmetry`` (bits).
    """
    early_fraction = check_fraction(early_fraction, name="early_fraction")
    require_columns(
        layer_metrics,
        [
            "model",
            "run_id",
            "dataset",
            "sample_id",
            "modality",
            "level",
            "metric",
            "layer",
            "n_layers",
            "value",
        ],
        name="layer_metrics",
    )
    cols = [
        "model",
        "n_layers",
        "early_fraction",
        "early_layers",
        "n_early_layers",
        "n_text",
        "n_image",
        "text_mean",
        "image_mean",
        "asymmetry",
    ]
    rows = _select(layer_metrics, level="prompt", metric="entropy")
    rows = rows.loc[rows["layer"] <= early_fraction * rows["n_layers"] + 1e-9]
    out = []
    for (model, n_layers), grp in rows.groupby(["model", "n_layers"], sort=True):
        per = grp.groupby(["layer", "modality"])["value"].mean().unstack("modality")
        if "text" not in per.columns or "image" not in per.columns:
            continue
        per = per[["text", "image"]].dropna()
        if per.empty:
            continue
        layers = per.index.to_numpy()

        def n_prompts(m: str) -> int:
            sel = grp.loc[grp["modality"] == m, ["run_id", "dataset", "sample_id"]]
            return int(len(sel.drop_duplicates()))

        out.append(
            {
                "model": model,
                "n_layers": int(n_layers),
                "early_fraction": early_fraction,
                "early_layers": f"{layers.min()}-{layers.max()}",
                "n_early_layers": int(layers.size),
                "n_text": n_prompts("text"),
                "n_image": n_prompts("image"),
                "text_mean": float(per["text"].mean()),
                "image_mean": float(per["image"].mean()),
                "asymmetry": float((per["text"] - per["image"]).mean()),
            }
        )
    return pd.DataFrame(out, columns=cols)


def response_proxy_table(
    layer_metrics: pd.DataFrame,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Table 5: mean conditional entropy proxy per model, image vs text generation.

    Each sample's proxy is first averaged over all its layers (0 to ``n_layers``);
    the table gives the mean of those per-sample values, their number ``n`` and a
    percentile bootstrap interval over samples.

    Returns:
        One row per ``(model, level)`` with ``level`` in ``'image-gen'`` /
        ``'text-gen'``: ``n, mean, ci_low, ci_high`` (bits).
    """
    require_columns(
        layer_metrics,
        ["model", "run_id", "dataset", "sample_id", "level", "metric", "value"],
        name="layer_metrics",
    )
    check_n_boot(n_boot)
    rows = layer_metrics.loc[
        layer_metrics["level"].isin(["image-gen", "text-gen"])
        & (layer_metrics["metric"] == "conditional_entropy")
    ]
    per_sample = (
        rows.groupby(["model", "level", "run_id", "dataset", "sample_id"], sort=False)["value"]
        .mean()
        .reset_index()
    )
    return _mean_ci_table(per_sample, ["model", "level"], n_boot=n_boot, confidence=confidence, seed=seed)


def model_probes(
    layer_metrics: pd.DataFrame,
    *,
    early_fraction: float = DEFAULT_EARLY_FRACTION,
) -> pd.DataFrame:
    """Per-model probe values for :func:`~entprobe.analysis.correlate`.

    Returns:
        Columns ``model, image_gen_ce, text_gen_ce, asymmetry``: the Table 5 means
        (:func:`response_proxy_table`) and :func:`cross_modal_asymmetry`; NaN where a
        model lacks that level or modality.
    """
    proxy = response_proxy_table(layer_metrics, n_boot=1)
    wide = proxy.pivot_table(index="model", columns="level", values="mean")
    asym = cross_modal_asymmetry(layer_metrics, early_fraction=early_fraction)
    models = sorted(set(layer_metrics["model"].dropna().unique()))
    out = pd.DataFrame({"model": models})
    out["image_gen_ce"] = out["model"].map(wide["image-gen"] if "image-gen" in wide else {})
    out["text_gen_ce"] = out["model"].map(wide["text-gen"] if "text-gen" in wide else {})
    # a model may have runs of several depths; the asymmetry needs one number per model
    asym_by_model = asym.groupby("model")["asymmetry"].mean() if not asym.empty else {}
    out["asymmetry"] = out["model"].map(asym_by_model)
    for c in PROBE_COLUMNS:
        out[c] = out[c].astype(float)
    return out
