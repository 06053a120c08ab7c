"""The naive Algorithm 1 reference: closed forms, and agreement with entprobe.estimators."""

from __future__ import annotations

import math

import numpy as np
import pytest

from entprobe.estimators import conditional_entropy, matrix_entropy
from entprobe.validation import bench_states, naive_conditional_entropy, naive_matrix_entropy


def _renyi_bits(p: np.ndarray, alpha: float) -> float:
    return math.log2(float(np.sum(p**alpha))) / (1.0 - alpha)


def test_equidistant_tokens_match_closed_form():
    # c * I_n: every pair is c*sqrt(2) apart, so sigma = c*sqrt(2) and K_ij = exp(-1/2) off the
    # diagonal; eigenvalues of K are 1 + (n-1) e^{-1/2} (once) and 1 - e^{-1/2} (n-1 times).
    n, alpha = 8, 1.01
    k = math.exp(-0.5)
    p = np.array([1 + (n - 1) * k] + [1 - k] * (n - 1)) / n
    got = naive_matrix_entropy(3.0 * np.eye(n), alpha=alpha, eps=0.0, pca_dim=None)
    assert got.shape == (1,)
    assert got[0] == pytest.approx(_renyi_bits(p, alpha), abs=1e-12)


def test_response_equal_to_prompt_gives_zero_plain_proxy():
    x = np.random.default_rng(0).normal(size=(12, 5))
    assert abs(naive_conditional_entropy(x, x, normalization="plain", eps=0.0)[0]) < 1e-10


def test_identical_tokens_are_refused():
    with pytest.raises(ValueError, match="median pairwise distance is 0"):
        naive_matrix_entropy(np.ones((5, 3)))


def test_bad_normalization_is_refused():
    x = np.random.default_rng(0).normal(size=(6, 3))
    with pytest.raises(ValueError, match="normalization must be"):
        naive_conditional_entropy(x, x, normalization="subsample")


@pytest.mark.parametrize(
    "kwargs", [{}, {"alpha": 1.1}, {"alpha": 1.001, "sigma_scale": 0.5}, {"pca_dim": None}]
)
def test_matrix_entropy_agrees_with_estimator(kwargs):
    x = np.random.default_rng(1).normal(size=(4, 30, 12))
    ref = naive_matrix_entropy(x, **kwargs)
    got = matrix_entropy(x, **kwargs)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-9)


@pytest.mark.parametrize("normalization", ["trace", "plain"])
@pytest.mark.parametrize("kwargs", [{}, {"alpha": 1.1, "sigma_scale": 2.0}])
def test_proxy_agrees_with_estimator(normalization, kwargs):
    rng = np.random.default_rng(2)
    p, r = rng.normal(size=(3, 25, 10)), rng.normal(size=(3, 9, 10))
    ref = naive_conditional_entropy(p, r, normalization=normalization, **kwargs)
    got = conditional_entropy(p, r, normalization=normalization, **kwargs)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-9)


def test_agreement_with_pca_active_on_bench_inputs():
    # d = 160 > pca_dim = 64 and n + n_r > 64: the PCA cut matters; the low-rank inputs give it a gap.
    p, r = bench_states(2, 70, 35, 160, seed=3)
    np.testing.assert_allclose(matrix_entropy(p), naive_matrix_entropy(p), rtol=0, atol=1e-9)
    np.testing.assert_allclose(conditional_entropy(p, r), naive_conditional_entropy(p, r), rtol=0, atol=1e-9)


def test_long_bench_rows_compare_the_paths_on_the_same_inputs():
    """`bench --long` on a small case: both exact paths agree, the bounds hold, and the
    route follows the shape (scatter where d < n)."""
    from entprobe.validation.estimator_bench import run_long_bench

    df = run_long_bench(ns=(60, 24), d=32, layers=2, topk=8, memory_n=0)
    assert list(df["n"]) == [60, 24] and list(df["route"]) == ["scatter", "gram"]
    assert (df["max_abs_diff"] < 1e-9).all()
    assert df["topk_contains"].all()
    assert (df["f32_err_bits"] < 1e-3).all() and (df["f32_eig_s"] > 0).all()
    assert {"v010_s", "new_s", "speedup", "topk_s", "topk_width"} <= set(df.columns)
