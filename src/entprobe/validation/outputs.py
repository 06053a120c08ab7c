"""Writing a validation report to disk: CSV, Markdown and PNG per experiment.

Files in ``out_dir``:

- ``<experiment>.csv``: the raw per-seed records;
- ``<experiment>.md``: setup, summary table (with the paper's values), claims with
  their verdicts, notes, and the figure;
- ``<experiment>.png``: the figure (unless ``figures=False``);
- ``claims.csv`` and ``summary.md``: every claim and its verdict.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ._types import ExperimentResult, ValidationReport

__all__ = ["experiment_markdown", "markdown_table", "write_outputs"]


def _cell(value: object) -> str:
    if isinstance(value, float):
        text = f"{value:.4g}"
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of ``frame`` (index dropped)."""
    header = "| " + " | ".join(_cell(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def experiment_markdown(result: ExperimentResult, *, figure: str | None = None) -> str:
    """The Markdown page of one experiment."""
    lines = [
        f"# {result.title}",
        "",
        "## Setup",
        "",
        result.setup,
        "",
        "## Results",
        "",
        markdown_table(result.table),
        "",
    ]
    lines += ["## Claims", ""]
    for c in result.claims:
        lines += [
            f"- **{c.verdict}**: {c.statement}",
            f"  - criterion: {c.criterion}",
            f"  - observed: {c.evidence}",
        ]
    if result.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in result.notes]
    if figure:
        lines += ["", f"![{result.name}]({figure})"]
    lines += ["", f"Raw records: `{result.name}.csv`.", ""]
    return "\n".join(lines)


def _summary_markdown(report: ValidationReport) -> str:
    cfg = report.config
    held = sum(c.holds for c in report.claims)
    lines = [
        "# entprobe validate: the paper's synthetic validations",
        "",
        f"seeds = {cfg.seeds}, population = {cfg.population} pairs, base seed = {cfg.base_seed}, "
        f"population noise = {cfg.population_noise}; {report.seconds:.1f} s.",
        "",
        f"{held} of {len(report.claims)} claims hold here.",
        "",
        markdown_table(report.claims_frame()[["verdict", "experiment", "statement", "evidence"]]),
        "",
        "Per experiment: " + ", ".join(f"[{e.name}]({e.name}.md)" for e in report.experiments),
        "",
    ]
    return "\n".join(lines)


def write_outputs(report: ValidationReport, out_dir: Path | str, *, figures: bool = True) -> list[Path]:
    """Write every file of the report into ``out_dir`` (created if missing).

    Returns:
        The paths written, in order.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for exp in report.experiments:
        figure = None
        if figures:
            from .plots import plot_experiment

            png = plot_experiment(exp, out)
            if png is not None:
                written.append(png)
                figure = png.name
        csv = out / f"{exp.name}.csv"
        exp.records.to_csv(csv, index=False)
        md = out / f"{exp.name}.md"
        md.write_text(experiment_markdown(exp, figure=figure), encoding="utf-8")
        written += [csv, md]
    claims = out / "claims.csv"
    report.claims_frame().to_csv(claims, index=False)
    summary = out / "summary.md"
    summary.write_text(_summary_markdown(report), encoding="utf-8")
    return written + [claims, summary]
