"""The estimators against the independent float64 reference of Algorithm 1."""

from __future__ import annotations

import _estimators_reference as ref
import numpy as np
import pytest
import torch

from entprobe.estimators import conditional_entropy, matrix_entropy

TOL = 1e-9

# (n, d, pca_dim): PCA is a no-op when pca_dim >= min(n - 1, d) and a real cut
# otherwise; the data's signal rank equals pca_dim so the cut sits at a spectral gap.
SHAPES = [
    (2, 8, 64),
    (3, 8, 64),
    (5, 8, 2),
    (17, 8, 64),
    (40, 16, 8),
    (64, 4096, 64),  # n - 1 < pca_dim: no cut
    (100, 64, 64),  # d == pca_dim: no cut
    (120, 256, 64),
    (200, 512, 8),
    (500, 4096, 64),  # the largest case
]


@pytest.mark.parametrize(("n", "d", "pca_dim"), SHAPES)
def test_matrix_entropy_matches_reference(n, d, pca_dim):
    rng = np.random.default_rng(1000 * n + d)
    x = ref.low_rank_states(rng, n, d, pca_dim)
    got = matrix_entropy(x, pca_dim=pca_dim)
    assert isinstance(got, float)
    assert got == pytest.approx(ref.matrix_entropy(x, pca_dim=pca_dim), abs=TOL)


@pytest.mark.parametrize(
    "options",
    [
        dict(alpha=1.0),
        dict(alpha=2.0),
        dict(alpha=0.5),
        dict(alpha=3.7, eps=0.0),
        dict(sigma_scale=0.5),
        dict(sigma=1.5),
        dict(pca_dim=None),
        dict(kernel="linear"),
        dict(kernel="linear", pca_dim=None),
        dict(eps=1e-3),
    ],
    ids=str,
)
def test_matrix_entropy_options_match_reference(options):
    rng = np.random.default_rng(7)
    x = ref.low_rank_states(rng, 60, 96, options.get("pca_dim", 64) or 64)
    got = matrix_entropy(x, **options)
    assert got == pytest.approx(ref.matrix_entropy(x, **options), abs=TOL)


def test_batched_matrix_entropy_matches_reference_layer_by_layer():
    rng = np.random.default_rng(3)
    x = np.stack([ref.low_rank_states(rng, 120, 256, 64) for _ in range(4)])
    want = ref.matrix_entropy(x)
    np.testing.assert_allclose(matrix_entropy(x), want, rtol=0, atol=TOL)
    got_t = matrix_entropy(torch.from_numpy(x).float())
    want32 = ref.matrix_entropy(x.astype(np.float32))
    np.testing.assert_allclose(got_t.numpy(), want32, rtol=0, atol=TOL)


def test_base_and_units():
    rng = np.random.default_rng(4)
    x = ref.low_rank_states(rng, 30, 12, 64)
    bits = ref.matrix_entropy(x)
    assert matrix_entropy(x, base="e") == pytest.approx(bits * np.log(2), abs=TOL)
    assert matrix_entropy(x, base=10) == pytest.approx(bits * np.log10(2), abs=TOL)
    assert matrix_entropy(x, base=np.e) == pytest.approx(bits * np.log(2), abs=TOL)


# (n_p, n_r, d, pca_dim)
COND_SHAPES = [
    (2, 2, 8, 64),
    (3, 5, 8, 64),
    (9, 4, 16, 4),
    (30, 50, 64, 8),
    (60, 40, 128, 64),  # n = 100 > pca_dim: a cut
    (100, 160, 4096, 64),  # the largest case
]


@pytest.mark.parametrize("normalization", ["trace", "plain", "subsample"])
@pytest.mark.parametrize(("n_p", "n_r", "d", "pca_dim"), COND_SHAPES)
def test_conditional_entropy_matches_reference(normalization, n_p, n_r, d, pca_dim):
    rng = np.random.default_rng(n_p * 1000 + n_r)
    z = ref.low_rank_states(rng, n_p + n_r, d, pca_dim)
    p, r = z[:n_p], z[n_p:]
    opts = dict(normalization=normalization, pca_dim=pca_dim, n_draws=3, seed=11)
    got = conditional_entropy(p, r, **opts)
    assert isinstance(got, float)
    assert got == pytest.approx(ref.conditional_entropy(p, r, **opts), abs=TOL)


@pytest.mark.parametrize("normalization", ["trace", "plain", "subsample"])
def test_batched_conditional_entropy_matches_reference(normalization):
    rng = np.random.default_rng(5)
    zs = [ref.low_rank_states(rng, 70, 96, 8) for _ in range(3)]
    p = np.stack([z[:25] for z in zs])
    r = np.stack([z[25:] for z in zs])
    opts = dict(normalization=normalization, pca_dim=8, n_draws=3, seed=2)
    np.testing.assert_allclose(
        conditional_entropy(p, r, **opts), ref.conditional_entropy(p, r, **opts), rtol=0, atol=TOL
    )


@pytest.mark.parametrize(
    "options",
    [
        dict(alpha=1.0),
        dict(alpha=2.0),
        dict(sigma=2.0),
        dict(sigma_scale=2.0),
        dict(pca_dim=None),
        dict(eps=0.0),
    ],
    ids=str,
)
def test_conditional_options_match_reference(options):
    rng = np.random.default_rng(6)
    z = ref.low_rank_states(rng, 45, 32, 64)
    for normalization in ("trace", "plain"):
        got = conditional_entropy(z[:15], z[15:], normalization=normalization, **options)
        want = ref.conditional_entropy(z[:15], z[15:], normalization=normalization, **options)
        assert got == pytest.approx(want, abs=TOL)


@pytest.mark.parametrize("normalization", ["trace", "plain", "subsample"])
@pytest.mark.parametrize(("n_p", "n_r", "d", "pca_dim"), [(9, 4, 16, 4), (60, 40, 128, 64), (30, 50, 64, 8)])
def test_prompt_own_bandwidth_matches_reference(normalization, n_p, n_r, d, pca_dim):
    rng = np.random.default_rng(n_p * 7 + n_r)
    z = ref.low_rank_states(rng, n_p + n_r, d, pca_dim)
    # The response sits further out, so the joint and the prompt's own medians differ.
    z[n_p:] *= 3.0
    p, r = z[:n_p], z[n_p:]
    opts = dict(normalization=normalization, pca_dim=pca_dim, n_draws=3, seed=11, sigma_scale=0.7)
    own = conditional_entropy(p, r, prompt_sigma="own", **opts)
    assert own == pytest.approx(ref.conditional_entropy(p, r, prompt_sigma="own", **opts), abs=TOL)
    joint = conditional_entropy(p, r, prompt_sigma="joint", **opts)
    assert joint == pytest.approx(conditional_entropy(p, r, **opts), abs=0)
    assert abs(own - joint) > 1e-3  # the option changes the number


def test_prompt_own_bandwidth_batched_and_from_gram():
    from entprobe.estimators import conditional_entropy_from_gram, linear_gram

    rng = np.random.default_rng(8)
    z = np.stack([ref.low_rank_states(rng, 70, 96, 8) for _ in range(3)])
    z[:, 25:] *= 2.0
    want = ref.conditional_entropy(z[:, :25], z[:, 25:], pca_dim=8, prompt_sigma="own")
    got = conditional_entropy(z[:, :25], z[:, 25:], pca_dim=8, prompt_sigma="own")
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL)
    got_g = conditional_entropy_from_gram(linear_gram(z), 25, pca_dim=8, prompt_sigma="own")
    np.testing.assert_allclose(got_g, want, rtol=0, atol=TOL)


def test_prompt_own_bandwidth_degenerate_prompts():
    from entprobe.errors import DegenerateGeometryWarning

    rng = np.random.default_rng(9)
    r = rng.normal(size=(12, 6))
    same = np.tile(rng.normal(size=(1, 6)), (8, 1))
    # All prompt tokens coincide: H(prompt) is exactly 0 with either bandwidth.
    assert conditional_entropy(same, r, prompt_sigma="own") == pytest.approx(
        conditional_entropy(same, r, prompt_sigma="joint"), abs=1e-12
    )
    # Most prompt pairs coincide: the prompt's own median is 0 -> positive median, warned.
    mostly = same.copy()
    mostly[0] += 1.0
    with pytest.warns(DegenerateGeometryWarning, match="the prompt tokens"):
        conditional_entropy(mostly, r, prompt_sigma="own")
