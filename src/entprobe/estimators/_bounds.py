r"""Certified bounds on the Rényi entropy of a trace-one PSD matrix from a few Ritz pairs.

``spectrum="topk:K"`` replaces the full eigenvalue computation of the normalised
kernel ``A`` (``n x n``, PSD, ``tr A = 1``) by ``K`` Ritz pairs from a block subspace
iteration (BLAS-3 products ``A Q``, no tridiagonalisation) and turns what they leave
unknown into a guaranteed interval ``[H_lo, H_hi]`` that contains ``H_α(A)``.

Notation: ``λ_1 ≥ … ≥ λ_n ≥ ℓ`` the eigenvalues of ``A``; ``V`` (``n x K``) the
orthonormal Ritz vectors, ``B = Vᵀ A V`` with eigenvalues ``θ_1 ≥ … ≥ θ_K`` (``V``
diagonalises it), residual ``R = A V − V diag(θ)``. ``ℓ`` is a floor on every
eigenvalue: with the ridge, ``W(K + εI)W ⪰ ε W²``, so ``λ_n ≥ ε min(w²) / tr``.

All three facts used are rigorous for *any* orthonormal ``V`` (convergence only
narrows the interval):

1. Ky Fan: ``Σ_{i≤j} θ_i ≤ Σ_{i≤j} λ_i`` for ``j ≤ K``.
2. In the basis ``[V, V⊥]``, ``A = [[diag θ, Cᵀ], [C, D]]`` with ``‖C‖_F = ‖R‖_F``,
   ``D ⪰ 0``, ``tr D = tr A − Σθ`` and ``‖D‖_F² = ‖A‖_F² − Σθ² − 2‖R‖_F²``, so every
   eigenvalue of ``D`` is at most ``d = min(tr D, ‖D‖_F)``. By Weyl,
   ``λ_i ≤ μ_i + ‖C‖_2`` with ``μ`` the eigenvalues of ``diag θ ⊕ D`` in decreasing
   order, and ``μ_i`` is at most the ``i``-th largest of ``θ ∪ {d, …, d}``.
3. ``H_α`` is Schur-concave on the simplex for every ``α > 0`` (``Σ x^α`` is
   Schur-convex for ``α > 1``, with ``1/(1−α) < 0``; Schur-concave for ``α < 1``;
   ``−Σ x log x`` Schur-concave). So a vector majorised by ``λ`` has at least
   its entropy and a vector majorising ``λ`` at most.

Upper bound (most spread): ``m = (θ_1, …, θ_j, u, …, u)`` with
``u = (1 − Σ_{i≤j} θ_i)/(n − j)`` and ``j`` the largest index with ``u ≤ θ_j``.
Its partial sums are at most ``λ``'s (fact 1 up to ``j``; after ``j`` because
the top ``t`` of ``λ_{j+1..n}`` average at least their mean and
``Σ_{i≤j} λ_i ≥ Σ_{i≤j} θ_i``), so ``m ≺ λ`` and ``H(λ) ≤ H(m)``. For ``j = K``
this is the issue's "remaining mass spread evenly".

Lower bound (most packed): caps ``c_i = (i-th largest of θ ∪ {d}^{n−K}) + ‖R‖_F``
bound ``λ_i`` (fact 2). The greedy vector ``g_i = min(c_i, 1 − Σ_{k<i} g_k − (n−i)ℓ)``
(the rest at ``ℓ``) has every partial sum at least ``λ``'s, so ``g ≻ λ`` and
``H(λ) ≥ H(g)``. With exact ``θ`` and ``R = 0`` this is the issue's "pack the
remaining mass at ``λ_K``" (tightened by ``d`` and by the floor ``ℓ``).

Both are widened by :data:`MARGIN` for the round-off of this computation and of
the exact path it is compared with.
"""

from __future__ import annotations

import torch

from ._spectrum import renyi_from_eigenvalues

__all__ = ["MARGIN", "SUBSPACE_ITERATIONS", "renyi_bounds"]

#: Subspace-iteration steps after the first product (each one ``A Q`` and a QR).
SUBSPACE_ITERATIONS = 6

#: Absolute widening (nats) of each bound, plus 1e-12 of ``|H|``: float64 round-off
#: in the Ritz values and in the exact path is ~1e-13 nats at ``n = 10⁴``.
MARGIN = 1e-10


def _ritz(a: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``θ`` (decreasing, ``(..., k)``) and ``‖R‖_F`` (``(...)``) from a block subspace iteration.

    The start block is Gaussian from a fixed seed (so results are reproducible), drawn
    on the CPU and moved to ``a``'s device.
    """
    n = a.shape[-1]
    gen = torch.Generator().manual_seed(0)
    omega = torch.randn((n, k), generator=gen, dtype=a.dtype).to(a.device)
    q, _ = torch.linalg.qr(a @ omega)
    for _ in range(SUBSPACE_ITERATIONS):
        q, _ = torch.linalg.qr(a @ q)
    y = a @ q
    b = q.mT @ y
    theta, w = torch.linalg.eigh(0.5 * (b + b.mT))
    v = q @ w
    r = y @ w - v * theta[..., None, :]
    return theta.flip(-1), torch.linalg.matrix_norm(r)


def renyi_bounds(
    a: torch.Tensor, *, alpha: float, k: int, floor: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Certified ``(H_lo, H_hi)`` in nats of trace-one PSD ``a`` (``(..., n, n)``) from ``k`` Ritz pairs.

    Args:
        a: ``(..., n, n)`` symmetric PSD with unit trace; ``k < n``.
        alpha: Rényi order > 0.
        k: Ritz pairs.
        floor: ``(...)`` a lower bound ``ℓ >= 0`` on every eigenvalue of ``a``.

    Returns:
        Two ``(...)`` tensors with ``H_lo <= H_α(a) <= H_hi``.
    """
    n = a.shape[-1]
    theta, r_fro = _ritz(a, k)
    theta = theta.clamp_min(0)
    tr = torch.diagonal(a, dim1=-2, dim2=-1).sum(dim=-1)
    fro2 = (a * a).sum(dim=(-2, -1))
    tail = (tr - theta.sum(dim=-1)).clamp_min(0)
    d_fro = (fro2 - (theta * theta).sum(dim=-1) - 2.0 * r_fro**2).clamp_min(0).sqrt()
    d_cap = torch.minimum(tail, d_fro)
    floor = floor.to(a.dtype).expand(theta.shape[:-1])

    # Upper bound: θ_1..θ_j then the rest spread evenly, j the largest index with u_j <= θ_j.
    j = torch.arange(k + 1, device=a.device, dtype=a.dtype)
    csum = torch.cat([torch.zeros_like(theta[..., :1]), theta.cumsum(dim=-1)], dim=-1)  # (..., k+1)
    u = (tr[..., None] - csum).clamp_min(0) / (n - j)
    top = torch.cat([torch.full_like(theta[..., :1], float("inf")), theta], dim=-1)
    ok = u <= top
    j_star = (ok * torch.arange(k + 1, device=a.device)).amax(dim=-1)  # j = 0 always ok
    idx = torch.arange(n, device=a.device)
    u_star = torch.gather(u, -1, j_star[..., None])
    theta_pad = torch.cat(
        [theta, torch.zeros(*theta.shape[:-1], n - k, dtype=a.dtype, device=a.device)], dim=-1
    )
    spread = torch.where(idx < j_star[..., None], theta_pad, u_star.expand_as(theta_pad))
    h_hi = renyi_from_eigenvalues(spread, alpha)

    # Lower bound: caps from θ ∪ {d}^(n-k) plus ‖R‖_F, filled greedily above the floor.
    caps = torch.cat([theta, d_cap[..., None].expand(*theta.shape[:-1], n - k)], dim=-1)
    caps = (caps.sort(dim=-1, descending=True).values + r_fro[..., None]).clamp_min(floor[..., None])
    rest = (n - 1 - idx).to(a.dtype)  # positions after i
    room = tr[..., None] - floor[..., None] * rest  # mass positions <= i may take in all
    c_sum = caps.cumsum(dim=-1)
    full = c_sum <= room
    prev = torch.cat([torch.zeros_like(c_sum[..., :1]), c_sum[..., :-1]], dim=-1)
    first_short = full.logical_not() & torch.cat([torch.ones_like(full[..., :1]), full[..., :-1]], dim=-1)
    packed = torch.where(full, caps, floor[..., None].expand_as(caps))
    packed = torch.where(first_short, (room - prev).clamp_min(0), packed)
    h_lo = renyi_from_eigenvalues(packed, alpha)
    h_lo = h_lo - MARGIN - 1e-12 * h_lo.abs()
    h_hi = h_hi + MARGIN + 1e-12 * h_hi.abs()
    return h_lo, h_hi
