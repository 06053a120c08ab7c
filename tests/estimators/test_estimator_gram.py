"""Gram-level entry points, the single batched code path, and device handling."""

from __future__ import annotations

import _estimators_reference as ref
import numpy as np
import pytest
import torch

from entprobe.errors import NumericalFallbackWarning
from entprobe.estimators import (
    _linalg,
    conditional_entropy,
    conditional_entropy_from_gram,
    linear_gram,
    matrix_entropy,
    matrix_entropy_from_gram,
    subsample_indices,
)

TOL = 1e-9


def test_linear_gram_is_the_uncentred_float64_gram():
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype(np.float32)
    g = linear_gram(x)
    assert isinstance(g, np.ndarray) and g.dtype == np.float64 and g.shape == (2, 5, 5)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(g, x64 @ x64.transpose(0, 2, 1), rtol=1e-15, atol=1e-15)
    gt = linear_gram(torch.from_numpy(x))
    assert isinstance(gt, torch.Tensor) and gt.dtype == torch.float64
    np.testing.assert_array_equal(gt.numpy(), g)
    assert linear_gram(x[0]).shape == (5, 5)


@pytest.mark.parametrize(
    "options",
    [
        dict(),
        dict(pca_dim=8),
        dict(pca_dim=None),
        dict(alpha=1.0),
        dict(alpha=2.0),
        dict(sigma=2.0),
        dict(sigma_scale=0.3),
        dict(kernel="linear"),
        dict(kernel="linear", pca_dim=None),
    ],
    ids=str,
)
def test_matrix_entropy_from_gram_equals_state_path(options):
    rng = np.random.default_rng(1)
    x = np.stack([ref.low_rank_states(rng, 90, 120, 8) for _ in range(3)])
    want = matrix_entropy(x, **options)
    np.testing.assert_allclose(matrix_entropy_from_gram(linear_gram(x), **options), want, rtol=0, atol=TOL)
    np.testing.assert_allclose(ref.matrix_entropy(x, **options), want, rtol=0, atol=TOL)
    assert matrix_entropy_from_gram(linear_gram(x[1]), **options) == pytest.approx(want[1], abs=TOL)


def test_gram_path_skips_pca_only_when_it_is_a_rotation():
    # d < pca_dim < n - 1: the states path knows d and skips the eigendecomposition,
    # the Gram path keeps the top pca_dim eigenpairs, d of them non-zero: same value.
    x = np.random.default_rng(2).normal(size=(40, 5))
    assert matrix_entropy_from_gram(linear_gram(x), pca_dim=10) == pytest.approx(
        matrix_entropy(x, pca_dim=10), abs=TOL
    )


@pytest.mark.parametrize("normalization", ["trace", "plain", "subsample"])
def test_conditional_entropy_from_gram_equals_state_path(normalization):
    rng = np.random.default_rng(3)
    z = np.stack([ref.low_rank_states(rng, 70, 64, 8) for _ in range(2)])
    p, r = z[:, :30], z[:, 30:]
    opts = dict(normalization=normalization, pca_dim=8, n_draws=4, seed=9)
    want = conditional_entropy(p, r, **opts)
    got = conditional_entropy_from_gram(linear_gram(z), 30, **opts)
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL)
    got_t = conditional_entropy_from_gram(torch.from_numpy(linear_gram(z)), 30, **opts)
    assert isinstance(got_t, torch.Tensor)
    np.testing.assert_allclose(got_t.numpy(), want, rtol=0, atol=TOL)


def test_subsample_protocol_is_the_documented_one():
    rng = np.random.default_rng(0)
    want = [(rng.choice(7, size=4, replace=False), rng.choice(4, size=4, replace=False)) for _ in range(5)]
    got = subsample_indices(7, 4, n_draws=5, seed=0)
    assert len(got) == 5
    for (gp, gr), (wp, wr) in zip(got, want):
        np.testing.assert_array_equal(gp, wp)
        np.testing.assert_array_equal(gr, wr)


def test_pca_uses_the_subset_solver_and_one_eigvalsh_call_covers_all_layers(monkeypatch):
    import scipy.linalg

    calls = {"eigh": [], "eigvalsh": [], "subset": []}
    real_eigh, real_eigvalsh, real_scipy = torch.linalg.eigh, torch.linalg.eigvalsh, scipy.linalg.eigh

    def spy_eigh(mat):
        calls["eigh"].append(tuple(mat.shape))
        return real_eigh(mat)

    def spy_eigvalsh(mat):
        calls["eigvalsh"].append(tuple(mat.shape))
        return real_eigvalsh(mat)

    def spy_scipy(a, **kw):
        calls["subset"].append((a.shape, tuple(kw["subset_by_index"]), kw["driver"]))
        return real_scipy(a, **kw)

    monkeypatch.setattr(torch.linalg, "eigh", spy_eigh)
    monkeypatch.setattr(torch.linalg, "eigvalsh", spy_eigvalsh)
    monkeypatch.setattr(scipy.linalg, "eigh", spy_scipy)
    x = np.random.default_rng(4).normal(size=(13, 30, 20))
    matrix_entropy_from_gram(linear_gram(x), pca_dim=4)
    # Only the top 4 eigenpairs of each layer's centred Gram; no full eigh.
    assert calls == {"eigh": [], "eigvalsh": [(13, 30, 30)], "subset": [((30, 30), (26, 29), "evx")] * 13}
    for v in calls.values():
        v.clear()
    matrix_entropy(x, pca_dim=4)
    # From states with d = 20 < n = 30: the top 4 of the 20 x 20 scatter matrix instead.
    assert calls == {"eigh": [], "eigvalsh": [(13, 30, 30)], "subset": [((20, 20), (16, 19), "evx")] * 13}
    for v in calls.values():
        v.clear()
    matrix_entropy(x, alpha=2.0, pca_dim=None)  # Frobenius norm, no PCA: no solver at all
    assert calls == {"eigh": [], "eigvalsh": [], "subset": []}
    conditional_entropy(x[:, :10], x[:, 10:], pca_dim=4)
    assert calls["eigh"] == [] and len(calls["subset"]) == 13
    assert calls["eigvalsh"] == [(13, 30, 30), (13, 10, 10)]


def test_solver_failure_on_an_accelerator_falls_back_to_the_cpu(monkeypatch):
    x = np.random.default_rng(5).normal(size=(3, 25, 12))
    # As on an accelerator: the full eigh serves the PCA.
    monkeypatch.setattr(_linalg, "_use_subset_solver", lambda mat: False)
    want = matrix_entropy(x, pca_dim=4)
    real_eigh, real_eigvalsh = torch.linalg.eigh, torch.linalg.eigvalsh
    failed = []

    def flaky(real):
        def solver(mat):
            if not failed:
                failed.append(True)
                raise torch.linalg.LinAlgError("the algorithm failed to converge")
            return real(mat)

        return solver

    # Pretend the CPU is an accelerator whose first solver call fails.
    monkeypatch.setattr(_linalg, "_can_fall_back", lambda mat: True)
    monkeypatch.setattr(torch.linalg, "eigh", flaky(real_eigh))
    with pytest.warns(
        NumericalFallbackWarning, match=r"torch.linalg.eigh failed on cpu.*recomputed on the CPU"
    ):
        got = matrix_entropy(x, pca_dim=4)
    np.testing.assert_array_equal(got, want)
    # A solver that returns NaN without raising is caught as well.
    returned_nan = []

    def silent_nan(mat):
        if not returned_nan:
            returned_nan.append(True)
            return torch.full(mat.shape[:-1], float("nan"), dtype=mat.dtype)
        return real_eigvalsh(mat)

    monkeypatch.setattr(torch.linalg, "eigvalsh", silent_nan)
    with pytest.warns(NumericalFallbackWarning, match=r"eigvalsh failed.*non-finite eigenvalues"):
        got = matrix_entropy(x, pca_dim=4)
    np.testing.assert_array_equal(got, want)


def test_cpu_solver_errors_are_not_swallowed(monkeypatch):
    def broken(mat):
        raise torch.linalg.LinAlgError("boom")

    monkeypatch.setattr(torch.linalg, "eigvalsh", broken)
    with pytest.raises(torch.linalg.LinAlgError, match="boom"):
        matrix_entropy(np.random.default_rng(6).normal(size=(8, 3)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_input_stays_on_its_device():
    x = torch.randn(4, 50, 80, generator=torch.Generator().manual_seed(0))
    want = matrix_entropy(x.numpy(), pca_dim=8)
    got = matrix_entropy(x.cuda(), pca_dim=8)
    assert got.device.type == "cuda" and got.dtype == torch.float64
    np.testing.assert_allclose(got.cpu().numpy(), want, rtol=0, atol=1e-9)
    c = conditional_entropy(x[:, :20].cuda(), x[:, 20:].cuda(), normalization="subsample", n_draws=3)
    assert c.device.type == "cuda"
    np.testing.assert_allclose(
        c.cpu().numpy(),
        conditional_entropy(x[:, :20].numpy(), x[:, 20:].numpy(), normalization="subsample", n_draws=3),
        atol=1e-9,
    )


def test_centred_linear_gram_gives_the_same_estimates_with_a_large_mean():
    # Transformer states often sit far from the origin; centring before the product
    # must not change any estimate (the estimators are translation invariant).
    rng = np.random.default_rng(7)
    x = rng.normal(size=(3, 40, 24)) + 1e3
    g_raw = linear_gram(x)
    g_cen = linear_gram(x, centre=True)
    assert np.allclose(g_cen.sum(axis=-1), 0.0, atol=1e-8)
    np.testing.assert_allclose(matrix_entropy_from_gram(g_cen), matrix_entropy(x), atol=1e-9)
    np.testing.assert_allclose(matrix_entropy_from_gram(g_raw), matrix_entropy(x), atol=1e-6)
    ce = conditional_entropy(x[:, :25], x[:, 25:])
    np.testing.assert_allclose(conditional_entropy_from_gram(g_cen, 25), ce, atol=1e-9)
