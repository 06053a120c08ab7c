"""An independent, plain float64 reference of Algorithm 1 (NumPy/SciPy only).

Written from the method's description, not from the package: PCA by SVD of the
centred states, distances by ``scipy.spatial.distance.pdist``, the bandwidth by
``np.median``, eigenvalues by ``np.linalg.eigvalsh``, explicit loops over layers.
Results are in bits.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import pdist, squareform


def pca_project(z, pca_dim):
    """Centre, then keep the top ``min(pca_dim, n, d)`` principal components."""
    zc = z - z.mean(axis=0)
    if pca_dim is None:
        return zc
    k = min(pca_dim, zc.shape[0], zc.shape[1])
    _, _, vt = np.linalg.svd(zc, full_matrices=False)
    return zc @ vt[:k].T


def renyi_bits(mat, alpha):
    """Rényi entropy (bits) of a trace-one PSD matrix from its eigenvalues."""
    lam = np.clip(np.linalg.eigvalsh(mat), 0.0, None)
    if alpha == 1:
        lam = lam[lam > 0]
        return float(-np.sum(lam * np.log2(lam)))
    return float(np.log2(np.sum(lam**alpha)) / (1.0 - alpha))


def gaussian_kernel(z, sigma=None, sigma_scale=1.0):
    """Kernel and bandwidth of already projected points ``z``."""
    dist = pdist(z)
    if sigma is None:
        sigma = np.median(dist) * sigma_scale
    return np.exp(-(squareform(dist) ** 2) / (2.0 * sigma**2)), sigma


def entropy_of_kernel(kmat, alpha, eps):
    kmat = kmat + eps * np.eye(len(kmat))
    return renyi_bits(kmat / np.trace(kmat), alpha)


def matrix_entropy_2d(x, *, alpha=1.01, kernel="gaussian", sigma=None, sigma_scale=1.0, pca_dim=64, eps=1e-6):
    z = pca_project(np.asarray(x, dtype=np.float64), pca_dim)
    if kernel == "gaussian":
        kmat, _ = gaussian_kernel(z, sigma, sigma_scale)
    else:
        zn = z / np.linalg.norm(z, axis=1, keepdims=True)
        kmat = zn @ zn.T
    return entropy_of_kernel(kmat, alpha, eps)


def matrix_entropy(x, **options):
    """Loops over every leading index; returns a float or an ndarray of the leading shape."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        return matrix_entropy_2d(x, **options)
    lead = x.shape[:-2]
    flat = x.reshape(-1, *x.shape[-2:])
    out = np.empty(len(flat))
    for i in range(len(flat)):
        out[i] = matrix_entropy_2d(flat[i], **options)
    return out.reshape(lead)


def _proxy_2d(p, r, *, normalization, alpha, sigma, sigma_scale, pca_dim, eps, prompt_sigma="joint"):
    n_p, n_r = len(p), len(r)
    z = pca_project(np.concatenate([p, r]), pca_dim)
    kmat, _ = gaussian_kernel(z, sigma, sigma_scale)
    joint = kmat + eps * np.eye(n_p + n_r)
    if normalization == "trace":
        joint[:n_p, :n_p] /= 2 * n_p
        joint[n_p:, n_p:] /= 2 * n_r
        joint[:n_p, n_p:] /= 2 * np.sqrt(n_p * n_r)
        joint[n_p:, :n_p] /= 2 * np.sqrt(n_p * n_r)
    h_joint = renyi_bits(joint / np.trace(joint), alpha)
    if prompt_sigma == "own":
        # the prompt's own median distance, in the joint PCA space
        kprompt, _ = gaussian_kernel(z[:n_p], None, sigma_scale)
    else:
        kprompt = kmat[:n_p, :n_p]
    h_prompt = entropy_of_kernel(kprompt, alpha, eps)
    return h_joint - h_prompt


def conditional_entropy_2d(
    p,
    r,
    *,
    normalization="trace",
    alpha=1.01,
    sigma=None,
    sigma_scale=1.0,
    pca_dim=64,
    eps=1e-6,
    n_draws=10,
    seed=0,
    draws=None,
    prompt_sigma="joint",
):
    """``draws``: the subsample index pairs to use (shared across layers by the caller)."""
    p = np.asarray(p, dtype=np.float64)
    r = np.asarray(r, dtype=np.float64)
    opts = dict(
        alpha=alpha, sigma=sigma, sigma_scale=sigma_scale, pca_dim=pca_dim, eps=eps, prompt_sigma=prompt_sigma
    )
    if normalization != "subsample":
        return _proxy_2d(p, r, normalization=normalization, **opts)
    if draws is None:
        draws = subsample_draws(len(p), len(r), n_draws, seed)
    vals = [_proxy_2d(p[ip], r[ir], normalization="plain", **opts) for ip, ir in draws]
    return float(np.mean(vals))


def subsample_draws(n_p, n_r, n_draws, seed):
    """The documented protocol: default_rng(seed); per draw prompt indices, then response."""
    rng = np.random.default_rng(seed)
    m = min(n_p, n_r)
    out = []
    for _ in range(n_draws):
        ip = rng.choice(n_p, size=m, replace=False)
        ir = rng.choice(n_r, size=m, replace=False)
        out.append((ip, ir))
    return out


def conditional_entropy(p, r, **options):
    p = np.asarray(p, dtype=np.float64)
    r = np.asarray(r, dtype=np.float64)
    if p.ndim == 2:
        return conditional_entropy_2d(p, r, **options)
    draws = None
    if options.get("normalization", "trace") == "subsample":
        draws = subsample_draws(p.shape[-2], r.shape[-2], options.get("n_draws", 10), options.get("seed", 0))
    lead = p.shape[:-2]
    fp = p.reshape(-1, *p.shape[-2:])
    fr = r.reshape(-1, *r.shape[-2:])
    out = np.empty(len(fp))
    for i in range(len(fp)):
        out[i] = conditional_entropy_2d(fp[i], fr[i], draws=draws, **options)
    return out.reshape(lead)


def low_rank_states(rng, n, d, rank, *, noise=1e-2, offset=5.0):
    """Low-rank signal plus small isotropic noise and a common offset.

    The signal's ``rank`` directions have variances from 9 down to 1 per coordinate,
    far above the noise's, so the principal subspace at a cut of ``rank`` is
    well separated from the rest (a clear spectral gap).
    """
    rank = min(rank, d)
    basis, _ = np.linalg.qr(rng.normal(size=(d, rank)))
    scales = np.linspace(3.0, 1.0, rank)
    coef = rng.normal(size=(n, rank)) * scales
    return coef @ basis.T + noise * rng.normal(size=(n, d)) + offset * rng.normal(size=d)
