"""Fixture stores written through the store API, and the synthetic results in them."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "_entprobe_analysis_synthetic", Path(__file__).with_name("_analysis_synthetic.py")
)
synthetic = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = synthetic  # dataclasses look their module up
_spec.loader.exec_module(synthetic)


@pytest.fixture(scope="session")
def results():
    return synthetic.synthetic_results({"tiny-a": 4, "tiny-b": 8, "tiny-c": 6}, per_category=3)


@pytest.fixture(scope="session")
def two_stores(tmp_path_factory, results):
    """tiny-a and tiny-b in one store, tiny-c in another."""
    d = tmp_path_factory.mktemp("stores")
    a, b = d / "ab.duckdb", d / "c.duckdb"
    synthetic.write_store(a, results, runs=["run-tiny-a", "run-tiny-b"])
    synthetic.write_store(b, results, runs=["run-tiny-c"])
    return [a, b]
