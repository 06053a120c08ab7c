"""The HTML report and the paper's figures, drawn from :mod:`entprobe.analysis` tables.

:func:`write_report` reads results stores and writes ``report.html`` (self-contained),
every figure as PNG and SVG and every table as CSV and Markdown. The ``*_recipe``
functions compute a figure's data from the store's DataFrames and draw it (the report
and the notebook API's ``plot_*`` both use them); the ``plot_*`` functions here draw
matplotlib figures (Agg backend) from analysis tables already computed.
"""

from entprobe.report._build import REPORT_FILE, build_report, write_report
from entprobe.report._figures import (
    MAX_OVERLAY,
    model_colors,
    plot_cross_modal,
    plot_length_entropy,
    plot_length_layers,
    plot_prompt_types,
    plot_response,
)
from entprobe.report._recipes import (
    FigureRecipe,
    cross_modal_recipe,
    figure_colors,
    figure_models,
    length_entropy_recipe,
    length_layers_recipe,
    prompt_types_recipe,
    prompt_types_recipes,
    response_recipe,
)

__all__ = [
    "MAX_OVERLAY",
    "REPORT_FILE",
    "FigureRecipe",
    "build_report",
    "cross_modal_recipe",
    "figure_colors",
    "figure_models",
    "length_entropy_recipe",
    "length_layers_recipe",
    "model_colors",
    "plot_cross_modal",
    "plot_length_entropy",
    "plot_length_layers",
    "plot_prompt_types",
    "plot_response",
    "prompt_types_recipe",
    "prompt_types_recipes",
    "response_recipe",
    "write_report",
]
