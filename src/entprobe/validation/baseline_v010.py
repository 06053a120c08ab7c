"""The estimators' exact path as it was before the fast path (entprobe 0.1.0), for the bench only.

``entprobe bench`` times this against :mod:`entprobe.estimators` side by side, so the
speed-up of the new exact path is measured in one run on the same inputs. It is the
old algorithm condensed to the options the bench uses (Gaussian kernel, median
bandwidth, ``"trace"``/``"plain"`` proxy), batched over layers in one call:

1. centre the states before the product (as ``estimators._entropy.centred_states`` does), Gram ``Xc Xcᵀ``;
2. PCA by a *full* eigendecomposition of the ``n x n`` centred Gram, vectors included,
   then the projected Gram ``U_k Λ_k U_kᵀ``;
3. distances from it, the median by a *full sort* of the ``n (n-1) / 2`` pairs;
4. kernel, ``εI``, trace normalisation, ``eigvalsh``.

Not used by the product. No degenerate-geometry handling (the bench's inputs have none).
"""

from __future__ import annotations

import torch

__all__ = ["v010_conditional_entropy", "v010_matrix_entropy"]


def _centred_gram(states: torch.Tensor) -> torch.Tensor:
    xc = states - states.mean(dim=-2, keepdim=True)
    _, exponent = torch.frexp(xc.abs().amax(dim=(-2, -1)))
    xc = xc * torch.ldexp(torch.ones_like(exponent, dtype=xc.dtype), -exponent)[..., None, None]
    g = xc @ xc.mT
    return 0.5 * (g + g.mT)


def _pca_d2(gram: torch.Tensor, pca_dim: int | None, rank_bound: int) -> torch.Tensor:
    row = gram.mean(dim=-1, keepdim=True)
    gc = gram - row - row.mT + row.mean(dim=-2, keepdim=True)
    gc = 0.5 * (gc + gc.mT)
    n = gc.shape[-1]
    if pca_dim is not None and pca_dim < min(n - 1, rank_bound):
        vals, vecs = torch.linalg.eigh(gc)
        top_vals = vals[..., -pca_dim:].clamp_min(0)
        top_vecs = vecs[..., -pca_dim:]
        gc = (top_vecs * top_vals[..., None, :]) @ top_vecs.mT
        gc = 0.5 * (gc + gc.mT)
    diag = torch.diagonal(gc, dim1=-2, dim2=-1)
    d2 = (diag[..., :, None] + diag[..., None, :] - 2.0 * gc).clamp_min(0)
    torch.diagonal(d2, dim1=-2, dim2=-1).zero_()
    return d2


def _median_sigma(d2: torch.Tensor, sigma_scale: float) -> torch.Tensor:
    n = d2.shape[-1]
    iu = torch.triu_indices(n, n, offset=1, device=d2.device)
    srt, _ = torch.sort(d2[..., iu[0], iu[1]], dim=-1)
    m = srt.shape[-1]
    med = 0.5 * (srt[..., (m - 1) // 2].sqrt() + srt[..., m // 2].sqrt())
    return med * sigma_scale


def _renyi(
    kernel: torch.Tensor, alpha: float, eps: float, weights: torch.Tensor | None = None
) -> torch.Tensor:
    a = kernel.clone() if weights is None else kernel * weights[:, None] * weights[None, :]
    diag = torch.diagonal(a, dim1=-2, dim2=-1)
    diag += eps if weights is None else eps * weights**2
    a = a / torch.diagonal(a, dim1=-2, dim2=-1).sum(dim=-1)[..., None, None]
    p = torch.linalg.eigvalsh(a).clamp_min(0)
    p = p / p.sum(dim=-1, keepdim=True)
    if alpha == 1.0:
        return -torch.special.xlogy(p, p).sum(dim=-1)
    pos = p > 0
    logp = torch.where(pos, p, torch.ones_like(p)).log()
    terms = torch.where(pos, p * torch.expm1((alpha - 1.0) * logp), torch.zeros_like(p))
    return torch.log1p(terms.sum(dim=-1)) / (1.0 - alpha)


def v010_matrix_entropy(
    states: torch.Tensor,
    *,
    alpha: float = 1.01,
    pca_dim: int | None = 64,
    eps: float = 1e-6,
    sigma_scale: float = 1.0,
) -> torch.Tensor:
    """Prompt entropy (bits) of ``(..., n, d)`` float64 states, the old way."""
    d2 = _pca_d2(_centred_gram(states), pca_dim, states.shape[-1])
    sigma = _median_sigma(d2, sigma_scale)
    k = torch.exp(-d2 / (2.0 * sigma[..., None, None] ** 2))
    return _renyi(k, alpha, eps) / torch.log(torch.tensor(2.0, dtype=torch.float64))


def v010_conditional_entropy(
    prompt: torch.Tensor,
    response: torch.Tensor,
    *,
    normalization: str = "trace",
    alpha: float = 1.01,
    pca_dim: int | None = 64,
    eps: float = 1e-6,
    sigma_scale: float = 1.0,
) -> torch.Tensor:
    """The proxy (bits) of ``(..., n_p, d)`` and ``(..., n_r, d)`` float64 states, the old way."""
    n_p, n_r = prompt.shape[-2], response.shape[-2]
    d2 = _pca_d2(_centred_gram(torch.cat([prompt, response], dim=-2)), pca_dim, prompt.shape[-1])
    sigma = _median_sigma(d2, sigma_scale)
    k = torch.exp(-d2 / (2.0 * sigma[..., None, None] ** 2))
    weights = None
    if normalization == "trace":
        weights = torch.cat(
            [
                torch.full((n_p,), (2.0 * n_p) ** -0.5, dtype=k.dtype, device=k.device),
                torch.full((n_r,), (2.0 * n_r) ** -0.5, dtype=k.dtype, device=k.device),
            ]
        )
    h = _renyi(k, alpha, eps, weights) - _renyi(k[..., :n_p, :n_p].contiguous(), alpha, eps)
    return h / torch.log(torch.tensor(2.0, dtype=torch.float64))
