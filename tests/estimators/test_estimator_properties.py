"""Property-based checks: bounds, batching, array libraries and dtypes agree."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from entprobe.errors import DegenerateGeometryWarning
from entprobe.estimators import conditional_entropy, matrix_entropy

SETTINGS = settings(max_examples=25, deadline=None)

alphas = st.sampled_from([0.5, 1.0, 1.01, 1.5, 2.0, 4.0])
kernels = st.sampled_from(["gaussian", "linear"])
pca_dims = st.sampled_from([None, 1, 3, 64])
scales = st.sampled_from([1e-3, 1.0, 1e4])


@st.composite
def states(draw, *, lead=(), n=None, d=None):
    """Gaussian states, sometimes with repeated rows (ties) or a large offset."""
    n = draw(st.integers(2, 24)) if n is None else n
    d = draw(st.integers(1, 12)) if d is None else d
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(*lead, n, d)) * draw(scales)
    if draw(st.booleans()):
        # duplicate some tokens onto others: coinciding pairs exercise the median
        k = draw(st.integers(1, n - 1))
        x[..., :k, :] = x[..., k : k + 1, :]
    if draw(st.booleans()):
        x = x + 100.0 * rng.normal(size=d)
    return x


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateGeometryWarning)
        return fn(*args, **kwargs)


@SETTINGS
@given(x=states(), alpha=alphas, kernel=kernels, pca_dim=pca_dims)
def test_entropy_lies_between_zero_and_log2_n(x, alpha, kernel, pca_dim):
    h = _quiet(matrix_entropy, x, alpha=alpha, kernel=kernel, pca_dim=pca_dim)
    assert isinstance(h, float) and math.isfinite(h)
    assert -1e-12 <= h <= math.log2(x.shape[0]) + 1e-9


@SETTINGS
@given(data=st.data(), n_layers=st.integers(1, 4), alpha=alphas, kernel=kernels, pca_dim=pca_dims)
def test_batched_equals_stacked_unbatched(data, n_layers, alpha, kernel, pca_dim):
    n = data.draw(st.integers(2, 20))
    d = data.draw(st.integers(1, 10))
    x = np.stack([data.draw(states(n=n, d=d)) for _ in range(n_layers)])
    opts = dict(alpha=alpha, kernel=kernel, pca_dim=pca_dim)
    batched = _quiet(matrix_entropy, x, **opts)
    assert isinstance(batched, np.ndarray) and batched.shape == (n_layers,) and batched.dtype == np.float64
    each = [_quiet(matrix_entropy, layer, **opts) for layer in x]
    np.testing.assert_allclose(batched, each, rtol=0, atol=1e-9)
    nested = _quiet(matrix_entropy, x[None, :, None], **opts)
    assert nested.shape == (1, n_layers, 1)
    np.testing.assert_allclose(nested.ravel(), each, rtol=0, atol=1e-9)


@SETTINGS
@given(
    data=st.data(),
    normalization=st.sampled_from(["trace", "plain", "subsample"]),
    pca_dim=pca_dims,
    alpha=alphas,
)
def test_conditional_batched_equals_unbatched(data, normalization, pca_dim, alpha):
    d = data.draw(st.integers(1, 8))
    n_p, n_r = data.draw(st.integers(2, 12)), data.draw(st.integers(2, 12))
    # Prompt and response come from one draw per layer (one scale, one offset): two
    # clusters 1e5 times further apart than their own spread would leave the small
    # distances with ~1e-6 relative round-off, as any Gram-based distance does.
    z = np.stack([data.draw(states(n=n_p + n_r, d=d)) for _ in range(2)])
    p, r = z[:, :n_p], z[:, n_p:]
    opts = dict(normalization=normalization, pca_dim=pca_dim, alpha=alpha, n_draws=3, seed=5)
    batched = _quiet(conditional_entropy, p, r, **opts)
    each = [_quiet(conditional_entropy, p[i], r[i], **opts) for i in range(2)]
    assert np.isfinite(batched).all()
    np.testing.assert_allclose(batched, each, rtol=0, atol=1e-9)
    # the proxy is a difference of two entropies, each within [0, log2 n]
    bound = math.log2(n_p + n_r) + 1e-9
    assert (np.abs(batched) <= bound).all()


@SETTINGS
@given(x=states(lead=(3,)), alpha=alphas, kernel=kernels, pca_dim=pca_dims)
def test_torch_and_numpy_agree(x, alpha, kernel, pca_dim):
    opts = dict(alpha=alpha, kernel=kernel, pca_dim=pca_dim)
    from_np = _quiet(matrix_entropy, x, **opts)
    from_t = _quiet(matrix_entropy, torch.from_numpy(x), **opts)
    assert isinstance(from_t, torch.Tensor) and from_t.dtype == torch.float64 and from_t.shape == (3,)
    np.testing.assert_allclose(from_t.numpy(), from_np, rtol=0, atol=1e-12)
    c_np = _quiet(conditional_entropy, x[:, :5], x[:, 5:], pca_dim=pca_dim) if x.shape[1] >= 7 else None
    if c_np is not None:
        c_t = _quiet(
            conditional_entropy, torch.from_numpy(x[:, :5]), torch.from_numpy(x[:, 5:]), pca_dim=pca_dim
        )
        np.testing.assert_allclose(c_t.numpy(), c_np, rtol=0, atol=1e-12)


@SETTINGS
@given(x=states(), alpha=alphas, kernel=kernels, pca_dim=pca_dims)
def test_low_precision_input_takes_the_float64_path(x, alpha, kernel, pca_dim):
    opts = dict(alpha=alpha, kernel=kernel, pca_dim=pca_dim)
    x32 = x.astype(np.float32)
    want = _quiet(matrix_entropy, x32.astype(np.float64), **opts)
    assert _quiet(matrix_entropy, x32, **opts) == pytest.approx(want, abs=1e-12)
    assert _quiet(matrix_entropy, torch.from_numpy(x32), **opts) == pytest.approx(want, abs=1e-12)
    xb = torch.from_numpy(x32).to(torch.bfloat16)
    assert _quiet(matrix_entropy, xb, **opts) == pytest.approx(
        _quiet(matrix_entropy, xb.to(torch.float64).numpy(), **opts), abs=1e-12
    )


def test_unbatched_torch_input_returns_a_python_float():
    x = torch.randn(10, 4, generator=torch.Generator().manual_seed(0))
    assert isinstance(matrix_entropy(x), float)
    assert isinstance(conditional_entropy(x[:4], x[4:]), float)


def test_float16_numpy_and_gradient_tensors_are_accepted():
    x = np.random.default_rng(0).normal(size=(8, 3))
    assert matrix_entropy(x.astype(np.float16)) == pytest.approx(
        matrix_entropy(x.astype(np.float16).astype(np.float64)), abs=1e-12
    )
    t = torch.tensor(x, requires_grad=True)
    assert matrix_entropy(t) == pytest.approx(matrix_entropy(x), abs=1e-12)


def test_non_contiguous_and_reversed_inputs():
    x = np.random.default_rng(1).normal(size=(3, 10, 6))
    want = matrix_entropy(np.ascontiguousarray(x[::-1, :, ::2]))
    np.testing.assert_allclose(matrix_entropy(x[::-1, :, ::2]), want, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        matrix_entropy(torch.from_numpy(x).transpose(0, 0)[:, :, ::2]),
        matrix_entropy(x[:, :, ::2]),
        atol=1e-12,
    )


def test_empty_batch_gives_an_empty_result():
    out = matrix_entropy(np.zeros((0, 5, 3)))
    assert isinstance(out, np.ndarray) and out.shape == (0,)
    out_t = conditional_entropy(torch.zeros(0, 4, 3), torch.zeros(0, 2, 3))
    assert isinstance(out_t, torch.Tensor) and out_t.shape == (0,) and out_t.dtype == torch.float64


def test_results_are_deterministic():
    x = np.random.default_rng(2).normal(size=(4, 40, 30))
    assert np.array_equal(matrix_entropy(x, pca_dim=8), matrix_entropy(x, pca_dim=8))
    a = conditional_entropy(x[:, :15], x[:, 15:], normalization="subsample", seed=3)
    b = conditional_entropy(x[:, :15], x[:, 15:], normalization="subsample", seed=3)
    c = conditional_entropy(x[:, :15], x[:, 15:], normalization="subsample", seed=4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
