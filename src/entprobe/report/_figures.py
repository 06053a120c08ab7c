"""The paper's figures, drawn with matplotlib from the analysis tables.

Figures are built as :class:`matplotlib.figure.Figure` objects without pyplot, so
nothing depends on (or changes) the session's backend; saving them renders through
Agg, headless.

Every ``plot_*`` function takes tables from :mod:`entprobe.analysis` and a
``colors`` mapping (model -> colour, see :func:`model_colors`) and returns a
:class:`matplotlib.figure.Figure`; nothing is shown or written here.

Legibility rules: one colour per model in every figure; a model's secondary
groupings (text/image, prompt type, length bucket) differ by line style and shade
of that colour; with more than :data:`MAX_OVERLAY` models, figures switch from one
axis with a line per model to small multiples (a panel per model).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import matplotlib
import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from entprobe.analysis import LENGTH_BUCKETS
from entprobe.analysis._common import category_order

__all__ = [
    "MAX_OVERLAY",
    "model_colors",
    "plot_length_entropy",
    "plot_length_layers",
    "plot_prompt_types",
    "plot_cross_modal",
    "plot_response",
]

#: Up to this many models share one axis; beyond it, one panel per model.
MAX_OVERLAY = 6

_RC = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
}

#: rcParams read when a figure is saved: SVG text stays text (smaller, searchable).
SAVE_RC = {"svg.fonttype": "none"}

_STYLES = ["-", "--", "-.", ":"]
_MARKERS = [None, None, None, None, "o", "s", "^", "D"]
DEPTH_LABEL = "relative depth (layer / number of layers)"
ENTROPY_LABEL = "prompt entropy (bits)"
PROXY_LABEL = "conditional entropy proxy (bits)"


def model_colors(models: Sequence[str]) -> dict[str, tuple[float, float, float, float]]:
    """One colour per model, by sorted name: ``tab10`` up to 10 models, then the
    ``Dark2`` and ``Set1`` colours (up to 24 models, all saturated enough for text on
    white), evenly spaced ``turbo`` colours beyond.

    Example:
        >>> sorted(model_colors(["b", "a"])) == ["a", "b"]
        True
    """
    names = sorted({str(m) for m in models})
    if len(names) <= 10:
        cmap = matplotlib.colormaps["tab10"]
        return {m: cmap(i) for i, m in enumerate(names)}
    cm = matplotlib.colormaps
    palette = (
        [cm["tab10"](i) for i in range(10)]
        + [cm["Dark2"](i) for i in range(8)]
        + [cm["Set1"](i) for i in (0, 1, 2, 3, 6, 8)]
    )
    if len(names) <= len(palette):
        return {m: palette[i] for i, m in enumerate(names)}
    cmap = matplotlib.colormaps["turbo"]
    return {m: cmap(0.05 + 0.9 * i / (len(names) - 1)) for i, m in enumerate(names)}


def _shade(color: object, i: int, n: int) -> tuple[float, float, float]:
    """The i-th of n variants of a colour, from the colour itself towards white/black."""
    rgb = np.array(mcolors.to_rgb(color))
    if n <= 1:
        return tuple(rgb)
    t = i / (n - 1)
    # first half darker, second half lighter, never far enough to lose the hue
    if t < 0.5:
        out = rgb * (1.0 - 0.45 * (0.5 - t))
    else:
        out = rgb + (1.0 - rgb) * 0.55 * (t - 0.5)
    return tuple(np.clip(out, 0, 1))


def _variant(i: int, n: int, color: object) -> dict[str, object]:
    return {
        "color": _shade(color, i, n),
        "linestyle": _STYLES[i % len(_STYLES)],
        "marker": _MARKERS[i % len(_MARKERS)],
        "markersize": 3,
    }


@dataclass
class _Series:
    x: np.ndarray
    y: np.ndarray
    se: np.ndarray | None
    label: str
    style: dict[str, object]


@dataclass
class _Panel:
    title: str
    title_color: object = "black"
    series: list[_Series] = field(default_factory=list)
    span: tuple[float, float] | None = None  # shaded x-range (early layers)


def _grid(
    n: int, *, ncols: int, sharey: bool, w: float = 3.3, h: float = 2.5, top_in: float = 0.5
) -> tuple[Figure, list[Axes], int]:
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(w * ncols + 0.4, h * nrows + top_in + 0.2))
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=sharey)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n], ncols


def _finish(
    fig: Figure,
    title: str,
    legend: list[tuple[str, dict[str, object]]] | None,
    *,
    legend_title: str | None = None,
) -> None:
    """Title and legend in a fixed band (in inches) above the panels."""
    height = fig.get_figheight()
    rows = 0 if not legend else math.ceil(len(legend) / 6) + (1 if legend_title else 0)
    top_in = 0.4 + (0.2 * rows + 0.1 if legend else 0.0)
    # lay out the panels first: tight_layout would otherwise also make room for the suptitle
    fig.tight_layout(rect=(0, 0, 1, 1.0 - top_in / height))
    fig.suptitle(title, fontsize=11, fontweight="bold", y=1.0 - 0.08 / height, va="top")
    if legend:
        handles = [Line2D([], [], **{"linewidth": 1.8, **style}) for _, style in legend]
        fig.legend(
            handles,
            [lab for lab, _ in legend],
            loc="upper center",
            ncol=min(len(legend), 6),
            frameon=False,
            title=legend_title,
            bbox_to_anchor=(0.5, 1.0 - 0.34 / height),
        )


def _draw(
    panels: list[_Panel],
    *,
    ncols: int,
    xlabel: str,
    ylabel: str,
    title: str,
    legend: list[tuple[str, dict[str, object]]] | None = None,
    legend_title: str | None = None,
    sharey: bool = False,
    bands: bool = True,
) -> Figure:
    with rc_context(_RC):
        n_leg_rows = 0 if not legend else math.ceil(len(legend) / 6) + (1 if legend_title else 0)
        fig, axes, ncols_used = _grid(
            len(panels), ncols=ncols, sharey=sharey, top_in=0.45 + 0.22 * n_leg_rows
        )
        for ax, panel in zip(axes, panels):
            if panel.span is not None:
                ax.axvspan(*panel.span, color="0.85", alpha=0.6, lw=0, zorder=0)
            for s in panel.series:
                ax.plot(s.x, s.y, label=s.label, lw=1.5, **s.style)
                if bands and s.se is not None and len(panel.series) <= 4 and np.isfinite(s.se).any():
                    se = np.nan_to_num(s.se)
                    ax.fill_between(
                        s.x, s.y - 1.96 * se, s.y + 1.96 * se, color=s.style["color"], alpha=0.15, lw=0
                    )
            if not panel.series:
                ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="0.4")
            ax.set_title(panel.title, color=panel.title_color, fontweight="bold")
        for i, ax in enumerate(axes):
            if i % ncols_used == 0:
                ax.set_ylabel(ylabel)
            if i >= len(axes) - ncols_used:
                ax.set_xlabel(xlabel)
            ax.tick_params(labelbottom=True)
        _finish(fig, title, legend, legend_title=legend_title)
    return fig


def _series(df: pd.DataFrame, label: str, style: dict[str, object], x: str = "rel_depth") -> _Series:
    d = df.sort_values(x)
    return _Series(
        d[x].to_numpy(float),
        d["mean"].to_numpy(float),
        d["se"].to_numpy(float) if "se" in d else None,
        label,
        style,
    )


def _model_legend(models: Sequence[str], colors: Mapping[str, object]) -> list[tuple[str, dict[str, object]]]:
    return [(m, {"color": colors[m], "linestyle": "-"}) for m in models]


def _gray_legend(labels: Sequence[str]) -> list[tuple[str, dict[str, object]]]:
    return [(lab, _variant(i, len(labels), "0.35")) for i, lab in enumerate(labels)]


def _pair_style(i: int, color: object) -> dict[str, object]:
    """Style of the first (``i == 0``) or second of two groupings within a model's panel."""
    return {"color": _shade(color, 0 if i == 0 else 1, 2), "linestyle": _STYLES[i]}


def _model_panels(
    traj: pd.DataFrame,
    models: Sequence[str],
    colors: Mapping[str, object],
    column: str,
    values: Sequence[str],
    style: Callable[[int, object], dict[str, object]],
    *,
    title: Callable[[str], str] | None = None,
    span: tuple[float, float] | None = None,
) -> list[_Panel]:
    """One panel per model (titled ``title(model)``, default the model), with one
    series per value of ``column`` that has rows, styled ``style(i, model colour)``."""
    panels = []
    for m in models:
        p = _Panel(m if title is None else title(m), colors[m], span=span)
        for i, value in enumerate(values):
            d = traj.loc[(traj["model"] == m) & (traj[column] == value)]
            if not d.empty:
                p.series.append(_series(d, value, style(i, colors[m])))
        panels.append(p)
    return panels


def plot_length_entropy(trend: pd.DataFrame, points: pd.DataFrame, colors: Mapping[str, object]) -> Figure:
    """Fig. 4 (left): embedding entropy against prompt length, per model.

    Args:
        trend: :func:`entprobe.analysis.length_trend` (binned means, drawn as lines).
        points: :func:`entprobe.analysis.prompt_length_points` (drawn as faint dots).
    """
    models = sorted(trend["model"].unique())
    unit = str(points["length_unit"].iloc[0]) if len(points) else "characters"
    xlabel = f"prompt length ({unit})"
    ylabel = "embedding entropy, layer 0 (bits)"
    title = "Fig. 4 (left): embedding entropy vs prompt length, text prompts"
    overlay = len(models) <= MAX_OVERLAY
    with rc_context(_RC):
        if overlay:
            fig = Figure(figsize=(6.4, 4.3))
            ax = fig.subplots()
            axes = {m: ax for m in models}
        else:
            fig, flat, ncols = _grid(len(models), ncols=4, sharey=False, top_in=0.5)
            axes = dict(zip(models, flat))
        for i, m in enumerate(models):
            ax = axes[m]
            p = points.loc[points["model"] == m]
            t = trend.loc[trend["model"] == m].sort_values("length_mean")
            ax.scatter(p["length"], p["entropy"], s=6, color=colors[m], alpha=0.25, lw=0)
            ax.plot(t["length_mean"], t["entropy_mean"], marker="o", ms=3.5, lw=1.8, color=colors[m], label=m)
            if overlay:
                ax.set_xlabel(xlabel)
                ax.set_ylabel(ylabel)
            else:
                ax.set_title(m, color=colors[m], fontweight="bold")
                if i % ncols == 0:
                    ax.set_ylabel(ylabel)
                if i >= len(models) - ncols:
                    ax.set_xlabel(xlabel)
                ax.tick_params(labelbottom=True)
        if overlay:
            ax.legend(title="model (dots: prompts; line: binned mean)", frameon=False)
        _finish(fig, title, None)
    return fig


def plot_length_layers(traj: pd.DataFrame, colors: Mapping[str, object]) -> Figure:
    """Fig. 4 (right): layer-wise entropy of short / middle / long text prompts.

    Args:
        traj: :func:`entprobe.analysis.layer_trajectories` with ``by=("length_bucket",)``
            on text prompts.
    """
    models = sorted(traj["model"].unique())
    present = [b for b in LENGTH_BUCKETS if b in set(traj["length_bucket"])]
    present += sorted(set(traj["length_bucket"]) - set(present))
    title = "Fig. 4 (right): layer-wise entropy of text prompts by length"
    if len(models) <= MAX_OVERLAY:
        panels = []
        for b in present:
            p = _Panel(f"{b} prompts")
            for m in models:
                d = traj.loc[(traj["model"] == m) & (traj["length_bucket"] == b)]
                if not d.empty:
                    p.series.append(_series(d, m, {"color": colors[m], "linestyle": "-"}))
            panels.append(p)
        return _draw(
            panels,
            ncols=3,
            xlabel=DEPTH_LABEL,
            ylabel=ENTROPY_LABEL,
            title=title,
            legend=_model_legend(models, colors),
            sharey=True,
        )
    panels = _model_panels(
        traj, models, colors, "length_bucket", present, lambda i, color: _variant(i, len(present), color)
    )
    return _draw(
        panels, ncols=4, xlabel=DEPTH_LABEL, ylabel=ENTROPY_LABEL, title=title, legend=_gray_legend(present)
    )


def plot_prompt_types(traj: pd.DataFrame, colors: Mapping[str, object], *, modality: str) -> Figure:
    """Fig. 5: layer-wise entropy per prompt type of one modality, a panel per model.

    Within a panel the prompt types differ by line style and shade of the model's
    colour; the legend (in grey) is shared by all panels.

    Args:
        traj: :func:`entprobe.analysis.layer_trajectories` with
            ``by=("modality", "category")`` on prompt entropy.
        modality: ``"text"`` or ``"image"``.
    """
    d_mod = traj.loc[traj["modality"] == modality]
    models = sorted(d_mod["model"].unique())
    cats = category_order(d_mod["category"])
    panels = _model_panels(
        d_mod, models, colors, "category", cats, lambda i, color: _variant(i, len(cats), color)
    )
    return _draw(
        panels,
        ncols=4,
        xlabel=DEPTH_LABEL,
        ylabel=ENTROPY_LABEL,
        title=f"Fig. 5: layer-wise entropy per {modality} prompt type",
        legend=_gray_legend(cats),
        legend_title=f"{modality} prompt type",
        bands=False,
    )


def plot_cross_modal(
    traj: pd.DataFrame, asymmetry: pd.DataFrame, colors: Mapping[str, object], *, early_fraction: float
) -> Figure:
    """§5.3: text vs image prompt entropy per model against relative depth.

    The early layers used for the asymmetry are shaded; each panel's title gives the
    model's asymmetry (text - image, bits).

    Args:
        traj: :func:`entprobe.analysis.layer_trajectories` with ``by=("modality",)``.
        asymmetry: :func:`entprobe.analysis.cross_modal_asymmetry`.
    """
    models = sorted(traj["model"].unique())
    asym = asymmetry.groupby("model")["asymmetry"].mean() if not asymmetry.empty else pd.Series(dtype=float)
    panels = _model_panels(
        traj,
        models,
        colors,
        "modality",
        ("text", "image"),
        _pair_style,
        title=lambda m: m if m not in asym else f"{m}\nasymmetry {asym[m]:+.2f} bits",
        span=(0.0, early_fraction),
    )
    legend = [
        ("text prompts", {"color": "0.3", "linestyle": "-"}),
        ("image prompts", {"color": "0.55", "linestyle": "--"}),
        (
            f"early layers (first {early_fraction:g} of depth)",
            {"color": "0.8", "linestyle": "-", "linewidth": 7},
        ),
    ]
    return _draw(
        panels,
        ncols=4,
        xlabel=DEPTH_LABEL,
        ylabel=ENTROPY_LABEL,
        title="§5.3: text vs image prompt entropy per model",
        legend=legend,
    )


def plot_response(traj: pd.DataFrame, colors: Mapping[str, object]) -> Figure:
    """§6: layer-wise conditional entropy of text vs image generation, per model.

    Args:
        traj: :func:`entprobe.analysis.layer_trajectories` of ``conditional_entropy``
            with ``by=("level",)`` over the ``text-gen`` and ``image-gen`` levels.
    """
    models = sorted(traj["model"].unique())
    panels = _model_panels(traj, models, colors, "level", ("text-gen", "image-gen"), _pair_style)
    legend = [
        ("text generation", {"color": "0.3", "linestyle": "-"}),
        ("image generation", {"color": "0.55", "linestyle": "--"}),
    ]
    return _draw(
        panels,
        ncols=4,
        xlabel=DEPTH_LABEL,
        ylabel=PROXY_LABEL,
        title="§6: conditional entropy, text vs image generation",
        legend=legend,
    )
