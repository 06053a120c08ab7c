"""Provenance tables: what a set of stores holds, how each run was set up, what failed.

Pure functions over the store's query results, like :mod:`entprobe.analysis._tables`
(the paper's tables); these describe the runs rather than the numbers.
"""

from __future__ import annotations

import json

import pandas as pd

from entprobe.analysis._common import require_columns, sort_table

__all__ = ["coverage_table", "failed_samples", "interval_width_table", "run_summary", "sample_counts"]


def coverage_table(layer_metrics: pd.DataFrame) -> pd.DataFrame:
    """What each model has: samples and layers per ``(model, level, modality, metric)``."""
    require_columns(
        layer_metrics,
        ["model", "run_id", "dataset", "sample_id", "level", "modality", "metric", "n_layers"],
        name="layer_metrics",
    )
    keys = ["model", "level", "modality", "metric"]
    cols = [*keys, "n_samples", "n_layers"]
    if layer_metrics.empty:
        return pd.DataFrame(columns=cols)
    samples = layer_metrics[[*keys, "run_id", "dataset", "sample_id"]].drop_duplicates()
    out = samples.groupby(keys, sort=False).size().rename("n_samples").reset_index()
    depths = (
        layer_metrics.groupby(keys, sort=False)["n_layers"]
        .agg(lambda s: ", ".join(str(int(v)) for v in sorted(s.dropna().unique())))
        .rename("n_layers")
    )
    out = out.merge(depths.reset_index(), on=keys)
    return sort_table(out[cols], keys)


def interval_width_table(layer_metrics: pd.DataFrame) -> pd.DataFrame:
    """Certified interval widths (``--spectrum topk:K`` rows) per ``(model, level, modality, metric)``.

    ``width = upper - lower`` per layer row, in the run's base; ``max_width`` is the
    widest layer row, so every stored value lies within ``max_width / 2`` of the exact
    one. Empty when no row carries bounds (exact runs store none).
    """
    keys = ["model", "level", "modality", "metric"]
    cols = [*keys, "n_rows", "mean_width", "median_width", "max_width", "mean_value"]
    if layer_metrics.empty or "lower" not in layer_metrics or "upper" not in layer_metrics:
        return pd.DataFrame(columns=cols)
    df = layer_metrics.dropna(subset=["lower", "upper"])
    if df.empty:
        return pd.DataFrame(columns=cols)
    df = df.assign(
        width=df["upper"].astype(float) - df["lower"].astype(float), value=df["value"].astype(float)
    )
    out = (
        df.groupby(keys, sort=False)
        .agg(
            n_rows=("width", "size"),
            mean_width=("width", "mean"),
            median_width=("width", "median"),
            max_width=("width", "max"),
            mean_value=("value", "mean"),
        )
        .reset_index()
    )
    return sort_table(out[cols], keys)


def _flatten(prefix: str, obj: object, out: dict[str, object]) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = obj


def _config_dict(config: object) -> dict[str, object]:
    if isinstance(config, dict):
        raw = config
    elif isinstance(config, str) and config.strip():
        try:
            raw = json.loads(config)
        except json.JSONDecodeError:
            return {"config": config}
    else:
        return {}
    flat: dict[str, object] = {}
    _flatten("", raw, flat)
    return flat


def run_summary(runs: pd.DataFrame, samples: pd.DataFrame | None = None) -> pd.DataFrame:
    """Provenance: one row per run, with its settings and sample counts.

    The run's ``config`` (JSON text or dict) is flattened into ``settings``
    (``key=value`` lines, nested keys dotted) so estimator and generation settings
    can be read at a glance; a ``store`` column (added by :func:`load`) is kept.
    """
    require_columns(runs, ["run_id", "model"], name="runs")
    out = runs.copy()
    for col in ["adapter", "entprobe_version", "started_at", "finished_at", "config"]:
        if col not in out.columns:
            out[col] = None
    out["settings"] = out["config"].map(
        lambda c: "\n".join(
            f"{k}={json.dumps(v) if not isinstance(v, str) else v}"
            for k, v in sorted(_config_dict(c).items())
        )
    )
    out["n_ok"] = 0
    out["n_failed"] = 0
    if samples is not None and not samples.empty:
        require_columns(samples, ["run_id", "status"], name="samples")
        counts = samples.groupby(["run_id", "status"]).size().unstack("status", fill_value=0)
        out["n_ok"] = out["run_id"].map(counts["ok"] if "ok" in counts else {}).fillna(0).astype(int)
        out["n_failed"] = (
            out["run_id"].map(counts["failed"] if "failed" in counts else {}).fillna(0).astype(int)
        )
    cols = [
        "model",
        "run_id",
        "adapter",
        "entprobe_version",
        "started_at",
        "finished_at",
        "n_ok",
        "n_failed",
        "settings",
    ] + (["store"] if "store" in out.columns else [])
    return out[cols].sort_values(["model", "run_id"], kind="stable").reset_index(drop=True)


def _with_model(samples: pd.DataFrame, runs: pd.DataFrame | None) -> pd.DataFrame:
    if "model" in samples.columns:
        return samples
    if runs is None or runs.empty:
        return samples.assign(model="(unknown run)")
    model = runs.drop_duplicates("run_id").set_index("run_id")["model"]
    return samples.assign(model=samples["run_id"].map(model).fillna("(unknown run)"))


def sample_counts(samples: pd.DataFrame, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Provenance: samples per ``(model, level, modality, dataset)``, ok and failed."""
    require_columns(samples, ["run_id", "dataset", "level", "modality", "status"], name="samples")
    keys = ["model", "level", "modality", "dataset"]
    cols = [*keys, "n_ok", "n_failed"]
    if samples.empty:
        return pd.DataFrame(columns=cols)
    s = _with_model(samples, runs)
    counts = s.groupby([*keys, "status"], dropna=False).size().unstack("status", fill_value=0)
    for status in ("ok", "failed"):
        if status not in counts.columns:
            counts[status] = 0
    out = counts[["ok", "failed"]].rename(columns={"ok": "n_ok", "failed": "n_failed"}).reset_index()
    out.columns.name = None
    return sort_table(out[cols], keys)


def failed_samples(samples: pd.DataFrame, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Provenance: every failed sample with the reason the pipeline recorded."""
    require_columns(samples, ["run_id", "dataset", "sample_id", "level", "status"], name="samples")
    cols = ["model", "run_id", "dataset", "sample_id", "level", "modality", "error"]
    s = _with_model(samples.loc[samples["status"] == "failed"], runs)
    for col in ("modality", "error"):
        if col not in s.columns:
            s = s.assign(**{col: None})
    return (
        s[cols].sort_values(["model", "dataset", "sample_id", "level"], kind="stable").reset_index(drop=True)
    )
