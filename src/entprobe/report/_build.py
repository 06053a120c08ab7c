"""Assemble the report: compute the tables, draw the figures, write every file.

Each figure comes from its recipe in :mod:`._recipes` (data selection and drawing, shared
with the notebook API's ``plot_*``); the sections add captions, tables and notes on
what is missing.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import pandas as pd
from matplotlib import rc_context
from matplotlib.figure import Figure

from entprobe import analysis as A
from entprobe.analysis._common import (
    DEFAULT_EARLY_FRACTION,
    DEFAULT_N_BOOT,
    check_fraction,
    check_n_boot,
    normalize_category,
)
from entprobe.report import _figures as F
from entprobe.report import _recipes as R
from entprobe.report._format import fmt_mean_ci, to_html_table, to_markdown
from entprobe.report._page import Section, note, render_page

__all__ = ["write_report", "build_report", "REPORT_FILE"]

#: Name of the HTML file inside ``out_dir``.
REPORT_FILE = "report.html"

_LM_COLUMNS = [
    "run_id",
    "model",
    "adapter",
    "dataset",
    "sample_id",
    "modality",
    "category",
    "subcategory",
    "length_bucket",
    "level",
    "layer",
    "n_layers",
    "metric",
    "value",
    "n_prompt_tokens",
    "n_response_tokens",
]
_SAMPLE_COLUMNS = [
    "run_id",
    "dataset",
    "sample_id",
    "level",
    "modality",
    "category",
    "subcategory",
    "length_bucket",
    "n_chars",
    "status",
    "error",
]
_RUN_COLUMNS = ["run_id", "model", "adapter", "config", "entprobe_version", "started_at", "finished_at"]


class _Writer:
    """Saves figures (PNG + SVG) and tables (CSV + Markdown), returns HTML blocks."""

    def __init__(self, out_dir: Path) -> None:
        self.out = out_dir
        (out_dir / "figures").mkdir(parents=True, exist_ok=True)
        (out_dir / "tables").mkdir(parents=True, exist_ok=True)
        self.files: list[str] = []

    def figure(self, fig: Figure, name: str, caption: str) -> str:
        png = io.BytesIO()
        with rc_context(F.SAVE_RC):
            fig.savefig(png, format="png", dpi=110, bbox_inches="tight")
            fig.savefig(self.out / "figures" / f"{name}.svg", format="svg", bbox_inches="tight")
        (self.out / "figures" / f"{name}.png").write_bytes(png.getvalue())
        self.files += [f"figures/{name}.png", f"figures/{name}.svg"]
        data = base64.b64encode(png.getvalue()).decode("ascii")
        return (
            f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)} Files: <code>figures/{name}.png</code>, "
            f"<code>figures/{name}.svg</code>.</figcaption></figure>"
        )

    def table(
        self,
        data: pd.DataFrame,
        name: str,
        *,
        display: pd.DataFrame | None = None,
        caption: str = "",
        show: bool = True,
        digits: int = 3,
        pre_columns: tuple[str, ...] = (),
        max_rows: int | None = None,
    ) -> str:
        """Write ``data`` as CSV and ``display`` (default ``data``) as Markdown."""
        display = data if display is None else display
        data.to_csv(self.out / "tables" / f"{name}.csv", index=False)
        (self.out / "tables" / f"{name}.md").write_text(
            to_markdown(display, digits=max(digits, 4)), encoding="utf-8"
        )
        self.files += [f"tables/{name}.csv", f"tables/{name}.md"]
        files = f"Files: <code>tables/{name}.csv</code>, <code>tables/{name}.md</code>."
        if not show:
            return f'<p class="files">{html.escape(caption)} {files}</p>'
        shown = display
        more = ""
        if max_rows is not None and len(display) > max_rows:
            shown = display.head(max_rows)
            more = f" Showing the first {max_rows} of {len(display)} rows."
        return f'<p class="caption">{html.escape(caption)}{more} {files}</p>' + to_html_table(
            shown, digits=digits, pre_columns=pre_columns
        )


def _conform(df: pd.DataFrame | None, columns: Sequence[str]) -> pd.DataFrame:
    df = pd.DataFrame(columns=list(columns)) if df is None else df.copy()
    for c in columns:
        if c not in df.columns:
            df[c] = None
    return df


def _models_lacking(lm: pd.DataFrame, models: Sequence[str], mask: pd.Series) -> list[str]:
    have = set(lm.loc[mask, "model"])
    return [m for m in models if m not in have]


# ---------------------------------------------------------------- sections


def _section_table1(lm, models, w, *, n_boot, seed) -> Section:
    sec = Section(
        "table1",
        "Table 1 — embedding entropy (layer 0) per prompt type",
        "Mean matrix-based Rényi entropy (bits) of each prompt's token states entering the first "
        f"decoder layer, with a 95% percentile bootstrap interval (B = {n_boot}, seed {seed}, "
        "resampling prompts) and the number of prompts n.",
    )
    t1 = A.embedding_entropy_table(lm, n_boot=n_boot, seed=seed)
    if t1.empty:
        sec.missing.append("no prompt-level entropy rows at layer 0 in the stores.")
        return sec
    cells = t1.assign(
        cell=[fmt_mean_ci(r.mean, r.ci_low, r.ci_high, r.n) for r in t1.itertuples(index=False)]
    )
    cols = []
    for mod, cats in (("text", A.TEXT_CATEGORIES), ("image", A.IMAGE_CATEGORIES)):
        present = list(cells.loc[cells["modality"] == mod, "category"].unique())
        cols += [(mod, c) for c in cats] + [(mod, c) for c in present if c not in cats]
    for mod in sorted(set(cells["modality"]) - {"text", "image"}):
        cols += [(mod, c) for c in cells.loc[cells["modality"] == mod, "category"].unique()]
    wide = pd.DataFrame({"model": models})
    for mod, cat in cols:
        sel = cells.loc[(cells["modality"] == mod) & (cells["category"] == cat)].set_index("model")["cell"]
        wide[f"{cat} ({mod})"] = wide["model"].map(sel).astype(object).fillna("—")
    sec.blocks.append(
        w.table(
            t1,
            "table1_embedding_entropy",
            display=wide,
            caption="Cells: mean [95% CI] n. '—' = no prompts of that type.",
            digits=4,
        )
    )
    for m in models:
        have = t1.loc[t1["model"] == m]
        for mod, cats in (("text", A.TEXT_CATEGORIES), ("image", A.IMAGE_CATEGORIES)):
            got = set(have.loc[have["modality"] == mod, "category"])
            if not got:
                sec.missing.append(f"{m} has no {mod} prompts.")
            elif set(cats) - got:
                lack = [c for c in cats if c not in got]
                sec.missing.append(f"{m} has no {mod} prompts of type {', '.join(lack)}.")
    other = sorted({c for c in t1["category"] if c not in A.TEXT_CATEGORIES + A.IMAGE_CATEGORIES})
    if other:
        sec.blocks.append(
            note(
                "Categories outside the paper's ten types are listed as extra columns: "
                + ", ".join(other)
                + "."
            )
        )
    return sec


def _section_fig4(lm, samples, runs, models, w) -> Section:
    sec = Section(
        "fig4",
        "Fig. 4 — text prompt length",
        "Left: embedding entropy (layer 0) of each text prompt against its length; lines join "
        "the mean entropy in length bins shared by all models (quantiles of all prompt "
        "lengths). Right: mean entropy per layer for short, middle and long text prompts "
        "(the store's length_bucket); shaded bands are ±1.96 standard errors.",
    )
    left = R.length_entropy_recipe(lm, samples, runs=runs)
    points, trend = left.extra["points"], left.data
    if points.empty:
        sec.missing.append("no text prompts with prompt-level entropy, so no length figures.")
        return sec
    sec.blocks.append(
        w.figure(
            left.figure,
            "fig4_length_entropy",
            "Fig. 4 (left): embedding entropy vs prompt length.",
        )
    )
    sec.blocks.append(w.table(trend, "fig4_length_bins", show=False, caption="Binned means drawn as lines:"))
    no_text = [m for m in models if m not in set(points["model"])]
    if no_text:
        sec.missing.append(f"no text prompts for {', '.join(no_text)}.")
    right = R.length_layers_recipe(lm, runs=runs)
    traj = right.data
    if right.empty:
        sec.missing.append("no text prompt has a length_bucket, so no layer-wise entropy by prompt length.")
        return sec
    sec.blocks.append(
        w.figure(
            right.figure,
            "fig4_length_layers",
            "Fig. 4 (right): layer-wise entropy by prompt length.",
        )
    )
    sec.blocks.append(w.table(traj, "fig4_length_trajectories", show=False, caption="Data:"))
    for m in sorted(set(traj["model"])):  # the models with bucketed text prompts
        got = set(traj.loc[traj["model"] == m, "length_bucket"])
        lack = [b for b in A.LENGTH_BUCKETS if b not in got]
        if lack:
            sec.missing.append(f"{m} has no {', '.join(lack)} text prompts.")
    return sec


def _section_fig5(lm, runs, models, w) -> Section:
    sec = Section(
        "fig5",
        "Fig. 5 — layer-wise entropy per prompt type",
        "Mean prompt entropy per layer for each prompt type, one panel per model; text prompts "
        "first, then image prompts. Within a panel, prompt types differ by line style and "
        "shade of the model's colour. Each panel has its own y range.",
    )
    recipes = R.prompt_types_recipes(lm, runs=runs, modalities=("text", "image"))
    traj = recipes["text"].data  # shared by both: every modality's trajectories
    if traj.empty:
        sec.missing.append("no prompt-level entropy rows in the stores.")
        return sec
    for mod in ("text", "image"):
        if (traj["modality"] == mod).any():
            sec.blocks.append(
                w.figure(
                    recipes[mod].figure,
                    f"fig5_{mod}_prompt_types",
                    f"Fig. 5: layer-wise entropy per {mod} prompt type.",
                )
            )
    sec.blocks.append(w.table(traj, "fig5_trajectories", show=False, caption="Data:"))
    for mod in ("text", "image"):
        lack = [m for m in models if m not in set(traj.loc[traj["modality"] == mod, "model"])]
        if lack:
            sec.missing.append(f"no {mod} prompts for {', '.join(lack)}.")
    return sec


def _section_cross_modal(lm, runs, models, w, *, early_fraction) -> Section:
    sec = Section(
        "cross-modal",
        "§5.3 — text vs image prompts within each model",
        "Mean prompt entropy per layer of text and image prompts, x = layer / number of layers so "
        "that models of different depth compare. Cross-modal asymmetry = mean over the early "
        f"layers (layer ≤ {early_fraction:g} × number of layers, layer 0 included; shaded) of the "
        "per-layer difference (mean text entropy − mean image entropy), in bits.",
    )
    recipe = R.cross_modal_recipe(lm, runs=runs, early_fraction=early_fraction)
    traj, asym = recipe.data, recipe.extra["asymmetry"]
    if traj.empty:
        sec.missing.append("no prompt-level entropy rows in the stores.")
        return sec
    sec.blocks.append(
        w.figure(
            recipe.figure,
            "s53_cross_modal",
            "§5.3: text vs image prompt entropy per model.",
        )
    )
    sec.blocks.append(w.table(traj, "s53_trajectories", show=False, caption="Data:"))
    if not asym.empty:
        sec.blocks.append(
            w.table(
                asym,
                "s53_asymmetry",
                caption="Cross-modal asymmetry per model (bits; n_text / n_image = prompts).",
            )
        )
    lack = [m for m in models if m not in set(asym["model"])]
    if lack:
        mods = traj.groupby("model")["modality"].agg(lambda s: set(s))
        for m in lack:
            have = mods.get(m, set())
            why = (
                "no prompt-level rows" if not have else f"no {'image' if 'text' in have else 'text'} prompts"
            )
            sec.missing.append(f"asymmetry not computed for {m}: {why}.")
    return sec


def _section_response(lm, runs, models, w, *, n_boot, seed) -> Section:
    sec = Section(
        "response",
        "§6 and Table 5 — response pattern: text vs image generation",
        "Conditional entropy proxy H(prompt ⊕ response) − H(prompt) per layer (bits), for text "
        "generation and image generation. Table 5: per sample, the proxy averaged over all layers "
        f"(0 … number of layers); mean over samples with a 95% bootstrap interval (B = {n_boot}).",
    )
    recipe = R.response_recipe(lm, runs=runs)
    traj = recipe.data
    if traj.empty:
        sec.missing.append("no text-gen or image-gen conditional-entropy rows in the stores.")
        return sec
    sec.blocks.append(
        w.figure(
            recipe.figure,
            "s6_response",
            "§6: conditional entropy of text vs image generation per model.",
        )
    )
    sec.blocks.append(w.table(traj, "s6_trajectories", show=False, caption="Data:"))
    t5 = A.response_proxy_table(lm, n_boot=n_boot, seed=seed)
    wide = pd.DataFrame({"model": models})
    for lv, label in (("image-gen", "Image Gen"), ("text-gen", "Text Gen")):
        sel = t5.loc[t5["level"] == lv].set_index("model")
        wide[label] = [
            fmt_mean_ci(*sel.loc[m, ["mean", "ci_low", "ci_high", "n"]]) if m in sel.index else "—"
            for m in models
        ]
    sec.blocks.append(
        w.table(
            t5,
            "table5_response_proxy",
            display=wide,
            caption="Table 5: mean conditional entropy proxy (bits), mean [95% CI] n.",
            digits=4,
        )
    )
    for lv in ("text-gen", "image-gen"):
        lack = [m for m in models if m not in set(t5.loc[t5["level"] == lv, "model"])]
        if lack:
            sec.missing.append(f"no {lv} samples for {', '.join(lack)}.")
    return sec


def _section_provenance(lm, samples, runs, w, *, sources, n_boot, seed, early_fraction) -> Section:
    sec = Section(
        "provenance",
        "Provenance",
        "Where the numbers come from: the stores read, each run's model, adapter, estimator and "
        "generation settings (the run's configuration), sample counts, and every failed sample "
        "with its recorded reason.",
    )
    items = (
        "".join(f"<li><code>{html.escape(str(s))}</code></li>" for s in sources) or "<li>(DataFrames)</li>"
    )
    sec.blocks.append(f"<p>Stores:</p><ul>{items}</ul>")
    sec.blocks.append(
        f"<p>Report settings: bootstrap B = {n_boot}, seed = {seed}, percentile 95% intervals; "
        f"early-layer fraction = {early_fraction:g}.</p>"
    )
    if runs.empty:
        sec.missing.append("the stores hold no runs.")
    else:
        summ = A.run_summary(runs, samples)
        sec.blocks.append(w.table(summ, "provenance_runs", caption="Runs:", pre_columns=("settings",)))
        multi = summ.groupby("model")["run_id"].nunique()
        for m, k in multi.items():
            if k > 1:
                sec.blocks.append(
                    note(
                        f"{m} has {k} runs; their rows are pooled in every table "
                        "(check that their settings agree)."
                    )
                )
    if not samples.empty:
        sec.blocks.append(
            w.table(
                A.sample_counts(samples, runs),
                "provenance_sample_counts",
                caption="Samples per model, level, modality and dataset:",
            )
        )
        failed = A.failed_samples(samples, runs)
        if failed.empty:
            sec.blocks.append("<p>No failed samples.</p>")
        else:
            sec.blocks.append(
                w.table(
                    failed,
                    "provenance_failed_samples",
                    caption=f"{len(failed)} failed sample(s), with reasons:",
                    max_rows=200,
                )
            )
            per = failed.groupby("model").size()
            sec.missing.append(
                "Failed samples (left out of every table): "
                + ", ".join(f"{m}: {k}" for m, k in per.items())
                + "."
            )
    else:
        sec.missing.append("the stores hold no samples rows.")
    if not lm.empty:
        sec.blocks.append(
            w.table(
                A.coverage_table(lm),
                "provenance_coverage",
                caption="Measured samples and model depth per model, level, modality, metric:",
            )
        )
        widths = A.interval_width_table(lm)
        if not widths.empty:
            sec.blocks.append(
                w.table(
                    widths,
                    "provenance_interval_width",
                    digits=4,
                    caption="Certified intervals (runs with --spectrum topk:K): every value in this report from "
                    "such a run is the midpoint of a guaranteed [lower, upper] interval per layer; "
                    "width = upper - lower in the run's base, per model, level, modality and metric "
                    "(the exact value lies within half the width of the value shown):",
                )
            )
            sec.missing.append(
                "Some values are certified approximations (--spectrum topk:K), not exact: "
                f"widest interval {widths['max_width'].max():.4g} (see Provenance)."
            )
    return sec


# ---------------------------------------------------------------- entry points


def build_report(
    layer_metrics: pd.DataFrame | None,
    samples: pd.DataFrame | None,
    runs: pd.DataFrame | None,
    out_dir: str | PathLike[str],
    *,
    sources: Sequence[str] = (),
    early_fraction: float = DEFAULT_EARLY_FRACTION,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    title: str = "entprobe report",
) -> Path:
    """Write the report from DataFrames already read (see :func:`write_report`).

    Returns:
        Path of ``report.html`` inside ``out_dir``.
    """
    early_fraction = check_fraction(early_fraction, name="early_fraction")
    n_boot = check_n_boot(n_boot)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lm = _conform(layer_metrics, _LM_COLUMNS)
    samples = _conform(samples, _SAMPLE_COLUMNS)
    runs = _conform(runs, _RUN_COLUMNS)
    if not lm.empty:
        lm["category"] = lm["category"].map(normalize_category)
        lm["layer"] = lm["layer"].astype(int)
        lm["n_layers"] = lm["n_layers"].astype(int)
        lm["value"] = lm["value"].astype(float)
    # the figures' models and colours (the recipes assign them the same way from lm and runs)
    models = R.figure_models(lm, runs)
    colors = R.figure_colors(lm, runs)
    w = _Writer(out)
    sections = [
        _section_table1(lm, models, w, n_boot=n_boot, seed=seed),
        _section_fig4(lm, samples, runs, models, w),
        _section_fig5(lm, runs, models, w),
        _section_cross_modal(lm, runs, models, w, early_fraction=early_fraction),
        _section_response(lm, runs, models, w, n_boot=n_boot, seed=seed),
        _section_provenance(
            lm, samples, runs, w, sources=sources, n_boot=n_boot, seed=seed, early_fraction=early_fraction
        ),
    ]
    if not models:
        sections[0].missing.insert(0, "The stores hold no results at all.")
    generated = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    page = render_page(title, sections, colors, generated, w.files)
    path = out / REPORT_FILE
    path.write_text(page, encoding="utf-8")
    return path


def write_report(
    stores: str | PathLike[str] | Sequence[str | PathLike[str]],
    out_dir: str | PathLike[str],
    *,
    early_fraction: float = DEFAULT_EARLY_FRACTION,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    title: str = "entprobe report",
) -> Path:
    """Write the HTML report, figures and tables for one or more results stores.

    ``out_dir`` receives ``report.html`` (self-contained: figures embedded, opens
    offline), ``figures/*.png|svg`` and ``tables/*.csv|md``. A store with one model,
    one modality, missing levels or failed samples still gives a report; each
    section says what is missing.

    Args:
        stores: a results store path, or several (their tables are pooled; models
            are told apart by the ``model`` column).
        out_dir: output folder, created if needed.
        early_fraction: share of depth for the cross-modal asymmetry (§5.3).
        n_boot: bootstrap resamples for the confidence intervals.
        seed: bootstrap seed.

    Returns:
        Path of the written ``report.html``.

    Raises:
        StoreError: a store is missing or unreadable.
        OutputPathError: ``out_dir`` cannot be created or written (checked first).

    Example:
        >>> write_report(["run.duckdb"], "report-out")  # doctest: +SKIP
        PosixPath('report-out/report.html')
    """
    from .._outputs import writable_folder

    paths = [stores] if isinstance(stores, (str, PathLike)) else list(stores)
    # Before reading anything: the folder and the two it will hold must take files.
    for folder, what in (
        (Path(out_dir), "report folder (--out)"),
        (Path(out_dir) / "figures", "report's figures folder"),
        (Path(out_dir) / "tables", "report's tables folder"),
    ):
        writable_folder(folder, what)
    lm, samples, runs = A.load(paths)
    return build_report(
        lm,
        samples,
        runs,
        out_dir,
        sources=[str(p) for p in paths],
        early_fraction=early_fraction,
        n_boot=n_boot,
        seed=seed,
        title=title,
    )
