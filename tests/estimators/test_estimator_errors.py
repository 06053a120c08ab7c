"""Every bad input raises ProbeInputError naming the argument, the expectation and what arrived."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from entprobe.errors import ProbeInputError
from entprobe.estimators import (
    conditional_entropy,
    conditional_entropy_from_gram,
    linear_gram,
    matrix_entropy,
    matrix_entropy_from_gram,
)

X = np.random.default_rng(0).normal(size=(6, 4))
G = linear_gram(np.concatenate([X, X[:4] + 1.0]))


def _with(value, layer=None, where=(1, 2)):
    """Batched states (3 layers) with ``value`` placed in ``layer``."""
    x = np.stack([X, X + 1.0, X - 1.0])
    if layer is not None:
        x[(layer, *where)] = value
    return x


# ---------------------------------------------------------------- the states themselves


@pytest.mark.parametrize(
    ("states", "match"),
    [
        ([[0.0, 1.0], [1.0, 0.0]], r"states must be a NumPy array or a torch tensor of floats; got list"),
        ("abc", r"states must be a NumPy array or a torch tensor.*got str"),
        (np.arange(12).reshape(6, 2), r"states must have a floating-point dtype; got int64"),
        (torch.ones(6, 2, dtype=torch.int32), r"states must have a floating-point dtype; got torch.int32"),
        (np.ones((4, 2), dtype=bool), r"floating-point dtype; got bool"),
        (np.ones(5), r"states must have shape \(n_tokens, d_model\).*got shape \(5,\)"),
        (np.array(3.0), r"got shape \(\)"),
        (np.float64(3.0), r"states must be a NumPy array or a torch tensor of floats; got float64"),
        (np.ones((1, 8)), r"states has 1 token; need at least 2"),
        (np.ones((3, 0, 8)), r"states has 0 tokens; need at least 2"),
        (np.ones((5, 0)), r"states has 0 features; need at least 1"),
        (_with(np.nan, layer=2), r"states has NaN at layer 2; need finite values"),
        (_with(np.inf, layer=0), r"states has Inf at layer 0"),
        (torch.from_numpy(_with(-np.inf, layer=1)).float(), r"states has Inf at layer 1"),
        (np.where(np.arange(24).reshape(6, 4) == 5, np.nan, X), r"states has NaN; need finite values"),
        (np.full((2, 3, 5, 4), np.nan), r"states has NaN at index \(0, 0\)"),
    ],
)
def test_bad_states(states, match):
    with pytest.raises(ProbeInputError, match=match):
        matrix_entropy(states)


def test_nan_error_names_the_batch_position_for_several_leading_axes():
    x = np.zeros((2, 3, 5, 4)) + np.arange(5)[:, None]
    x[1, 2, 0, 0] = np.nan
    with pytest.raises(ProbeInputError, match=r"states has NaN at index \(1, 2\)"):
        matrix_entropy(x)


def test_probe_input_error_is_a_value_error():
    with pytest.raises(ValueError):
        matrix_entropy(np.ones((1, 3)))


# ---------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (dict(alpha=0.0), r"alpha must be a positive finite number; got 0.0"),
        (dict(alpha=-1), r"alpha must be a positive finite number; got -1"),
        (dict(alpha=float("nan")), r"alpha must be a positive finite number; got nan"),
        (dict(alpha=float("inf")), r"alpha must be a positive finite number; got inf"),
        (dict(alpha="2"), r"alpha must be a positive finite number; got '2'"),
        (dict(alpha=True), r"alpha must be a positive finite number; got True"),
        (dict(eps=-1e-9), r"eps must be a finite number >= 0; got -1e-09"),
        (dict(eps=float("inf")), r"eps must be a finite number >= 0; got inf"),
        (dict(sigma=0.0), r"sigma must be 'median' or a positive finite number; got 0.0"),
        (dict(sigma=-2.0), r"sigma must be 'median' or a positive finite number; got -2.0"),
        (dict(sigma=float("inf")), r"sigma must be 'median' or a positive finite number; got inf"),
        (dict(sigma="mean"), r"sigma must be 'median' or a positive finite number; got 'mean'"),
        (dict(sigma=None), r"sigma must be 'median' or a positive finite number; got None"),
        (dict(sigma_scale=0), r"sigma_scale must be a positive finite number; got 0"),
        (dict(sigma_scale=float("nan")), r"sigma_scale must be a positive finite number; got nan"),
        (dict(sigma=1.0, sigma_scale=2.0), r"sigma_scale scales the median bandwidth only"),
        (dict(kernel="rbf"), r"kernel must be one of \('gaussian', 'linear'\); got 'rbf'"),
        (dict(kernel="linear", sigma=1.0), r"sigma and sigma_scale apply to kernel='gaussian' only"),
        (dict(pca_dim=0), r"pca_dim must be None or an integer >= 1; got 0"),
        (dict(pca_dim=2.5), r"pca_dim must be None or an integer >= 1; got 2.5"),
        (dict(pca_dim=True), r"pca_dim must be None or an integer >= 1; got True"),
        (dict(base=1), r"base must be 2, 'e' or a positive number other than 1; got 1"),
        (dict(base=0), r"base must be 2, 'e' or a positive number other than 1; got 0"),
        (dict(base=-2), r"base must be .*; got -2"),
        (dict(base="2"), r"base must be .*; got '2'"),
        (dict(base=None), r"base must be .*; got None"),
    ],
    ids=str,
)
def test_bad_options(options, match):
    with pytest.raises(ProbeInputError, match=match):
        matrix_entropy(X, **options)
    with pytest.raises(ProbeInputError, match=match):
        matrix_entropy_from_gram(G, **options)
    if "kernel" not in options:
        with pytest.raises(ProbeInputError, match=match):
            conditional_entropy(X, X, **options)
        with pytest.raises(ProbeInputError, match=match):
            conditional_entropy_from_gram(G, 6, **options)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (
            dict(normalization="weighted"),
            r"normalization must be one of \('trace', 'plain', 'subsample'\); got 'weighted'",
        ),
        (dict(n_draws=0), r"n_draws must be an integer >= 1; got 0"),
        (dict(n_draws=2.0), r"n_draws must be an integer >= 1; got 2.0"),
        (dict(seed=-1), r"seed must be an integer >= 0; got -1"),
        (dict(seed=None), r"seed must be an integer >= 0; got None"),
        (dict(prompt_sigma="prompt"), r"prompt_sigma must be one of \('joint', 'own'\); got 'prompt'"),
        (dict(prompt_sigma=None), r"prompt_sigma must be one of \('joint', 'own'\); got None"),
        (
            dict(prompt_sigma="own", sigma=1.5),
            r"prompt_sigma='own' takes the prompt's own median.*fixed sigma=1.5",
        ),
    ],
    ids=str,
)
def test_bad_conditional_options(options, match):
    with pytest.raises(ProbeInputError, match=match):
        conditional_entropy(X, X, **options)
    with pytest.raises(ProbeInputError, match=match):
        conditional_entropy_from_gram(G, 6, **options)


# ---------------------------------------------------------------- prompt vs response


def test_conditional_names_the_bad_side():
    with pytest.raises(ProbeInputError, match=r"prompt_states has 1 token; need at least 2"):
        conditional_entropy(X[:1], X)
    with pytest.raises(ProbeInputError, match=r"response_states has 1 token; need at least 2"):
        conditional_entropy(X, X[:1])
    with pytest.raises(ProbeInputError, match=r"prompt_states has NaN at layer 7"):
        p = np.zeros((9, 6, 4)) + np.arange(6)[:, None]
        p[7, 3, 1] = np.nan
        conditional_entropy(p, p)
    with pytest.raises(ProbeInputError, match=r"response_states has Inf at layer 1"):
        r = np.stack([X, X])
        r[1, 0, 0] = np.inf
        conditional_entropy(np.stack([X, X]), r)
    with pytest.raises(ProbeInputError, match=r"response_states must be a NumPy array"):
        conditional_entropy(X, X.tolist())


def test_conditional_mismatched_shapes():
    with pytest.raises(ProbeInputError, match=r"same feature dimension; got d=4 .* and d=3"):
        conditional_entropy(X, X[:, :3])
    with pytest.raises(ProbeInputError, match=r"same leading axes; got \(2,\) .* and \(3,\)"):
        conditional_entropy(np.stack([X, X]), np.stack([X, X, X]))
    with pytest.raises(ProbeInputError, match=r"same leading axes; got \(\) .* and \(1,\)"):
        conditional_entropy(X, X[None])
    with pytest.raises(
        ProbeInputError, match=r"both be NumPy arrays or torch tensors.*got NumPy and torch on cpu"
    ):
        conditional_entropy(X, torch.from_numpy(X))


# ---------------------------------------------------------------- Gram-level input


@pytest.mark.parametrize(
    ("gram", "match"),
    [
        ([[1.0, 0.0], [0.0, 1.0]], r"gram must be a NumPy array or a torch tensor of floats; got list"),
        (np.eye(3, dtype=np.int64), r"gram must have a floating-point dtype; got int64"),
        (np.ones((3, 4)), r"gram must be square with shape \(n, n\) or \(..., n, n\); got shape \(3, 4\)"),
        (np.ones(3), r"gram must be square.*got shape \(3,\)"),
        (np.ones((1, 1)), r"gram covers 1 token; need at least 2"),
        (np.stack([np.eye(3), np.full((3, 3), np.nan)]), r"gram has NaN at layer 1"),
        (
            np.array([[1.0, 0.5], [0.0, 1.0]]),
            r"gram is not symmetric: largest \|G - Gᵀ\| is 0.5 of max \|G\|",
        ),
        (np.stack([np.eye(2), np.array([[1.0, 0.5], [0.0, 1.0]])]), r"gram is not symmetric at layer 1"),
        (np.diag([1.0, -1.0, 2.0]), r"gram has a negative diagonal entry; a Gram matrix"),
    ],
)
def test_bad_gram(gram, match):
    with pytest.raises(ProbeInputError, match=match):
        matrix_entropy_from_gram(gram)
    with pytest.raises(ProbeInputError, match=match):
        conditional_entropy_from_gram(gram, 2)


@pytest.mark.parametrize(
    ("n_prompt", "match"),
    [
        (
            1,
            r"n_prompt must leave at least 2 tokens on each side of a gram over 10 tokens \(2 <= n_prompt <= 8\); got n_prompt=1",
        ),
        (9, r"\(2 <= n_prompt <= 8\); got n_prompt=9"),
        (10, r"got n_prompt=10"),
        (4.0, r"n_prompt must be an integer; got 4.0"),
        (None, r"n_prompt must be an integer; got None"),
    ],
)
def test_bad_n_prompt(n_prompt, match):
    with pytest.raises(ProbeInputError, match=match):
        conditional_entropy_from_gram(G, n_prompt)


def test_linear_gram_checks_its_input():
    with pytest.raises(ProbeInputError, match=r"states has NaN at layer 0"):
        linear_gram(np.full((2, 3, 4), np.nan))
    with pytest.raises(ProbeInputError, match=r"states has 1 token"):
        linear_gram(torch.ones(1, 4))


def test_slightly_asymmetric_float32_gram_is_accepted():
    g = linear_gram(X).astype(np.float32)
    g[0, 1] *= 1 + 1e-6
    assert np.isfinite(matrix_entropy_from_gram(g))
