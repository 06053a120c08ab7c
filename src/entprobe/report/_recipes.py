"""Figure recipes: the data selection and the drawing of each of the paper's figures.

A recipe takes the store's DataFrames (``layer_metrics``, ``samples``, ``runs``, as
read by :func:`entprobe.analysis.load`) and the figure's options, computes the
table(s) the figure shows with :mod:`entprobe.analysis`, and returns them in a
:class:`FigureRecipe` with the figure drawn from them by :mod:`._figures`. The notebook
API's ``plot_*`` functions and the report's sections both call these, so which rows a
figure shows is decided here and nowhere else::

    from entprobe.analysis import load
    from entprobe.report import length_layers_recipe
    lm, samples, runs = load("results.duckdb")
    recipe = length_layers_recipe(lm, runs=runs)
    recipe.data        # one row per model, length bucket and layer: what is drawn
    recipe.figure      # the matplotlib Figure (drawn on first access)

Colours come from :func:`figure_colors`: one colour per model of ``layer_metrics`` and
``runs`` together, so a model keeps its colour across every figure of a report even
when it has no rows in one of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType

import pandas as pd
from matplotlib.figure import Figure

from entprobe import analysis as A
from entprobe.analysis import DEFAULT_EARLY_FRACTION
from entprobe.report import _figures as F

__all__ = [
    "FigureRecipe",
    "cross_modal_recipe",
    "figure_colors",
    "figure_models",
    "length_entropy_recipe",
    "length_layers_recipe",
    "prompt_types_recipe",
    "prompt_types_recipes",
    "response_recipe",
]

RGBA = tuple[float, float, float, float]
Colors = Mapping[str, RGBA]


@dataclass(frozen=True, eq=False)
class FigureRecipe:
    """One figure and the data it is drawn from.

    Attributes:
        data: the main table the figure draws (its columns are given by each recipe);
            empty when there is nothing to draw.
        colors: model -> RGBA colour used (see :func:`figure_colors`).
        draw: draws the figure from these tables; called once, by :attr:`figure`.
        extra: other tables the figure draws from, by name (``"points"`` of
            :func:`length_entropy_recipe`, ``"asymmetry"`` of :func:`cross_modal_recipe`).

    The :attr:`figure` is drawn on first access and then kept, so that a caller (the
    report) can look at :attr:`data` first and skip figures with nothing to show.
    """

    data: pd.DataFrame
    colors: Colors
    draw: Callable[[], Figure] = field(repr=False)
    extra: Mapping[str, pd.DataFrame] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def empty(self) -> bool:
        """Whether :attr:`data` has no rows (the figure would have nothing to show)."""
        return self.data.empty

    @cached_property
    def figure(self) -> Figure:
        """The :class:`matplotlib.figure.Figure` (Agg, not shown).

        Raises:
            ValueError: (from matplotlib) for most recipes when :attr:`data` is empty.
        """
        return self.draw()


def figure_models(layer_metrics: pd.DataFrame, runs: pd.DataFrame | None = None) -> list[str]:
    """Sorted model names found in ``layer_metrics`` or ``runs`` (missing names skipped).

    A model with runs but no metric rows is included, so it keeps its colour.
    """
    names = set(layer_metrics["model"].dropna())
    if runs is not None:
        names |= set(runs["model"].dropna())
    return sorted(names)


def figure_colors(layer_metrics: pd.DataFrame, runs: pd.DataFrame | None = None) -> dict[str, RGBA]:
    """One colour per model of :func:`figure_models`, as :func:`~entprobe.report.model_colors`
    assigns them (by sorted name); every figure and the report's legend use these."""
    return F.model_colors(figure_models(layer_metrics, runs))


def _recipe(data: pd.DataFrame, colors: Colors, draw: Callable[[], Figure], **extra: pd.DataFrame):
    return FigureRecipe(data=data, colors=colors, draw=draw, extra=MappingProxyType(extra))


def length_entropy_recipe(
    layer_metrics: pd.DataFrame,
    samples: pd.DataFrame | None = None,
    *,
    runs: pd.DataFrame | None = None,
) -> FigureRecipe:
    """Fig. 4 (left): embedding entropy (layer 0) of each text prompt against its length.

    Args:
        layer_metrics: needs ``run_id, model, dataset, sample_id, modality, level,
            layer, metric, value`` (and ``length_bucket``, ``n_prompt_tokens`` if present).
        samples: gives the prompt lengths in characters (``n_chars``); without it the
            prompt token count is used.
        runs: only for the models' colours.

    Returns:
        ``data``: :func:`entprobe.analysis.length_trend` of the points, one row per
        (model, length bin): ``bin, length_low, length_high, length_mean, n,
        entropy_mean, entropy_se, length_unit`` (drawn as lines); ``extra["points"]``:
        :func:`entprobe.analysis.prompt_length_points`, one row per text prompt
        (drawn as dots). ``data`` is empty exactly when there are no points.
    """
    points = A.prompt_length_points(layer_metrics, samples)
    trend = A.length_trend(points)
    colors = figure_colors(layer_metrics, runs)
    return _recipe(trend, colors, lambda: F.plot_length_entropy(trend, points, colors), points=points)


def length_layers_recipe(layer_metrics: pd.DataFrame, *, runs: pd.DataFrame | None = None) -> FigureRecipe:
    """Fig. 4 (right): layer-wise entropy of short, middle and long text prompts.

    Rows drawn: prompt-level ``entropy`` of text prompts that have a ``length_bucket``
    (§5.1.2: the layer-wise trajectories of text prompts of each length).

    Args:
        layer_metrics: needs ``model, modality, length_bucket, level, metric, layer,
            n_layers, value``.
        runs: only for the models' colours.

    Returns:
        ``data``: :func:`entprobe.analysis.layer_trajectories` with
        ``by=("length_bucket",)``, one row per (model, n_layers, length_bucket, layer):
        ``rel_depth, n, mean, std, se``.
    """
    bucketed = layer_metrics.loc[layer_metrics["length_bucket"].notna()]
    traj = A.layer_trajectories(
        bucketed, level="prompt", metric="entropy", by=("length_bucket",), modality="text"
    )
    colors = figure_colors(layer_metrics, runs)
    return _recipe(traj, colors, lambda: F.plot_length_layers(traj, colors))


def prompt_types_recipe(
    layer_metrics: pd.DataFrame, *, runs: pd.DataFrame | None = None, modality: str = "text"
) -> FigureRecipe:
    """Fig. 5: layer-wise prompt entropy per prompt type of ``modality``, a panel per model.

    Args:
        layer_metrics: needs ``model, modality, category, level, metric, layer,
            n_layers, value``.
        runs: only for the models' colours.
        modality: ``"text"`` or ``"image"``: the prompts drawn.

    Returns:
        ``data``: :func:`entprobe.analysis.layer_trajectories` with
        ``by=("modality", "category")`` of prompt-level entropy, one row per (model,
        n_layers, modality, category, layer): ``rel_depth, n, mean, std, se``. It holds
        every modality (the report writes it as one table); the figure draws the rows
        of ``modality``.
    """
    return prompt_types_recipes(layer_metrics, runs=runs, modalities=(modality,))[modality]


def prompt_types_recipes(
    layer_metrics: pd.DataFrame,
    *,
    runs: pd.DataFrame | None = None,
    modalities: Sequence[str] = ("text", "image"),
) -> dict[str, FigureRecipe]:
    """:func:`prompt_types_recipe` of each of ``modalities``, by modality.

    The recipes share one ``data`` table (the trajectories are computed once, which
    matters for large stores); each draws its modality's rows.
    """
    traj = A.layer_trajectories(layer_metrics, by=("modality", "category"))
    colors = figure_colors(layer_metrics, runs)

    def recipe(modality: str) -> FigureRecipe:
        return _recipe(traj, colors, lambda: F.plot_prompt_types(traj, colors, modality=modality))

    return {m: recipe(m) for m in modalities}


def cross_modal_recipe(
    layer_metrics: pd.DataFrame,
    *,
    runs: pd.DataFrame | None = None,
    early_fraction: float = DEFAULT_EARLY_FRACTION,
) -> FigureRecipe:
    """§5.3: text against image prompt entropy per layer, a panel per model.

    Args:
        layer_metrics: needs ``model, run_id, dataset, sample_id, modality, level,
            metric, layer, n_layers, value``.
        runs: only for the models' colours.
        early_fraction: share of depth whose layers give the asymmetry (shaded).

    Returns:
        ``data``: :func:`entprobe.analysis.layer_trajectories` with ``by=("modality",)``
        of prompt-level entropy, one row per (model, n_layers, modality, layer);
        ``extra["asymmetry"]``: :func:`entprobe.analysis.cross_modal_asymmetry`, one
        row per model with text and image prompts (in the panel titles).

    Raises:
        ProbeInputError: ``early_fraction`` outside (0, 1].
    """
    traj = A.layer_trajectories(layer_metrics, by=("modality",))
    asym = A.cross_modal_asymmetry(layer_metrics, early_fraction=early_fraction)
    colors = figure_colors(layer_metrics, runs)
    return _recipe(
        traj,
        colors,
        lambda: F.plot_cross_modal(traj, asym, colors, early_fraction=early_fraction),
        asymmetry=asym,
    )


def response_recipe(layer_metrics: pd.DataFrame, *, runs: pd.DataFrame | None = None) -> FigureRecipe:
    """§6: conditional entropy proxy of text against image generation per layer.

    Args:
        layer_metrics: needs ``model, level, metric, layer, n_layers, value``.
        runs: only for the models' colours.

    Returns:
        ``data``: :func:`entprobe.analysis.layer_trajectories` of
        ``conditional_entropy`` over the ``text-gen`` and ``image-gen`` levels with
        ``by=("level",)``, one row per (model, n_layers, level, layer).
    """
    traj = A.layer_trajectories(
        layer_metrics, level=("text-gen", "image-gen"), metric="conditional_entropy", by=("level",)
    )
    colors = figure_colors(layer_metrics, runs)
    return _recipe(traj, colors, lambda: F.plot_response(traj, colors))
