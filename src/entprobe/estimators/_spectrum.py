"""Matrix-based Rényi entropy of a kernel matrix, in nats.

The kernel gets the ridge ``εI``, optional per-token weights, and is divided by its
trace; the entropy is then a function of its eigenvalues (or, for ``alpha == 2``, of
its Frobenius norm, which needs no eigendecomposition).
"""

from __future__ import annotations

import torch

from ._checks import EXACT, Spectrum
from ._linalg import eigvalsh

__all__ = ["normalised_kernel", "renyi_from_eigenvalues", "renyi_of_kernel"]

# Below this distance from 1 the order is close enough to the von Neumann limit that
# log(sum p^alpha) must be formed as log1p(sum p * expm1((alpha - 1) log p)) to keep
# its relative accuracy; beyond it a log-sum-exp is accurate and cannot overflow.
_NEAR_ONE = 0.5


def renyi_from_eigenvalues(lam: torch.Tensor, alpha: float) -> torch.Tensor:
    r"""Rényi entropy of order ``alpha`` of a spectrum, in nats.

    Eigenvalues are clipped at 0 and rescaled to sum to 1 (which only removes
    round-off for a trace-normalised PSD matrix), then

    .. math:: H_\alpha = \frac{1}{1-\alpha} \log \sum_i p_i^\alpha,
              \qquad H_1 = -\sum_i p_i \log p_i \quad (0 \log 0 = 0).

    Args:
        lam: ``(..., n)`` eigenvalues.
        alpha: order, > 0.

    Returns:
        ``(...)`` entropies in nats.
    """
    lam = lam.clamp_min(0)
    p = lam / lam.sum(dim=-1, keepdim=True)
    if alpha == 1.0:
        return -torch.special.xlogy(p, p).sum(dim=-1)
    pos = p > 0
    logp = torch.where(pos, p, torch.ones_like(p)).log()
    if abs(alpha - 1.0) <= _NEAR_ONE:
        terms = torch.where(pos, p * torch.expm1((alpha - 1.0) * logp), torch.zeros_like(p))
        log_sum = torch.log1p(terms.sum(dim=-1))
    else:
        log_sum = torch.logsumexp(torch.where(pos, alpha * logp, torch.full_like(p, -torch.inf)), dim=-1)
    return log_sum / (1.0 - alpha)


def normalised_kernel(
    kernel: torch.Tensor, *, eps: float, weights: torch.Tensor | None = None, inplace: bool = False
) -> torch.Tensor:
    r"""``A = W (K + εI) W / tr(W (K + εI) W)`` with ``W = diag(weights)`` (or ``I``).

    Args:
        kernel: ``(..., n, n)`` symmetric PSD.
        eps: ridge on the diagonal.
        weights: ``(n,)`` positive per-token weights, or None.
        inplace: overwrite ``kernel`` (saves an ``n x n`` copy and a pass over it).

    Returns:
        ``(..., n, n)`` with unit trace.
    """
    if weights is None:
        a = kernel if inplace else kernel.clone()
    elif inplace:
        a = kernel.mul_(weights[:, None]).mul_(weights[None, :])
    else:
        a = kernel * weights[:, None] * weights[None, :]
    if eps:
        diag = torch.diagonal(a, dim1=-2, dim2=-1)
        diag += eps if weights is None else eps * weights**2
    tr = torch.diagonal(a, dim1=-2, dim2=-1).sum(dim=-1)
    return a.div_(tr[..., None, None])


def renyi_of_kernel(
    kernel: torch.Tensor,
    *,
    alpha: float,
    eps: float,
    weights: torch.Tensor | None = None,
    spec: Spectrum = EXACT,
    inplace: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Matrix-based Rényi entropy of a kernel matrix, in nats, with certified bounds.

    .. math:: H_\alpha(A) = \frac{1}{1-\alpha} \log \operatorname{tr}(A^\alpha),
              \qquad A = \frac{W(K + \varepsilon I)W}{\operatorname{tr}(W(K + \varepsilon I)W)}

    For ``alpha == 2``, ``tr(A²) = ‖A‖_F²`` is used directly. With ``topk=K`` (and
    ``n > 2K``, else the exact spectrum is cheap) only ``K`` Ritz pairs are computed
    and :func:`~entprobe.estimators._bounds.renyi_bounds` gives a guaranteed interval;
    the value is its midpoint.

    Args:
        kernel: ``(..., n, n)`` symmetric PSD.
        alpha: order, > 0.
        eps: ridge on the diagonal.
        weights: ``(n,)`` per-token weights, or None.
        spec: the spectrum option (exact, float32 or ``topk`` Ritz pairs).
        inplace: ``kernel`` may be overwritten (the callers' own kernels are).

    Returns:
        ``(value, lower, upper)``, each ``(...)`` in nats (all equal when exact).
    """
    topk = spec.topk
    raw_diag = None if topk is None else torch.diagonal(kernel, dim1=-2, dim2=-1).clone()
    a = normalised_kernel(kernel, eps=eps, weights=weights, inplace=inplace)
    n = a.shape[-1]
    if alpha == 2.0:
        tr = torch.diagonal(a, dim1=-2, dim2=-1).sum(dim=-1)
        h = -torch.log((a * a).sum(dim=(-2, -1)) / tr**2)
        return h, h, h
    if spec.float32:
        h = renyi_from_eigenvalues(eigvalsh(a.to(torch.float32)).to(a.dtype), alpha)
        return h, h, h
    if topk is None or n <= 2 * topk:
        h = renyi_from_eigenvalues(eigvalsh(a), alpha)
        return h, h, h
    from ._bounds import renyi_bounds

    # Every eigenvalue of W(K + εI)W is at least ε min(w²) (K is PSD); divided by the trace.
    w2 = torch.ones((), dtype=a.dtype, device=a.device) if weights is None else (weights**2).min()
    raw_tr = raw_diag
    raw_tr = (raw_tr if weights is None else raw_tr * weights**2).sum(dim=-1) + eps * (
        n if weights is None else (weights**2).sum()
    )
    floor = eps * w2 / raw_tr
    lo, hi = renyi_bounds(a, alpha=alpha, k=topk, floor=floor)
    return 0.5 * (lo + hi), lo, hi
