"""A plain, per-layer NumPy/SciPy implementation of the paper's Algorithm 1.

This is the reference the benchmark (``entprobe bench``) times the estimators
against and the tests compare them with. It is written for reading, not speed:
a Python loop over layers, and per layer

1. centre the states and project them on their leading ``pca_dim`` principal
   directions (``np.linalg.svd``);
2. pairwise Euclidean distances (``scipy.spatial.distance.pdist``);
3. bandwidth ``sigma = sigma_scale * median{||z_i - z_j||}_{i<j}`` (``np.median``,
   which averages the two middle values when the number of pairs is even);
4. Gaussian kernel ``K = exp(-D^2 / (2 sigma^2)) + eps I``;
5. ``A = K / tr(K)``, eigenvalues by ``np.linalg.eigvalsh``;
6. ``H_alpha(A) = log(sum_i lambda_i^alpha) / (1 - alpha)`` in the requested base.

For the conditional entropy proxy ``H(joint) - H(prompt)`` the PCA is fitted on the
concatenation ``[prompt; response]`` and the bandwidth is the median distance of
that concatenated set, shared by both terms. The joint kernel is then weighted
before the trace normalisation:

- ``"trace"`` (the default): prompt block x ``1/(2 n_p)``, response block x
  ``1/(2 n_r)``, cross blocks x ``1/(2 sqrt(n_p n_r))`` -- i.e. each block divided
  by its own trace (the kernel's diagonal is constant) and the two blocks given
  equal weight -- then divided by the trace;
- ``"plain"``: ``K / tr(K)`` (every token weighs the same).

The ``eps I`` ridge is added to the kernel before the block weighting (Algorithm 1,
step 5, then normalisation).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial.distance import pdist, squareform

__all__ = ["naive_conditional_entropy", "naive_matrix_entropy"]


def _pca(states: np.ndarray, pca_dim: int | None) -> np.ndarray:
    centred = states - states.mean(axis=0, keepdims=True)
    if pca_dim is None:
        return centred
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:pca_dim].T


def _median_distance(points: np.ndarray) -> float:
    sigma = float(np.median(pdist(points)))
    if not sigma > 0.0:
        raise ValueError("naive reference: median pairwise distance is 0 (all states identical)")
    return sigma


def _gaussian_kernel(points: np.ndarray, sigma: float, eps: float) -> np.ndarray:
    sq = pdist(points, metric="sqeuclidean")
    kernel = squareform(np.exp(-sq / (2.0 * sigma**2)))
    np.fill_diagonal(kernel, 1.0)
    kernel += eps * np.eye(len(points))
    return kernel


def _renyi(kernel: np.ndarray, alpha: float, base: float) -> float:
    a = kernel / np.trace(kernel)
    lam = np.clip(np.linalg.eigvalsh(a), 0.0, None)
    if alpha == 1.0:
        nz = lam[lam > 0]
        h = float(-(nz * np.log(nz)).sum())
    else:
        h = float(np.log((lam**alpha).sum()) / (1.0 - alpha))
    return h / math.log(base)


def _as_layers(states: np.ndarray, name: str) -> np.ndarray:
    states = np.asarray(states, dtype=np.float64)
    if states.ndim == 2:
        return states[None]
    if states.ndim != 3:
        raise ValueError(f"{name} must be (n_tokens, d) or (n_layers, n_tokens, d); got shape {states.shape}")
    return states


def naive_matrix_entropy(
    states: np.ndarray,
    *,
    alpha: float = 1.01,
    sigma_scale: float = 1.0,
    pca_dim: int | None = 64,
    eps: float = 1e-6,
    base: float = 2,
) -> np.ndarray:
    """Matrix-based Renyi entropy of each layer's states, one layer at a time.

    Args:
        states: ``(n_tokens, d)`` or ``(n_layers, n_tokens, d)``.
        alpha: Renyi order (``1.0`` gives the von Neumann/Shannon limit).
        sigma_scale: bandwidth = ``sigma_scale`` x median pairwise distance.
        pca_dim: principal directions kept (``None``: no projection, only centring).
        eps: ridge added to the kernel's diagonal.
        base: logarithm base (2: bits).

    Returns:
        ``(n_layers,)`` float64 array (``(1,)`` for 2-D input).
    """
    layers = _as_layers(states, "states")
    out = np.empty(len(layers))
    for i, layer in enumerate(layers):
        z = _pca(layer, pca_dim)
        sigma = sigma_scale * _median_distance(z)
        out[i] = _renyi(_gaussian_kernel(z, sigma, eps), alpha, base)
    return out


def naive_conditional_entropy(
    prompt_states: np.ndarray,
    response_states: np.ndarray,
    *,
    normalization: str = "trace",
    alpha: float = 1.01,
    sigma_scale: float = 1.0,
    pca_dim: int | None = 64,
    eps: float = 1e-6,
    base: float = 2,
) -> np.ndarray:
    """Conditional entropy proxy ``H(prompt + response) - H(prompt)``, layer by layer.

    Args:
        prompt_states: ``(n_p, d)`` or ``(n_layers, n_p, d)``.
        response_states: ``(n_r, d)`` or ``(n_layers, n_r, d)``.
        normalization: ``"trace"`` or ``"plain"`` (see the module docstring).
        alpha, sigma_scale, pca_dim, eps, base: as in :func:`naive_matrix_entropy`.

    Returns:
        ``(n_layers,)`` float64 array.
    """
    if normalization not in ("trace", "plain"):
        raise ValueError(f"normalization must be 'trace' or 'plain'; got {normalization!r}")
    prompts = _as_layers(prompt_states, "prompt_states")
    responses = _as_layers(response_states, "response_states")
    if len(prompts) != len(responses):
        raise ValueError(f"prompt_states has {len(prompts)} layers, response_states {len(responses)}")
    out = np.empty(len(prompts))
    for i, (zp, zr) in enumerate(zip(prompts, responses)):
        n_p, n_r = len(zp), len(zr)
        z = _pca(np.concatenate([zp, zr]), pca_dim)
        sigma = sigma_scale * _median_distance(z)
        joint = _gaussian_kernel(z, sigma, eps)
        if normalization == "trace":
            w = np.concatenate(
                [np.full(n_p, 1.0 / math.sqrt(2 * n_p)), np.full(n_r, 1.0 / math.sqrt(2 * n_r))]
            )
            joint = joint * w[:, None] * w[None, :]
        prompt = _gaussian_kernel(z[:n_p], sigma, eps)
        out[i] = _renyi(joint, alpha, base) - _renyi(prompt, alpha, base)
    return out
