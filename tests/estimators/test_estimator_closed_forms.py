"""Closed-form values, invariances and degenerate geometry."""

from __future__ import annotations

import math
import warnings

import _estimators_reference as ref
import numpy as np
import pytest
import torch

from entprobe.errors import DegenerateGeometryWarning
from entprobe.estimators import conditional_entropy, matrix_entropy


def _random(n, d, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d))


# ---------------------------------------------------------------- identical tokens


@pytest.mark.parametrize("value", [0.0, 0.1, -3.7, 1e6])
@pytest.mark.parametrize("kernel", ["gaussian", "linear"])
def test_identical_tokens_have_exactly_zero_entropy(value, kernel):
    x = np.full((7, 5), value)
    assert matrix_entropy(x, kernel=kernel) == 0.0
    assert matrix_entropy(torch.from_numpy(x).float(), kernel=kernel) == 0.0


def test_identical_tokens_zero_with_fixed_sigma_and_any_order():
    row = np.random.default_rng(1).normal(size=12)
    x = np.tile(row, (9, 1))
    for alpha in (0.5, 1.0, 1.01, 2.0, 5.0):
        assert matrix_entropy(x, sigma=0.3, alpha=alpha) == 0.0


def test_identical_layer_in_a_batch_is_zero_and_others_are_not():
    x = np.stack([_random(10, 4), np.ones((10, 4)), _random(10, 4, seed=2)])
    h = matrix_entropy(x)
    assert h[1] == 0.0
    assert (h[[0, 2]] > 0.5).all()


def test_identical_prompt_and_response_give_zero_proxy():
    x = np.full((6, 3), 2.5)
    for normalization in ("trace", "plain", "subsample"):
        assert conditional_entropy(x, x[:4], normalization=normalization) == 0.0


# ---------------------------------------------------------------- separated tokens


@pytest.mark.parametrize("n", [2, 5, 16, 100])
def test_far_apart_tokens_reach_log2_n(n):
    x = 50.0 * np.eye(n)  # scaled one-hot: every pair at distance 50 * sqrt(2)
    assert matrix_entropy(x, sigma=1.0, pca_dim=None) == pytest.approx(math.log2(n), abs=1e-12)
    rng = np.random.default_rng(n)
    y = 1e4 * rng.normal(size=(n, 3))
    for alpha in (0.5, 1.0, 1.01, 2.0):
        assert matrix_entropy(y, sigma=1.0, alpha=alpha) == pytest.approx(math.log2(n), abs=1e-9)


@pytest.mark.parametrize("n", [3, 8, 40])
@pytest.mark.parametrize("eps", [0.0, 1e-6, 0.1])
@pytest.mark.parametrize("alpha", [1.0, 1.01, 2.0])
def test_regular_simplex_with_median_bandwidth_has_closed_form(n, eps, alpha):
    # All pairwise distances equal, so sigma is that distance and K = (1 - c) I + c J
    # with c = exp(-1/2): eigenvalues 1 - c + n c (once) and 1 - c (n - 1 times).
    x = 3.0 * np.eye(n)
    c = math.exp(-0.5)
    lam = np.array([1 - c + n * c] + [1 - c] * (n - 1)) + eps
    lam /= lam.sum()
    want = -np.sum(lam * np.log2(lam)) if alpha == 1.0 else np.log2(np.sum(lam**alpha)) / (1 - alpha)
    assert matrix_entropy(x, alpha=alpha, eps=eps, pca_dim=None) == pytest.approx(want, abs=1e-12)


def test_linear_kernel_of_a_regular_simplex_is_log2_n_minus_1():
    # Centred one-hot rows span n - 1 dimensions symmetrically: the cosine Gram has
    # n - 1 equal eigenvalues and one 0 (up to the ridge eps).
    n = 6
    x = np.eye(n) * 2.0
    want = ref.matrix_entropy(x, kernel="linear", pca_dim=None)
    assert matrix_entropy(x, kernel="linear", pca_dim=None) == pytest.approx(want, abs=1e-12)
    assert want == pytest.approx(math.log2(n - 1), abs=1e-5)  # rank n-1 after centring


# ---------------------------------------------------------------- response = prompt


@pytest.mark.parametrize("normalization", ["trace", "plain"])
def test_response_equal_to_prompt_gives_zero_proxy(normalization):
    x = ref.low_rank_states(np.random.default_rng(8), 40, 16, 8)
    # The ridge eps adds a spread of order eps; without it the spectra match exactly.
    assert abs(conditional_entropy(x, x, normalization=normalization)) < 1e-4
    assert abs(conditional_entropy(x, x, normalization=normalization, eps=0.0)) < 1e-9


def test_independent_response_adds_entropy():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(40, 8))
    noisy = x + 0.1 * rng.normal(size=x.shape)
    indep = rng.normal(size=x.shape)
    for normalization in ("trace", "plain", "subsample"):
        vals = [conditional_entropy(x, y, normalization=normalization) for y in (x, noisy, indep)]
        assert vals[0] < vals[1] < vals[2]


# ---------------------------------------------------------------- invariances


def test_invariant_to_token_order():
    rng = np.random.default_rng(10)
    x = ref.low_rank_states(rng, 80, 100, 8)
    perm = rng.permutation(80)
    for kernel in ("gaussian", "linear"):
        assert matrix_entropy(x[perm], kernel=kernel, pca_dim=8) == pytest.approx(
            matrix_entropy(x, kernel=kernel, pca_dim=8), abs=1e-10
        )
    p, r = x[:30], x[30:]
    pp, rp = p[rng.permutation(30)], r[rng.permutation(50)]
    for normalization in ("trace", "plain"):
        assert conditional_entropy(pp, rp, normalization=normalization) == pytest.approx(
            conditional_entropy(p, r, normalization=normalization), abs=1e-10
        )


@pytest.mark.parametrize("scale", [1e-150, 1e-3, 7.0, 1e3, 1e150])
def test_invariant_to_global_scale_and_shift_with_median_bandwidth(scale):
    rng = np.random.default_rng(11)
    x = ref.low_rank_states(rng, 50, 20, 8)
    base = matrix_entropy(x, pca_dim=8)
    assert matrix_entropy(scale * x, pca_dim=8) == pytest.approx(base, abs=1e-10)
    assert matrix_entropy(x + 1e3, pca_dim=8) == pytest.approx(base, abs=1e-9)
    assert matrix_entropy(scale * x, kernel="linear") == pytest.approx(
        matrix_entropy(x, kernel="linear"), abs=1e-10
    )
    assert conditional_entropy(scale * x[:20], scale * x[20:]) == pytest.approx(
        conditional_entropy(x[:20], x[20:]), abs=1e-10
    )


def test_fixed_sigma_scales_with_the_states():
    x = _random(30, 6, seed=12)
    assert matrix_entropy(1e-120 * x, sigma=2e-120) == pytest.approx(matrix_entropy(x, sigma=2.0), abs=1e-10)


def test_sigma_scale_equals_fixed_sigma_at_scaled_median():
    from scipy.spatial.distance import pdist

    x = _random(25, 5, seed=13)
    med = np.median(pdist(x - x.mean(0)))
    assert matrix_entropy(x, sigma_scale=0.5) == pytest.approx(matrix_entropy(x, sigma=0.5 * med), abs=1e-12)


# ---------------------------------------------------------------- orders alpha


def test_alpha_one_is_the_limit_of_alpha_to_one():
    x = ref.low_rank_states(np.random.default_rng(14), 60, 30, 64)
    h1 = matrix_entropy(x, alpha=1.0)
    assert h1 == pytest.approx(ref.matrix_entropy(x, alpha=1), abs=1e-10)
    for delta in (1e-3, 1e-5, 1e-7, 1e-9):
        lo, hi = matrix_entropy(x, alpha=1 - delta), matrix_entropy(x, alpha=1 + delta)
        assert lo >= h1 >= hi  # Rényi entropy decreases in alpha
        assert hi == pytest.approx(h1, abs=10 * delta)
        assert lo == pytest.approx(h1, abs=10 * delta)
    c1 = conditional_entropy(x[:20], x[20:], alpha=1.0)
    assert conditional_entropy(x[:20], x[20:], alpha=1 + 1e-8) == pytest.approx(c1, abs=1e-6)


def test_alpha_two_frobenius_matches_the_eigenvalue_path():
    x = ref.low_rank_states(np.random.default_rng(15), 70, 40, 8)
    want = ref.matrix_entropy(x, alpha=2.0, pca_dim=8)  # eigenvalues, sum of squares
    assert matrix_entropy(x, alpha=2.0, pca_dim=8) == pytest.approx(want, abs=1e-12)
    # the same spectrum through the general formula just off 2
    assert matrix_entropy(x, alpha=2.0 + 1e-9, pca_dim=8) == pytest.approx(want, abs=1e-7)


def test_large_alpha_stays_finite():
    x = _random(200, 10, seed=16)
    h = matrix_entropy(x, alpha=400.0)
    assert math.isfinite(h) and 0.0 <= h <= math.log2(200)
    assert h == pytest.approx(ref.matrix_entropy(x, alpha=400.0), abs=1e-9)


# ---------------------------------------------------------------- degenerate geometry


def _mostly_coincident(seed=0):
    rng = np.random.default_rng(seed)
    # 7 equal rows out of 9: 21 of the 36 pairs have distance 0, so the median is 0.
    return np.vstack([np.tile(rng.normal(size=4), (7, 1)), rng.normal(size=(2, 4))])


def test_zero_median_falls_back_to_positive_median_with_warning():
    x = _mostly_coincident()
    with pytest.warns(DegenerateGeometryWarning, match=r"median pairwise distance of states is 0"):
        h = matrix_entropy(x)
    assert math.isfinite(h) and 0.0 < h <= math.log2(9)
    from scipy.spatial.distance import pdist

    dist = pdist(x)
    sigma = np.median(dist[dist > 1e-9])
    assert h == pytest.approx(ref.matrix_entropy(x, sigma=sigma), abs=1e-9)


def test_degenerate_warning_names_the_layers():
    x = np.stack([_random(9, 4), _mostly_coincident(), _random(9, 4, seed=3), _mostly_coincident(1)])
    with pytest.warns(DegenerateGeometryWarning, match=r"at layers 1, 3"):
        h = matrix_entropy(torch.from_numpy(x))
    assert torch.isfinite(h).all()


def test_degenerate_joint_median_warns_in_conditional_entropy():
    x = _mostly_coincident()
    with pytest.warns(DegenerateGeometryWarning, match="joint prompt"):
        h = conditional_entropy(x[:5], x[5:], normalization="plain")
    assert math.isfinite(h)


def test_no_warning_with_fixed_sigma_or_ordinary_geometry():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        matrix_entropy(_mostly_coincident(), sigma=1.0)
        matrix_entropy(_random(20, 3))


def test_linear_kernel_token_at_centroid_warns_and_stays_finite():
    x = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0], [0.0, 0.0]])
    with pytest.warns(DegenerateGeometryWarning, match="centroid"):
        h = matrix_entropy(x, kernel="linear", pca_dim=None)
    assert math.isfinite(h) and 0.0 < h <= math.log2(5)
