"""The report builds (also from stores with missing parts) and writes every file."""

from __future__ import annotations

import re

import duckdb
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from entprobe.report import build_report, model_colors, write_report

FIGURES = [
    "fig4_length_entropy",
    "fig4_length_layers",
    "fig5_text_prompt_types",
    "fig5_image_prompt_types",
    "s53_cross_modal",
    "s6_response",
]
TABLES = [
    "table1_embedding_entropy",
    "table5_response_proxy",
    "s53_asymmetry",
    "provenance_runs",
    "provenance_sample_counts",
    "provenance_failed_samples",
    "fig4_length_bins",
]


def test_full_report_writes_every_file(report_dir):
    out = report_dir.parent
    assert report_dir.name == "report.html"
    for name in FIGURES:
        png = out / "figures" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (out / "figures" / f"{name}.svg").read_text().lstrip().startswith("<?xml")
    for name in TABLES:
        assert pd.read_csv(out / "tables" / f"{name}.csv").shape[0] > 0
        assert (out / "tables" / f"{name}.md").read_text().startswith("| ")


def test_html_is_self_contained(report_dir):
    page = report_dir.read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') == len(FIGURES)
    # nothing fetched from elsewhere: no external src/href, no scripts, no stylesheets
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<script" not in page and "<link" not in page
    for title in ("Table 1", "Fig. 4", "Fig. 5", "§5.3", "§6 and Table 5", "Provenance"):
        assert title in page
    assert "ValueError: prompt bad-0 has 1 token; need 2" in page  # failed samples with reasons
    assert "estimator.alpha=1.01" in page


def test_report_table_numbers_equal_sql(report_dir, full_store):
    out = report_dir.parent
    t1 = pd.read_csv(out / "tables" / "table1_embedding_entropy.csv")
    t5 = pd.read_csv(out / "tables" / "table5_response_proxy.csv")
    with duckdb.connect(str(full_store), read_only=True) as con:
        want1 = con.execute("""
            SELECT model, modality,
                   CASE category WHEN 'Single-instance' THEN 'Single' WHEN 'Cross-instance' THEN 'Cross'
                   ELSE category END AS category, count(*) AS n, avg(value) AS mean
            FROM layer_metrics WHERE level = 'prompt' AND metric = 'entropy' AND layer = 0
            GROUP BY ALL ORDER BY ALL""").df()
        want5 = con.execute("""
            SELECT model, level, count(*) AS n, avg(v) AS mean FROM (
                SELECT model, level, sample_id, avg(value) AS v FROM layer_metrics
                WHERE metric = 'conditional_entropy' GROUP BY ALL) GROUP BY ALL ORDER BY ALL""").df()
    got1 = t1.sort_values(["model", "modality", "category"]).reset_index(drop=True)
    assert (
        got1[["model", "modality", "category", "n"]].values.tolist()
        == want1[["model", "modality", "category", "n"]].values.tolist()
    )
    np.testing.assert_allclose(got1["mean"], want1["mean"], rtol=1e-12)
    got5 = t5.sort_values(["model", "level"]).reset_index(drop=True)
    assert got5["n"].tolist() == want5["n"].tolist()
    np.testing.assert_allclose(got5["mean"], want5["mean"], rtol=1e-12)


def test_partial_store_report_says_what_is_missing(partial_store, tmp_path):
    path = write_report(partial_store, tmp_path / "r", n_boot=50)
    page = path.read_text(encoding="utf-8")
    for msg in (
        "solo has no image prompts",
        "solo has no text prompts of type Abductive, Inductive",
        "asymmetry not computed for solo: no image prompts",
        "no text-gen or image-gen conditional-entropy rows",
        "Failed samples (left out of every table): solo: 3",
    ):
        assert msg in page, msg
    # what exists is still drawn
    assert (tmp_path / "r" / "figures" / "fig5_text_prompt_types.png").exists()
    assert not (tmp_path / "r" / "figures" / "fig5_image_prompt_types.png").exists()
    assert not (tmp_path / "r" / "figures" / "s6_response.png").exists()


def test_empty_store_still_reports(tmp_path):
    from entprobe.store import ResultStore

    store = tmp_path / "empty.duckdb"
    with ResultStore(store) as s, s.session():
        pass  # a store with its tables and no results (the file appears on the first write)
    page = write_report([store], tmp_path / "r", n_boot=10).read_text(encoding="utf-8")
    assert "The stores hold no results at all." in page
    assert "the stores hold no runs." in page


def test_many_models_switch_to_small_multiples(synth, tmp_path):
    from entprobe import analysis as A
    from entprobe.report import MAX_OVERLAY, plot_length_layers

    few = synth.synthetic_results(
        {f"m{i}": 4 for i in range(MAX_OVERLAY)}, per_category=1, modalities=("text",)
    )
    many = synth.synthetic_results(
        {f"m{i}": 4 for i in range(MAX_OVERLAY + 2)}, per_category=1, modalities=("text",)
    )
    for res, n_axes in ((few, 3), (many, MAX_OVERLAY + 2)):
        lm, samples, runs = res.frames()
        traj = A.layer_trajectories(lm, by=("length_bucket",), modality="text")
        fig = plot_length_layers(traj, model_colors(lm["model"].unique()))
        assert len([ax for ax in fig.axes if ax.get_visible()]) == n_axes
    # and a whole report straight from DataFrames
    lm, samples, runs = synth.synthetic_results({"m0": 3}, per_category=1, modalities=("text",)).frames()
    page = build_report(lm, samples, runs, tmp_path / "r", n_boot=20).read_text(encoding="utf-8")
    # no image prompts: Fig. 4 (two), Fig. 5 text, §5.3 (text only), §6
    assert page.count("data:image/png") == 5


def test_model_colours_stable_and_distinct():
    a = model_colors(["m2", "m1", "m3"])
    b = model_colors(["m3", "m1", "m2"])
    assert a == b and len(set(a.values())) == 3
    many = model_colors([f"m{i:02d}" for i in range(24)])
    assert len(set(many.values())) == 24


def test_cli_report_options_and_errors(report_dir, tmp_path):
    from entprobe.cli import main

    asym = pd.read_csv(
        report_dir.parent / "tables" / "s53_asymmetry.csv"
    )  # written with --early-fraction 0.5
    assert (asym["early_fraction"] == 0.5).all()
    res = CliRunner().invoke(main, ["report", "--store", str(tmp_path / "missing.duckdb"), "--out", "x"])
    assert res.exit_code != 0 and "does not exist" in res.output


def test_certified_intervals_are_shown_with_their_widths(synth, tmp_path):
    """Rows from a --spectrum topk:K run carry lower/upper: the report gets a width table
    (numbers equal to upper - lower per group) and a warning; exact rows add nothing."""
    from entprobe import analysis as A

    lm, samples, runs = synth.synthetic_results({"m0": 3}, per_category=1, modalities=("text",)).frames()
    plain = build_report(lm, samples, runs, tmp_path / "exact", n_boot=10).read_text(encoding="utf-8")
    assert "Certified intervals" not in plain
    rng = np.random.default_rng(0)
    width = rng.uniform(0.1, 0.5, len(lm))
    lm = lm.assign(lower=lm["value"] - width / 2, upper=lm["value"] + width / 2)
    table = A.interval_width_table(lm)
    groups = lm.assign(w=width).groupby(["model", "level", "modality", "metric"])["w"]
    assert table["max_width"].tolist() == pytest.approx(
        groups.max().loc[list(map(tuple, table[["model", "level", "modality", "metric"]].values))].tolist()
    )
    assert table["n_rows"].sum() == len(lm)
    page = build_report(lm, samples, runs, tmp_path / "topk", n_boot=10).read_text(encoding="utf-8")
    assert "Certified intervals" in page and "certified approximations" in page
    assert (tmp_path / "topk" / "tables" / "provenance_interval_width.csv").exists()
