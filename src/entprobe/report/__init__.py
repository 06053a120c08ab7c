"""The HTML report and the paper's figures, drawn from :mod:`entprobe.analysis` tables.

:func:`write_report` reads results stores and writes ``report.html`` (self-contained),
every figure as PNG and SVG and every table as CSV and Markdown. The ``plot_*``
functions return matplotlib figures (Agg backend) for notebooks.
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

__all__ = [
    "MAX_OVERLAY",
    "REPORT_FILE",
    "build_report",
    "model_colors",
    "plot_cross_modal",
    "plot_length_entropy",
    "plot_length_layers",
    "plot_prompt_types",
    "plot_response",
    "write_report",
]
