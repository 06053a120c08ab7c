"""Shared set-up of the validation tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    # The experiments run many small eigen-problems; on a loaded CI machine torch's
    # intra-op thread pool then spends its time waiting. Results do not depend on it.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
