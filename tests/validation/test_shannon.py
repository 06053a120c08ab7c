"""KDE reference for Shannon entropy: closed forms for Gaussians and error paths."""

from __future__ import annotations

import math

import numpy as np
import pytest

from entprobe.validation import kde_conditional_entropy, kde_entropy, shannon_conditional_entropy


def test_gaussian_entropy_close_to_closed_form():
    z = np.random.default_rng(0).standard_normal((3000, 2))
    expected = math.log2(2 * math.pi * math.e)  # 0.5 * log2((2 pi e)^2 det I)
    assert kde_entropy(z) == pytest.approx(expected, abs=0.15)


def test_leave_one_out_exceeds_resubstitution():
    z = np.random.default_rng(1).standard_normal((300, 2))
    assert kde_entropy(z, leave_one_out=True) > kde_entropy(z, leave_one_out=False)


def test_conditional_entropy_of_independent_pair_is_marginal_entropy():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((3000, 1)), rng.standard_normal((3000, 1))
    assert kde_conditional_entropy(x, y) == pytest.approx(0.5 * math.log2(2 * math.pi * math.e), abs=0.15)


def test_deterministic_case_is_finite_and_lowest():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((400, 8))
    det = shannon_conditional_entropy(x, x)
    noisy = shannon_conditional_entropy(x, x + 0.3 * rng.standard_normal(x.shape))
    indep = shannon_conditional_entropy(x, rng.standard_normal(x.shape))
    assert np.isfinite(det) and det < noisy < indep


def test_zero_spread_is_refused():
    with pytest.raises(ValueError, match="zero spread"):
        kde_entropy(np.ones((10, 2)))


def test_unpaired_samples_are_refused():
    with pytest.raises(ValueError, match="paired samples"):
        kde_conditional_entropy(np.zeros((5, 1)), np.zeros((6, 1)))
