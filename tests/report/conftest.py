"""Fixture stores for the report tests (the generator lives in tests/analysis/_analysis_synthetic.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_path = Path(__file__).parents[1] / "analysis" / "_analysis_synthetic.py"
_spec = importlib.util.spec_from_file_location("_entprobe_report_synthetic", _path)
synthetic = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = synthetic  # dataclasses look their module up
_spec.loader.exec_module(synthetic)


@pytest.fixture(scope="session")
def synth():
    """The synthetic-results module (tests/analysis/_analysis_synthetic.py)."""
    return synthetic


@pytest.fixture(scope="session")
def full_store(tmp_path_factory):
    """Three models, text and image prompts, both generation levels, failed samples."""
    path = tmp_path_factory.mktemp("full") / "full.duckdb"
    synthetic.write_store(
        path, synthetic.synthetic_results({"tiny-a": 4, "tiny-b": 8, "tiny-c": 6}, per_category=3)
    )
    return path


@pytest.fixture(scope="session")
def partial_store(tmp_path_factory):
    """One model, text prompts only, no generation levels, two missing prompt types,
    and failed samples."""
    path = tmp_path_factory.mktemp("partial") / "partial.duckdb"
    synthetic.write_store(
        path,
        synthetic.synthetic_results(
            {"solo": 5},
            modalities=("text",),
            levels=("prompt",),
            per_category=2,
            text_categories=["Composition", "Deductive"],
            n_failed=3,
        ),
    )
    return path


@pytest.fixture(scope="session")
def report_dir(tmp_path_factory, full_store):
    """The full report, written through ``entprobe report`` (which calls write_report)."""
    from click.testing import CliRunner

    from entprobe.cli import main

    out = tmp_path_factory.mktemp("report")
    res = CliRunner().invoke(
        main,
        [
            "report",
            "--store",
            str(full_store),
            "--out",
            str(out),
            "--n-boot",
            "200",
            "--early-fraction",
            "0.5",
        ],
    )
    assert res.exit_code == 0, res.output
    assert f"Wrote {out / 'report.html'}" in res.output
    return out / "report.html"
