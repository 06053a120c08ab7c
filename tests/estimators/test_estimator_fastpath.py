"""The fast exact path (selection median, chunking) and the certified ``topk`` bounds."""

from __future__ import annotations

import _estimators_reference as ref
import numpy as np
import pytest
import torch

from entprobe.errors import ProbeInputError
from entprobe.estimators import (
    EntropyBounds,
    conditional_entropy,
    conditional_entropy_from_gram,
    linear_gram,
    matrix_entropy,
    matrix_entropy_from_gram,
    parse_memory,
)
from entprobe.estimators._geometry import _median_distance, squared_distances


@pytest.mark.parametrize("n", [2, 3, 4, 7, 10])
def test_selection_median_is_numpys_median_of_the_pairs(n):
    rng = np.random.default_rng(n)
    x = rng.normal(size=(3, n, 2))
    x[1, : n // 2 + 1] = x[1, 0]  # ties and zeros
    g = torch.from_numpy(np.einsum("bid,bjd->bij", x, x))
    d2 = squared_distances(g)
    iu = np.triu_indices(n, 1)
    want = [np.median(np.sqrt(d2[b].numpy()[iu])) for b in range(3)]
    np.testing.assert_allclose(_median_distance(d2, None).numpy(), want, rtol=1e-15, atol=0)
    tol = torch.full((3,), 1e-9, dtype=torch.float64)
    got_pos = _median_distance(d2, tol).numpy()
    for b in range(3):
        pos = d2[b].numpy()[iu]
        pos = pos[pos > 1e-9]
        assert got_pos[b] == (np.median(np.sqrt(pos)) if len(pos) else np.inf)


@pytest.mark.parametrize("fn", ["entropy", "conditional"])
def test_chunked_layers_give_the_unchunked_numbers(fn):
    rng = np.random.default_rng(2)
    z = np.stack([ref.low_rank_states(rng, 80, 40, 8) for _ in range(5)])
    one_layer = 2**20  # far below one layer's working set: one layer per chunk
    if fn == "entropy":
        whole = matrix_entropy(z, pca_dim=8, max_memory=2**40)
        np.testing.assert_array_equal(matrix_entropy(z, pca_dim=8, max_memory=one_layer), whole)
        g = linear_gram(z, centre=True)
        np.testing.assert_array_equal(
            matrix_entropy_from_gram(g, pca_dim=8, max_memory=one_layer),
            matrix_entropy_from_gram(g, pca_dim=8, max_memory=2**40),
        )
        np.testing.assert_allclose(whole, ref.matrix_entropy(z, pca_dim=8), rtol=0, atol=1e-9)
    else:
        whole = conditional_entropy(z[:, :30], z[:, 30:], pca_dim=8, max_memory=2**40)
        np.testing.assert_array_equal(
            conditional_entropy(z[:, :30], z[:, 30:], pca_dim=8, max_memory=one_layer), whole
        )
        g = linear_gram(z, centre=True)
        np.testing.assert_array_equal(
            conditional_entropy_from_gram(g, 30, pca_dim=8, max_memory=one_layer),
            conditional_entropy_from_gram(g, 30, pca_dim=8, max_memory=2**40),
        )


def test_parse_memory():
    assert parse_memory("8G") == 8 * 2**30
    assert parse_memory("512MiB") == 512 * 2**20
    assert parse_memory("auto") is None and parse_memory(None) is None
    assert parse_memory(3 * 2**20) == 3 * 2**20
    for bad in ("lots", "-1G", "10"):
        with pytest.raises(ValueError, match="max memory"):
            parse_memory(bad)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (dict(spectrum="topk"), r"spectrum must be 'exact', 'float32' or 'topk:K'.*got 'topk'"),
        (dict(spectrum="topk:0"), r"got 'topk:0'"),
        (dict(spectrum="lanczos"), r"got 'lanczos'"),
        (dict(max_memory=10), r"max_memory must be None or a number of bytes >= 2\*\*20; got 10"),
        (dict(max_memory="8G"), r"max_memory must be None or a number of bytes"),
    ],
    ids=str,
)
def test_bad_spectrum_and_memory(options, match):
    x = np.random.default_rng(0).normal(size=(12, 4))
    with pytest.raises(ProbeInputError, match=match):
        matrix_entropy(x, **options)
    with pytest.raises(ProbeInputError, match=match):
        conditional_entropy(x[:6], x[6:], **options)


# ---------------------------------------------------------------- the bounds corpus


def _corpus_states(kind: str, n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "low-rank":
        return ref.low_rank_states(rng, n, d, max(2, d // 4), noise=0.05)
    if kind == "clustered":
        centres = rng.normal(size=(int(rng.integers(3, 12)), d)) * 4.0
        return centres[rng.integers(0, len(centres), n)] + 0.3 * rng.normal(size=(n, d))
    # near-isotropic
    return rng.normal(size=(n, d)) * (1.0 + 0.05 * rng.normal(size=d))


CORPUS = [
    # (kind, n, d, K, alpha, seed): randomized, few cases at the large n, small d.
    *[
        (kind, int(n), 6, 32, alpha, s)
        for s, (kind, n, alpha) in enumerate(
            (k, n, a)
            for k in ("low-rank", "clustered", "near-isotropic")
            for n in (500, 777)
            for a in (1.01, 0.5, 3.0)
        )
    ],
    ("low-rank", 2048, 8, 64, 1.0, 101),
    ("clustered", 4096, 3, 128, 1.01, 103),
]


@pytest.mark.parametrize(("kind", "n", "d", "k", "alpha", "seed"), CORPUS, ids=str)
def test_certified_bounds_contain_the_exact_entropy(kind, n, d, k, alpha, seed):
    rng = np.random.default_rng(seed)
    x = _corpus_states(kind, n, d, rng)
    exact = matrix_entropy(x, alpha=alpha)
    got = matrix_entropy(x, alpha=alpha, spectrum=f"topk:{k}")
    assert isinstance(got, EntropyBounds)
    assert got.lower <= exact <= got.upper, (got, exact)
    assert got.lower <= got.value <= got.upper
    assert got.upper - got.lower < np.log2(n)  # an interval, not the trivial [0, log n]


@pytest.mark.parametrize(
    ("kind", "n_p", "n_r", "normalization"),
    [
        ("low-rank", 300, 400, "trace"),
        ("clustered", 600, 300, "plain"),
        ("near-isotropic", 250, 500, "trace"),
        ("clustered", 900, 600, "trace"),
    ],
)
def test_certified_bounds_contain_the_exact_proxy(kind, n_p, n_r, normalization):
    rng = np.random.default_rng(n_p + n_r)
    z = _corpus_states(kind, n_p + n_r, 6, rng)
    g = linear_gram(z, centre=True)
    exact = conditional_entropy_from_gram(g, n_p, normalization=normalization)
    got = conditional_entropy_from_gram(g, n_p, normalization=normalization, spectrum="topk:48")
    assert got.lower <= exact <= got.upper, (got, exact)


def test_topk_is_exact_when_k_covers_the_spectrum_and_batches_keep_their_shape():
    rng = np.random.default_rng(5)
    x = np.stack([_corpus_states("clustered", 60, 4, rng) for _ in range(3)])
    exact = matrix_entropy(x)
    got = matrix_entropy(x, spectrum="topk:30")  # n <= 2K: the exact spectrum
    np.testing.assert_array_equal(got.value, exact)
    np.testing.assert_array_equal(got.lower, exact)
    wide = matrix_entropy(torch.from_numpy(x), spectrum="topk:8")
    assert wide.lower.shape == (3,) and isinstance(wide.upper, torch.Tensor)
    assert bool(
        (wide.lower <= torch.from_numpy(exact)).all() and (torch.from_numpy(exact) <= wide.upper).all()
    )
    # base < 1 flips the sign: lower and upper swap so that lower <= upper still.
    small = matrix_entropy(x, spectrum="topk:8", base=0.5)
    assert (small.lower <= small.upper).all()


# ---------------------------------------------------------------- the states route (d < n)


@pytest.mark.parametrize(
    ("n", "d", "pca_dim", "kernel"),
    [
        (300, 24, 8, "gaussian"),
        (257, 64, 16, "gaussian"),
        (400, 96, 64, "gaussian"),
        (300, 24, 8, "linear"),
    ],
)
def test_scatter_route_matches_the_gram_route_and_the_reference(n, d, pca_dim, kernel):
    """With fewer features than tokens the state-level PCA solves the d x d scatter
    eigenproblem (Y = Xc V, G_k = Y Yᵀ); the Gram-level path solves the n x n one.
    Both must give the reference's numbers."""
    rng = np.random.default_rng(n + d)
    x = np.stack([ref.low_rank_states(rng, n, d, pca_dim) for _ in range(2)])
    states = matrix_entropy(x, pca_dim=pca_dim, kernel=kernel)
    gram = matrix_entropy_from_gram(linear_gram(x, centre=True), pca_dim=pca_dim, kernel=kernel)
    np.testing.assert_allclose(states, gram, rtol=0, atol=1e-10)
    want = [ref.matrix_entropy(layer, pca_dim=pca_dim, kernel=kernel) for layer in x]
    np.testing.assert_allclose(states, want, rtol=0, atol=1e-9)


@pytest.mark.parametrize("normalization", ["trace", "plain", "subsample"])
@pytest.mark.parametrize("prompt_sigma", ["joint", "own"])
def test_scatter_route_proxy_matches_the_reference(normalization, prompt_sigma):
    rng = np.random.default_rng(5)
    z = ref.low_rank_states(rng, 330, 40, 12)
    p, r = z[:130], z[130:]
    opts = dict(normalization=normalization, pca_dim=12, n_draws=2, seed=3, prompt_sigma=prompt_sigma)
    got = conditional_entropy(p, r, **opts)
    gram = conditional_entropy_from_gram(linear_gram(z, centre=True), 130, **opts)
    assert got == pytest.approx(gram, abs=1e-10)
    assert got == pytest.approx(ref.conditional_entropy(p, r, **opts), abs=1e-9)


def test_rank_deficient_states_keep_no_phantom_axes():
    """Rank 3 states cut at 8 components: the scatter route keeps the 3 real axes only
    (the Gram route clamps the other eigenvalues at 0); both equal the reference."""
    rng = np.random.default_rng(9)
    x = rng.normal(size=(200, 3)) @ rng.normal(size=(3, 20))
    got = matrix_entropy(x, pca_dim=8)
    assert got == pytest.approx(matrix_entropy_from_gram(linear_gram(x, centre=True), pca_dim=8), abs=1e-10)
    assert got == pytest.approx(ref.matrix_entropy(x, pca_dim=8), abs=1e-9)


@pytest.mark.parametrize("inner", ["features", "tokens"])
def test_symmetric_product_is_the_matmul(inner):
    from entprobe.estimators._linalg import sym_product

    x = torch.from_numpy(np.random.default_rng(1).normal(size=(3, 37, 21)))
    got = sym_product(x, inner=inner)
    want = x @ x.mT if inner == "features" else x.mT @ x
    assert torch.equal(got, got.mT)
    torch.testing.assert_close(got, want, rtol=1e-13, atol=1e-12)


def test_float32_spectrum_is_close_to_exact_and_unbounded():
    """``spectrum="float32"``: every eigenvalue in float32, a plain value (no interval)
    within the float32 round-off of the exact one, for both estimators."""
    rng = np.random.default_rng(3)
    x = np.stack([ref.low_rank_states(rng, 300, 40, 16) for _ in range(2)])
    exact = matrix_entropy(x)
    low = matrix_entropy(x, spectrum="float32")
    assert not isinstance(low, EntropyBounds)
    np.testing.assert_allclose(low, exact, rtol=0, atol=1e-4)
    assert not np.array_equal(low, exact)  # it did run in float32
    exact_c = conditional_entropy(x[:, :100], x[:, 100:])
    low_c = conditional_entropy(x[:, :100], x[:, 100:], spectrum="float32")
    np.testing.assert_allclose(low_c, exact_c, rtol=0, atol=1e-4)
