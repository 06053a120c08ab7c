"""Spearman rho and its p-values against SciPy; the correlate table and CSV readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from entprobe import analysis as A
from entprobe.errors import ProbeInputError

EXAMPLES = Path(__file__).parents[2] / "examples"


def _rank_corr(y):
    """Spearman's rho of each row of ``a`` with ``y``, vectorised for permutation_test."""
    ry = stats.rankdata(y) - (len(y) + 1) / 2

    def stat(a, axis=-1):
        ra = stats.rankdata(a, axis=axis)
        ra = ra - ra.mean(axis=axis, keepdims=True)
        return (ra * ry).sum(axis=axis) / np.sqrt((ra * ra).sum(axis=axis) * (ry * ry).sum())

    return stat


def _scipy_exact_p(x, y):
    res = stats.permutation_test(
        (np.asarray(x, float),),
        _rank_corr(y),
        vectorized=True,
        permutation_type="pairings",
        n_resamples=np.inf,
    )
    assert res.statistic == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    return res.pvalue


@pytest.mark.parametrize(
    "x, y",
    [
        ([6.32, 6.42, 7.58, 7.45, 7.08, 5.19, 6.07], [38.2, 39.2, 42.2, 44.5, 20.5, 26.7, 32.4]),
        ([1, 2, 3, 4, 5, 6], [2, 1, 4, 3, 6, 5]),
        ([1.0, 2.0, 2.0, 3.0, 4.0, 5.0, 6.0], [3.0, 1.0, 2.0, 2.0, 5.0, 4.0, 4.0]),  # ties on both sides
        ([3, 1, 2, 5, 4], [1, 2, 3, 4, 5]),
    ],
)
def test_rho_and_p_equal_scipy(x, y):
    r = A.spearman(x, y, n_boot=500)
    ref = stats.spearmanr(x, y)
    assert r.rho == pytest.approx(ref.statistic, abs=1e-12)
    assert r.p_asymptotic == pytest.approx(ref.pvalue, abs=1e-12)
    assert r.p_method == "exact"
    assert r.p_value == pytest.approx(_scipy_exact_p(x, y), abs=1e-12)
    assert r.n == len(x)
    assert r.ci_low <= r.rho <= r.ci_high


def test_permutation_p_for_larger_n_is_close_to_scipy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=14)
    y = x + rng.normal(scale=2.0, size=14)
    r = A.spearman(x, y, n_perm=50_000, n_boot=200)
    assert r.p_method == "permutation"
    ref = stats.permutation_test(
        (x,),
        _rank_corr(y),
        vectorized=True,
        permutation_type="pairings",
        n_resamples=50_000,
        rng=np.random.default_rng(1),
    )
    assert r.p_value == pytest.approx(ref.pvalue, abs=0.015)
    assert r.rho == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    assert A.spearman(x, y, n_perm=50_000, n_boot=200) == r  # seeded


def test_spearman_errors():
    with pytest.raises(ProbeInputError, match="at least 3 pairs; got 2"):
        A.spearman([1, 2], [2, 1])
    with pytest.raises(ProbeInputError, match="same length; got 3 and 4"):
        A.spearman([1, 2, 3], [1, 2, 3, 4])
    with pytest.raises(ProbeInputError, match="constant"):
        A.spearman([1, 1, 1, 1], [1, 2, 3, 4])
    with pytest.raises(ProbeInputError, match="NaN"):
        A.spearman([1, np.nan, 3], [1, 2, 3])


def test_correlate_groups_equal_scipy_on_subsets():
    probes = A.read_probes(EXAMPLES / "table5_probes.csv")
    scores = A.read_scores(EXAMPLES / "table5_scores.csv")
    table = A.correlate(probes, scores, group_by="family", n_boot=200)
    aio = table.loc[table["group"] == "All-in-One"]
    assert set(aio["n"]) == {7}
    assert "BAGEL" not in aio["models"].iloc[0] and "OmniGen2" not in aio["models"].iloc[0]
    merged = scores.merge(probes, on="model")
    for row in table.loc[table["n"] >= 3].itertuples():
        sub = merged.loc[merged["benchmark"] == row.benchmark]
        if row.group != "all":
            sub = sub.loc[sub["family"] == row.group]
        ref = stats.spearmanr(sub[row.probe], sub["score"])
        assert row.n == len(sub)
        assert row.rho == pytest.approx(ref.statistic, abs=1e-12)
        assert row.p_asymptotic == pytest.approx(ref.pvalue, abs=1e-12)
    small = table.loc[table["group"] == "MoT"]
    assert small["rho"].isna().all() and small["note"].str.contains("at least 3 pairs").all()


def test_worked_example_numbers_in_docs():
    """The numbers quoted in docs/correlate-table6.md."""
    probes = A.read_probes(EXAMPLES / "table5_probes.csv")
    scores = A.read_scores(EXAMPLES / "table5_scores.csv")
    t = A.correlate(probes, scores, group_by="family", n_boot=100).set_index(["group", "probe", "benchmark"])
    assert round(t.loc[("All-in-One", "image_gen_ce", "RealUnify (Image Gen)"), "rho"], 3) == 0.714
    assert round(t.loc[("All-in-One", "image_gen_ce", "T2I-CoReBench"), "rho"], 3) == 0.536
    assert round(t.loc[("all", "image_gen_ce", "T2I-CoReBench"), "rho"], 3) == 0.188
    assert round(t.loc[("all", "text_gen_ce", "T2I-CoReBench"), "rho"], 3) == -0.139


def test_read_probes_long_and_wide(tmp_path):
    long = tmp_path / "long.csv"
    long.write_text(
        "model,probe,value\na,image_gen_ce,1\na,text_gen_ce,2\nb,image_gen_ce,3\nb,text_gen_ce,4\n"
    )
    wide = A.read_probes(long)
    assert wide.set_index("model").loc["b", "text_gen_ce"] == 4
    dup = tmp_path / "dup.csv"
    dup.write_text("model,image_gen_ce\na,1\na,2\n")
    with pytest.raises(ProbeInputError, match="listed twice"):
        A.read_probes(dup)


def test_read_scores_errors(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("model,benchmark,score\na,B,1\na,B,2\n")
    with pytest.raises(ProbeInputError, match="repeats"):
        A.read_scores(p)
    p.write_text("model,benchmark,score\na,B,high\n")
    with pytest.raises(ProbeInputError, match="non-numeric score"):
        A.read_scores(p)
    p.write_text("model,score\na,1\n")
    with pytest.raises(ProbeInputError, match=r"lacks column\(s\) \['benchmark'\]"):
        A.read_scores(p)


def test_group_by_unknown_column():
    probes = pd.DataFrame({"model": list("abc"), "image_gen_ce": [1.0, 2.0, 3.0]})
    scores = pd.DataFrame({"model": list("abc"), "benchmark": "B", "score": [3.0, 1.0, 2.0]})
    with pytest.raises(ProbeInputError, match="group_by column 'family' is in neither"):
        A.correlate(probes, scores, group_by="family")


def test_cli_correlate_published_values(tmp_path):
    from click.testing import CliRunner

    from entprobe.cli import main

    res = CliRunner().invoke(
        main,
        [
            "correlate",
            "--scores",
            str(EXAMPLES / "table5_scores.csv"),
            "--probes",
            str(EXAMPLES / "table5_probes.csv"),
            "--group-by",
            "family",
            "--n-boot",
            "200",
            "--out",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "| All-in-One | Image Conditional Entropy | RealUnify (Image Gen) | 7 | +0.714 |" in res.output
    assert "Not computed (fewer than 3 models pair up): MoT (n=2); Two-stage (n=1)." in res.output
    saved = pd.read_csv(tmp_path / "correlations.csv")
    assert len(saved) == 4 * 2 * 3


def test_cli_correlate_from_stores(two_stores, tmp_path):
    from click.testing import CliRunner

    from entprobe.cli import main

    lm, _, _ = A.load(two_stores)
    probes = A.model_probes(lm)
    scores = tmp_path / "scores.csv"
    scores.write_text("model,benchmark,score\ntiny-a,B,1\ntiny-b,B,3\ntiny-c,B,2\nother,B,5\n")
    args = ["correlate", "--scores", str(scores), "--n-boot", "100", "--out", str(tmp_path / "o")]
    for s in two_stores:
        args += ["--store", str(s)]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "o" / "correlations.csv").set_index("probe")
    for probe in A.PROBE_COLUMNS:
        ref = stats.spearmanr(probes[probe], [1, 3, 2]).statistic
        assert table.loc[probe, "rho"] == pytest.approx(ref, abs=1e-12)
        assert table.loc[probe, "n"] == 3
    assert "no probe values for model(s) in the scores: other" in res.output
    res = CliRunner().invoke(main, ["correlate", "--scores", str(scores)])
    assert res.exit_code != 0 and "give --store" in res.output


def test_docs_output_block_matches_cli():
    """docs/correlate-table6.md quotes the command's output; its deterministic columns
    (everything but the permutation p for n = 10 and the bootstrap interval) must match."""
    from click.testing import CliRunner

    from entprobe.cli import main

    doc = (EXAMPLES.parent / "docs" / "correlate-table6.md").read_text(encoding="utf-8")
    block = doc.split("Output (verbatim", 1)[1].split("```", 2)[1]
    res = CliRunner().invoke(
        main,
        [
            "correlate",
            "--scores",
            str(EXAMPLES / "table5_scores.csv"),
            "--probes",
            str(EXAMPLES / "table5_probes.csv"),
            "--group-by",
            "family",
        ],
    )
    assert res.exit_code == 0, res.output

    def rows(text):
        out = []
        for line in text.splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) == 10 and cells[0] in ("all", "All-in-One"):
                exact = cells[6] == "exact"
                out.append(cells[:5] + [cells[5] if exact else "", cells[6], cells[7]])
        return out

    assert rows(block) == rows(res.output) and len(rows(block)) == 12
