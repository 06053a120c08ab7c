"""Fixtures for the estimator tests."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import pytest
import torch

# The tests import the plain reference of Algorithm 1 (``_estimators_reference``)
# from this folder whatever pytest's import mode.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _single_threaded_linear_algebra():
    """Run each estimator test with one BLAS/OpenMP thread, then restore the settings.

    The tests alternate small torch and NumPy/SciPy (reference) solves; with both
    thread pools spinning on a 2-core machine they slow each other down by one to two
    orders of magnitude, with nothing gained on matrices this small.
    """
    previous = torch.get_num_threads()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: only NumPy's BLAS stays multi-threaded then
        limits = contextlib.nullcontext()
    else:
        limits = threadpool_limits(limits=1)
    torch.set_num_threads(1)
    try:
        with limits:
            yield
    finally:
        torch.set_num_threads(previous)
