"""Figures of the synthetic validations (matplotlib, Agg backend).

One function per experiment, ``plot_<name>(result, path)``, each reading only the
:class:`~entprobe.validation.ExperimentResult` it is given.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ._types import ExperimentResult, ValidationReport

__all__ = ["PLOTTERS", "plot_experiment", "write_figures"]


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _mean_std(frame, by, value):
    g = frame.groupby(by, sort=False)[value]
    return g.mean(), g.std(ddof=1)


def _side_by_side_bar(ax, names: list[str], j: int, width: float, mean, std, label: str) -> None:
    """Bar ``j`` of a pair per case (``names`` on the x axis): mean ± std of ``label``."""
    ax.bar(
        np.arange(len(names)) + (j - 0.5) * width,
        mean[names],
        width,
        yerr=std[names],
        capsize=3,
        label=label,
    )


def _save(plt, fig, path: Path, *, tight: bool = True) -> None:
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_cluster_entropy(result: ExperimentResult, path: Path) -> None:
    plt = _plt()
    examples = result.figure_data.get("pca2", {})
    fig = plt.figure(figsize=(11, 5.2))
    grid = fig.add_gridspec(2, max(len(examples), 1), height_ratios=[1, 1.1])
    for i, (label, xy) in enumerate(examples.items()):
        ax = fig.add_subplot(grid[0, i])
        ax.scatter(xy[:, 0], xy[:, 1], s=4, alpha=0.6)
        ax.set_title(label, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    ax = fig.add_subplot(grid[1, :])
    mean, std = _mean_std(result.records, "case", "entropy_bits")
    x = np.arange(len(mean))
    ax.errorbar(x, mean.values, yerr=std.values, marker="o", capsize=4)
    ax.set_xticks(x, mean.index)
    ax.set_ylabel("matrix entropy (bits)")
    ax.set_title("Entropy vs number of clusters (mean ± std over seeds; top: 2-D PCA of seed 0)", fontsize=10)
    _save(plt, fig, path)


def plot_dependence_proxy(result: ExperimentResult, path: Path) -> None:
    plt = _plt()
    rec = result.records
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    cases = rec[rec.kind == "case"]
    names = list(dict.fromkeys(cases.case))
    width = 0.38
    for j, norm in enumerate(("trace", "plain")):
        sub = cases[cases.normalization == norm]
        mean, std = _mean_std(sub, "case", "proxy_bits")
        _side_by_side_bar(ax1, names, j, width, mean, std, norm)
    ax1.set_xticks(np.arange(len(names)), names)
    ax1.set_ylabel("proxy H(X,Y) - H(X) (bits)")
    ax1.set_title("Three responses to the same X", fontsize=10)
    ax1.legend()
    sweep = rec[(rec.kind == "sweep") & (rec.normalization == "trace")]
    mean, std = _mean_std(sweep, "correlation", "proxy_bits")
    order = np.argsort(mean.index.values)
    ax2.errorbar(mean.index.values[order], mean.values[order], yerr=std.values[order], marker="o", capsize=3)
    ax2.set_xlabel("c in Y = c X + sqrt(1 - c^2) eps")
    ax2.set_ylabel("proxy (bits), trace")
    ax2.set_title("Sweep of the dependence", fontsize=10)
    _save(plt, fig, path)


def plot_shannon_agreement(result: ExperimentResult, path: Path) -> None:
    plt = _plt()
    rec = result.records
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    names = list(dict.fromkeys(rec.case))
    width = 0.38
    for j, (col, label) in enumerate((("true_scaled", "KDE H(Y|X)"), ("proxy_scaled", "proxy"))):
        mean, std = _mean_std(rec, "case", col)
        _side_by_side_bar(ax1, names, j, width, mean, std, label)
    paper = {"deterministic": (0.00, 0.01), "noisy": (0.18, 0.21), "independent": (1.00, 0.99)}
    for i, n in enumerate(names):
        if n in paper:
            ax1.plot(
                [i - 0.5 * width, i + 0.5 * width],
                paper[n],
                "k_",
                markersize=14,
                label="paper" if i == 0 else None,
            )
    ax1.set_xticks(np.arange(len(names)), names)
    ax1.set_ylabel("scaled to [0, 1] per seed")
    ax1.legend(fontsize=8)
    ax1.set_title("Supplement Table 1 (bars: ours; dashes: paper)", fontsize=10)
    for n in names:
        sub = rec[rec.case == n]
        ax2.scatter(sub.true_bits, sub.proxy_bits, label=n, s=18)
    ax2.set_xlabel("KDE H(Y|X) (bits)")
    ax2.set_ylabel("proxy (bits)")
    ax2.set_title("Raw values, every seed", fontsize=10)
    ax2.legend(fontsize=8)
    _save(plt, fig, path)


def plot_normalization(result: ExperimentResult, path: Path) -> None:
    plt = _plt()
    rec = result.records
    seed0 = rec[rec.seed == rec.seed.min()]
    pairs = (("subsample", "plain"), ("subsample", "trace"), ("plain", "trace"))
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.0), layout="constrained")
    for ax, (a, b) in zip(axes, pairs):
        sc = ax.scatter(seed0[f"proxy_{a}"], seed0[f"proxy_{b}"], c=seed0.correlation, s=10, cmap="viridis")
        ax.set_xlabel(f"{a} (bits)")
        ax.set_ylabel(f"{b} (bits)")
        ax.set_title(f"{a} vs {b} (seed {seed0.seed.min()})", fontsize=10)
    fig.colorbar(sc, ax=axes, label="dependence c")
    _save(plt, fig, path, tight=False)  # the constrained layout already placed the colour bar


def _parse_rho(cell: str) -> tuple[float, float]:
    parts = [p.strip() for p in str(cell).split("±")]
    return float(parts[0]), (float(parts[1]) if len(parts) > 1 else 0.0)


def plot_sensitivity(result: ExperimentResult, path: Path) -> None:
    plt = _plt()
    table = result.table
    col = "Spearman rho vs default, mean ± std"
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.0))
    for ax, prefix, xlabel, logx in (
        (ax1, "sigma = ", "sigma / median distance", True),
        (ax2, "alpha = ", "alpha", False),
    ):
        rows = table[table.setting.str.startswith(prefix)]
        x = [float(s.removeprefix(prefix).removesuffix(" m")) for s in rows.setting]
        ours = [_parse_rho(v) for v in rows[col]]
        paper = [_parse_rho(v) for v in rows.paper]
        ax.errorbar(x, [o[0] for o in ours], yerr=[o[1] for o in ours], marker="o", capsize=3, label="ours")
        ax.errorbar(
            x,
            [p[0] for p in paper],
            yerr=[p[1] for p in paper],
            marker="s",
            capsize=3,
            linestyle="--",
            label="paper",
        )
        if logx:
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("Spearman rho vs default")
        ax.legend(fontsize=8)
    ax1.set_title("Bandwidth (Table 3)", fontsize=10)
    ax2.set_title("Renyi order (Table 4)", fontsize=10)
    _save(plt, fig, path)


PLOTTERS: dict[str, Callable[[ExperimentResult, Path], None]] = {
    "cluster_entropy": plot_cluster_entropy,
    "dependence_proxy": plot_dependence_proxy,
    "shannon_agreement": plot_shannon_agreement,
    "normalization": plot_normalization,
    "sensitivity": plot_sensitivity,
}


def plot_experiment(result: ExperimentResult, out_dir: Path | str) -> Path | None:
    """Draw ``<out_dir>/<name>.png`` for one experiment (None if it has no figure)."""
    plotter = PLOTTERS.get(result.name)
    if plotter is None:
        return None
    path = Path(out_dir) / f"{result.name}.png"
    plotter(result, path)
    return path


def write_figures(report: ValidationReport, out_dir: Path | str) -> list[Path]:
    """Draw every experiment's figure into ``out_dir``; returns the paths written."""
    paths = [plot_experiment(e, out_dir) for e in report.experiments]
    return [p for p in paths if p is not None]
