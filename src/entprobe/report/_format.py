"""Writing tables: Markdown without extra dependencies, HTML via pandas, number formats."""

from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd

__all__ = ["to_markdown", "to_html_table", "fmt_num", "fmt_mean_ci"]


def fmt_num(x: object, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA:
        return "—"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def fmt_mean_ci(mean: float, lo: float, hi: float, n: int, digits: int = 3) -> str:
    """``"6.388 [6.210, 6.550] n=270"``; the interval is left out when undefined."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "—"
    ci = "" if (lo is None or math.isnan(lo)) else f" [{lo:.{digits}f}, {hi:.{digits}f}]"
    return f"{mean:.{digits}f}{ci} n={int(n)}"


def _md_cell(x: object, digits: int) -> str:
    s = fmt_num(x, digits)
    return s.replace("|", "\\|").replace("\r", "").replace("\n", "<br>")


def to_markdown(df: pd.DataFrame, *, digits: int = 4) -> str:
    """A GitHub-flavoured Markdown table; numbers right-aligned, NaN as an em dash."""
    if df.columns.nlevels > 1:
        df = df.copy()
        df.columns = [" ".join(str(p) for p in c if str(p)) for c in df.columns]
    cols = [str(c) for c in df.columns]
    numeric = [pd.api.types.is_numeric_dtype(df[c]) for c in df.columns]
    lines = [
        "| " + " | ".join(c.replace("|", "\\|") for c in cols) + " |",
        "|" + "|".join("---:" if num else "---" for num in numeric) + "|",
    ]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_md_cell(v, digits) for v in row) + " |")
    return "\n".join(lines) + "\n"


def to_html_table(df: pd.DataFrame, *, digits: int = 3, pre_columns: tuple[str, ...] = ()) -> str:
    """An HTML table; ``pre_columns`` are shown preformatted (multi-line settings)."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = []
    for row in df.itertuples(index=False):
        cells = []
        for col, v in zip(df.columns, row):
            text = html.escape(fmt_num(v, digits))
            if col in pre_columns:
                cells.append(f"<td><pre>{text}</pre></td>")
            else:
                cls = (
                    ' class="num"'
                    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
                    else ""
                )
                cells.append(f"<td{cls}>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )
