"""`entprobe validate` and `entprobe bench` through click's CliRunner."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from entprobe.cli import main
from entprobe.validation import EXPERIMENTS


@pytest.fixture(scope="module")
def validate_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("validate")
    result = CliRunner().invoke(main, ["validate", "--out", str(out), "--seeds", "2", "--population", "20"])
    return result, out


def test_validate_writes_files(validate_run):
    result, out = validate_run
    assert result.exit_code == 0, result.output
    for name in EXPERIMENTS:
        for suffix in (".csv", ".md", ".png"):
            assert (out / f"{name}{suffix}").stat().st_size > 0, f"{name}{suffix} missing"
    assert (out / "summary.md").exists()
    table1 = (out / "shannon_agreement.md").read_text()
    assert "0.992" in table1 and "Spearman rho" in table1  # the paper's value next to ours


def test_validate_prints_one_verdict_per_claim(validate_run):
    result, out = validate_run
    claims = pd.read_csv(out / "claims.csv")
    assert len(claims) == 13  # docs/validation.md's "8 of 13 claims" counts these
    holds = [ln for ln in result.output.splitlines() if ln.strip().startswith("HOLDS")]
    fails = [ln for ln in result.output.splitlines() if ln.strip().startswith("DOES NOT HOLD")]
    assert len(holds) == (claims.verdict == "HOLDS").sum() and len(holds) + len(fails) == len(claims)
    assert f"{len(holds)} of 13 claims hold here" in result.output


def test_validate_fig3_at_the_defaults_gives_the_readmes_numbers(tmp_path):
    # docs/validation.md: "entropy 0 / 1.63 / 2.54 / 3.30 bits for identical / 5 / 20 / 100 clusters"
    # (10 seeds, the default), both Fig. 3 cluster claims hold.
    result = CliRunner().invoke(
        main, ["validate", "--out", str(tmp_path), "--only", "cluster_entropy", "--no-figures"]
    )
    assert result.exit_code == 0, result.output
    table = (tmp_path / "cluster_entropy.md").read_text()
    for mean in ("0.000 (", "1.628 (", "2.535 (", "3.300 ("):
        assert mean in table, table
    claims = pd.read_csv(tmp_path / "claims.csv")
    assert list(claims.verdict) == ["HOLDS", "HOLDS"]
    assert "2 of 2 claims hold here" in result.output


def test_validate_only_one_experiment(tmp_path):
    result = CliRunner().invoke(
        main,
        ["validate", "--out", str(tmp_path), "--seeds", "2", "--only", "cluster_entropy", "--no-figures"],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "claims.csv",
        "cluster_entropy.csv",
        "cluster_entropy.md",
        "summary.md",
    ]


def test_validate_rejects_one_seed(tmp_path):
    result = CliRunner().invoke(main, ["validate", "--out", str(tmp_path), "--seeds", "1"])
    assert result.exit_code == 2 and "--seeds" in result.output


def test_bench_prints_table_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(
        main, ["bench", "--n", "10", "--d", "32", "--layers", "3", "--repeats", "1", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "naive s" in result.output and "speed-up" in result.output and "max |diff|" in result.output
    rows = json.loads(out.read_text())["rows"]
    assert [r["case"] for r in rows] == ["prompt entropy", "proxy (trace)"]
    assert all(r["agree"] and r["max_abs_diff"] <= 1e-9 for r in rows)


def test_bench_writes_csv(tmp_path):
    out = tmp_path / "bench.csv"
    result = CliRunner().invoke(
        main, ["bench", "--n", "8,12", "--d", "16", "--layers", "2", "--repeats", "1", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(out)) == 4


def test_bench_rejects_bad_lengths_and_suffix(tmp_path):
    assert CliRunner().invoke(main, ["bench", "--n", "10,x"]).exit_code == 2
    result = CliRunner().invoke(main, ["bench", "--n", "10", "--out", str(tmp_path / "b.txt")])
    assert result.exit_code == 2 and ".json or .csv" in result.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown when CUDA is missing")
def test_bench_cuda_without_cuda_fails_clearly():
    result = CliRunner().invoke(main, ["bench", "--device", "cuda", "--n", "10", "--d", "8", "--layers", "1"])
    assert result.exit_code != 0
    assert "CUDA is not available" in result.output


def test_only_choices_match_the_registry():
    from entprobe.cli.estimator_cmds import validate

    only = next(p for p in validate.params if p.name == "only")
    assert list(only.type.choices) == list(EXPERIMENTS)


def test_validate_at_the_defaults_gives_the_readmes_verdicts(tmp_path):
    # docs/validation.md: "In all, 8 of 13 claims hold", and names the five that do not: the
    # dependence sweep, Table 1 (rank order and the noisy case), Table 2 and Table 3's
    # moderate bandwidths. Full run at the defaults (10 seeds), about a minute.
    result = CliRunner().invoke(main, ["validate", "--out", str(tmp_path), "--no-figures"])
    assert result.exit_code == 0, result.output
    assert "8 of 13 claims hold here" in result.output
    claims = pd.read_csv(tmp_path / "claims.csv")
    failing = claims[claims.verdict == "DOES NOT HOLD"]
    assert sorted(failing.experiment) == sorted(
        ["dependence_proxy", "shannon_agreement", "shannon_agreement", "normalization", "sensitivity"]
    )
    assert failing.statement.str.contains("sweep").sum() == 1
    assert failing.statement.str.contains("Moderate bandwidth").sum() == 1
