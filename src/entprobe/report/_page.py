"""The report's HTML page: its sections, the notes on what is missing, and the page around them.

:mod:`._build` fills one :class:`Section` per part of the report (figures and tables
as HTML blocks) and :func:`render_page` puts them into one self-contained page: inline
CSS, no scripts, nothing fetched from elsewhere.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

__all__ = ["Section", "note", "render_page"]


@dataclass
class Section:
    """One part of the report: ``id`` (its anchor), ``title``, ``intro`` text, HTML
    ``blocks`` (figures, tables) and the ``missing`` notes listed on top of the page."""

    id: str
    title: str
    intro: str = ""
    blocks: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def note(text: str) -> str:
    """A highlighted note (HTML) that something is missing or needs care."""
    return f'<p class="missing">⚠ {html.escape(text)}</p>'


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0 auto;
max-width:1200px;padding:1.5em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
figure{margin:1em 0} figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption,.caption,.files{color:#555;font-size:.9em}
.table-wrap{overflow-x:auto;margin-bottom:1em}
table{border-collapse:collapse;font-size:.85em} th,td{border:1px solid #ddd;padding:3px 6px;vertical-align:top}
th{background:#f4f4f4;text-align:left} td.num{text-align:right;font-variant-numeric:tabular-nums}
td pre{margin:0;font-size:.95em;white-space:pre-wrap}
.missing{background:#fff6e0;border-left:4px solid #e0a000;padding:.3em .6em;margin:.3em 0}
.swatch{display:inline-block;width:1em;height:1em;margin:0 .3em 0 .8em;vertical-align:-.15em;border-radius:2px}
nav a{margin-right:1em} code{font-size:.9em}
"""


def render_page(title: str, sections: list[Section], colors: dict, generated: str, files: list[str]) -> str:
    """The whole ``report.html``: title, model colour legend (``colors``: model ->
    colour), a summary of every section's missing notes, then the sections.

    ``generated`` is the time shown; ``files`` the figure and table files written.
    """
    swatches = (
        "".join(
            f'<span class="swatch" style="background:{_hex(c)}"></span>{html.escape(m)}'
            for m, c in colors.items()
        )
        or "(no models)"
    )
    missing = [(s, m) for s in sections for m in s.missing]
    summary = (
        "<p>Nothing missing: every section has data for every model.</p>"
        if not missing
        else "".join(
            f'<p class="missing">⚠ <a href="#{s.id}">{html.escape(s.title.split(" — ")[0])}</a>: '
            f"{html.escape(m)}</p>"
            for s, m in missing
        )
    )
    nav = "".join(f'<a href="#{s.id}">{html.escape(s.title.split(" — ")[0])}</a>' for s in sections)
    body = []
    for s in sections:
        notes = "".join(note(m) for m in s.missing)
        body.append(
            f'<section id="{s.id}"><h2>{html.escape(s.title)}</h2><p>{html.escape(s.intro)}</p>'
            f"{notes}{''.join(s.blocks)}</section>"
        )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p class="caption">Generated {html.escape(generated)} by entprobe. All entropies in bits. Figures are embedded;
PNG/SVG copies are in <code>figures/</code>, every table as CSV and Markdown in <code>tables/</code>
({len(files)} files).</p>
<p>Models (one colour each, kept in every figure):{swatches}</p>
<nav>{nav}</nav>
<h2>What is missing</h2>{summary}
{"".join(body)}
</body></html>
"""


def _hex(color: object) -> str:
    import matplotlib.colors as mcolors

    return mcolors.to_hex(color)
