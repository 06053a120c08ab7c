"""Token geometry from a linear Gram matrix: centring, PCA, distances, bandwidth.

Everything the estimators need from the states is a function of ``G = X Xᵀ``:

- centring is ``H G H`` with ``H = I - 11ᵀ/n``;
- PCA to ``k`` components keeps the top-``k`` eigenpairs of the centred Gram,
  ``U_k Λ_k U_kᵀ`` (the Gram of the projected, centred states);
- squared distances are ``D_ij = G_ii + G_jj - 2 G_ij``.

From states (:func:`state_geometry`) the same projected Gram is formed without the
``n x n`` eigenproblem when the states have fewer features than tokens: the top-``k``
principal axes then come from the ``d x d`` scatter matrix ``Xcᵀ Xc``.

All functions are batched over leading axes and run on the tensors' device.
"""

from __future__ import annotations

import torch

from ._linalg import sym_product, top_eigh

__all__ = [
    "ZERO_RTOL",
    "BandwidthResult",
    "centre_gram",
    "cosine_kernel",
    "gaussian_kernel",
    "median_bandwidth",
    "pca_gram",
    "squared_distances",
    "state_geometry",
    "zero_tolerance",
]

# Squared distances (and squared norms) at or below ZERO_RTOL times the largest
# squared norm of the Gram as given are treated as 0: float64 round-off in
# G_ii + G_jj - 2 G_ij and in centring is about 1e-16 of that scale, so this leaves
# four orders of magnitude of head-room while staying far below any real spread.
ZERO_RTOL = 1e-12


def zero_tolerance(gram: torch.Tensor) -> torch.Tensor:
    """Per-item threshold ``(...)`` below which a squared distance counts as 0."""
    return ZERO_RTOL * torch.diagonal(gram, dim1=-2, dim2=-1).amax(dim=-1).clamp_min(0)


def centre_gram(gram: torch.Tensor) -> torch.Tensor:
    r"""The Gram of the centred states, ``H G H``.

    .. math:: (HGH)_{ij} = G_{ij} - \bar G_{i\cdot} - \bar G_{\cdot j} + \bar G_{\cdot\cdot}

    Args:
        gram: ``(..., n, n)`` symmetric.

    Returns:
        ``(..., n, n)``, exactly symmetric.
    """
    row = gram.mean(dim=-1, keepdim=True)
    col = gram.mean(dim=-2, keepdim=True)
    tot = row.mean(dim=-2, keepdim=True)
    gc = gram - row
    gc -= col
    gc += tot
    sym = gc.mT.clone()
    gc += sym
    del sym
    return gc.mul_(0.5)


def pca_gram(gc: torch.Tensor, pca_dim: int | None, *, rank_bound: int) -> torch.Tensor:
    r"""Gram of the centred states projected on their top ``pca_dim`` principal axes.

    .. math:: G_k = U_k \max(\Lambda_k, 0)\, U_k^\top

    where ``U_k, Λ_k`` are the top-``k`` eigenpairs of the centred Gram, found by a
    subset eigensolver (:func:`~entprobe.estimators._linalg.top_eigh`: only those
    ``k`` pairs, not all ``n``). The centred states span at most
    ``min(n - 1, rank_bound)`` dimensions, so when ``pca_dim`` is at least that the
    projection is only a rotation and ``gc`` is returned unchanged (no
    eigendecomposition). With equal eigenvalues at the cut the kept subspace is not
    unique; the result then depends on the solver, as it does for any PCA.

    Args:
        gc: ``(..., n, n)`` centred Gram.
        pca_dim: components to keep, or None for no projection.
        rank_bound: an upper bound on the states' dimension (``d_model``; ``n`` when
            only the Gram is known).

    Returns:
        ``(..., n, n)``.
    """
    n = gc.shape[-1]
    if pca_dim is None or pca_dim >= min(n - 1, rank_bound):
        return gc
    top_vals, top_vecs = top_eigh(gc, pca_dim)
    top_vals = top_vals.clamp_min(0)
    proj = (top_vecs * top_vals[..., None, :]) @ top_vecs.mT
    sym = proj.mT.clone()
    proj += sym
    del sym
    return proj.mul_(0.5)


def state_geometry(xc: torch.Tensor, pca_dim: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The projected Gram of :func:`pca_gram` and the tolerance of :func:`zero_tolerance`,
    from centred states rather than from their Gram.

    With ``n`` tokens and ``d`` features, the Gram ``G = Xc Xcᵀ`` and the scatter
    matrix ``S = Xcᵀ Xc`` share their nonzero eigenvalues, and with ``S v = λ v``

    .. math:: U_k \Lambda_k U_k^\top = X_c V_k V_k^\top X_c^\top = Y Y^\top,
              \qquad Y = X_c V_k \in \mathbb{R}^{n \times k},

    so when ``d < n`` the eigenproblem is solved on the ``d x d`` matrix (its cost no
    longer grows with ``n``) and no ``n x n`` Gram is formed before the projection.
    Otherwise (``n <= d``, or no projection) this is ``pca_gram`` of the Gram. The
    states are centred already, so the Gram needs no ``H G H``. Both routes give the
    same matrix to float64 round-off.

    Args:
        xc: ``(..., n, d)`` float64 states, centred over the token axis.
        pca_dim: components to keep, or None for no projection.

    Returns:
        ``(..., n, n)`` projected Gram and ``(...)`` tolerance (``ZERO_RTOL`` times the
        largest squared norm, the Gram's largest diagonal entry).
    """
    n, d = xc.shape[-2], xc.shape[-1]
    tol = ZERO_RTOL * (xc * xc).sum(dim=-1).amax(dim=-1)
    if pca_dim is None or pca_dim >= min(n - 1, d) or d >= n:
        return pca_gram(sym_product(xc), pca_dim, rank_bound=d), tol
    top_vals, top_vecs = top_eigh(sym_product(xc, inner="tokens"), pca_dim)
    # As pca_gram clamps the kept eigenvalues at 0: an axis with none is dropped.
    y = xc @ (top_vecs * (top_vals > 0).to(xc.dtype)[..., None, :])
    return sym_product(y), tol


def squared_distances(gram: torch.Tensor) -> torch.Tensor:
    r"""Pairwise squared Euclidean distances from a Gram, clamped at 0.

    .. math:: D_{ij} = \max(G_{ii} + G_{jj} - 2 G_{ij},\ 0), \qquad D_{ii} = 0

    Args:
        gram: ``(..., n, n)``.

    Returns:
        ``(..., n, n)`` symmetric with a zero diagonal.
    """
    diag = torch.diagonal(gram, dim1=-2, dim2=-1)
    d2 = gram * -2.0
    d2 += diag[..., :, None]
    d2 += diag[..., None, :]
    d2.clamp_min_(0)
    torch.diagonal(d2, dim1=-2, dim2=-1).zero_()
    return d2


def _select(flat: torch.Tensor, ks: torch.Tensor) -> torch.Tensor:
    """Order statistics: ``out[b, j]`` = the ``ks[b, j]``-th smallest (0-based) of ``flat[b]``.

    By selection (introselect: ``numpy.partition`` on the CPU, ``torch.kthvalue``
    elsewhere), linear in the number of values, not a full sort.
    """
    out = torch.empty(ks.shape, dtype=flat.dtype, device=flat.device)
    for b in range(flat.shape[0]):
        wanted = sorted({int(k) for k in ks[b]})
        if flat.device.type == "cpu":
            import numpy as np

            part = np.partition(flat[b].numpy(), wanted)
            got = {k: float(part[k]) for k in wanted}
            out[b] = torch.tensor([got[int(k)] for k in ks[b]], dtype=flat.dtype)
        else:
            for j, k in enumerate(ks[b]):
                out[b, j] = torch.kthvalue(flat[b], int(k) + 1).values
    return out


def _median_distance(d2: torch.Tensor, tol: torch.Tensor | None) -> torch.Tensor:
    """Median over pairs ``i < j`` of ``sqrt(d2_ij)`` (NumPy convention: the mean of the two
    middle values for an even count), counting only pairs above ``tol`` if given.
    Empty selections give +inf.

    Works on the full symmetric matrix (no copy of the upper triangle): its ``n²``
    entries are the ``n`` zeros of the diagonal, which sort first, and every pair
    twice, so the pairs' ``j``-th smallest is the full matrix's ``(c0 + 2j)``-th,
    with ``c0`` the entries at or below the threshold.
    """
    n = d2.shape[-1]
    lead = d2.shape[:-2]
    flat = d2.reshape(-1, n * n)
    if tol is None:
        c0 = torch.full((flat.shape[0],), n, dtype=torch.int64)
    else:
        c0 = (flat <= tol.reshape(-1, 1)).sum(dim=-1).cpu()
    count = (n * n - c0) // 2
    lo = ((count - 1) // 2).clamp_min(0)
    hi = (count // 2).clamp_max(max(n * (n - 1) // 2 - 1, 0))
    ks = torch.stack([(c0 + 2 * lo).clamp_max(n * n - 1), (c0 + 2 * hi).clamp_max(n * n - 1)], dim=-1)
    vals = _select(flat, ks)
    # sqrt is monotone, so the middle squared distances are the middle distances.
    med = 0.5 * (vals[:, 0].sqrt() + vals[:, 1].sqrt())
    med = torch.where(count.to(med.device) > 0, med, torch.full_like(med, float("inf")))
    return med.reshape(lead)


class BandwidthResult:
    """The bandwidth per item and the degenerate cases met on the way.

    Attributes:
        sigma: ``(...)`` bandwidth; 1.0 where ``identical`` (unused there).
        identical: ``(...)`` all tokens coincide (every squared distance <= tolerance).
        degenerate: ``(...)`` the median distance was 0 and the median of the positive
            distances was used instead.
    """

    __slots__ = ("sigma", "identical", "degenerate")

    def __init__(self, sigma: torch.Tensor, identical: torch.Tensor, degenerate: torch.Tensor) -> None:
        self.sigma = sigma
        self.identical = identical
        self.degenerate = degenerate


def median_bandwidth(
    d2: torch.Tensor, tol: torch.Tensor, *, sigma: torch.Tensor | None, sigma_scale: float
) -> BandwidthResult:
    r"""The Gaussian bandwidth: ``sigma`` if given, else the median heuristic.

    .. math:: \sigma = s \cdot \operatorname{median}_{i<j} \sqrt{D_{ij}}

    The median is found by selection (linear time), not by sorting the pairs.

    If that median is 0 (more than half of the pairs coincide) but some distances are
    positive, the median of the positive distances is used instead (the caller warns).

    Args:
        d2: ``(..., n, n)`` squared distances.
        tol: ``(...)`` squared distances at or below it count as 0.
        sigma: ``(...)`` fixed bandwidths, or None for the median.
        sigma_scale: factor ``s`` on the median.

    Returns:
        A :class:`BandwidthResult`.
    """
    identical = d2.amax(dim=(-2, -1)) <= tol
    if sigma is not None:
        sig = sigma.to(dtype=d2.dtype, device=d2.device).expand(identical.shape)
        degenerate = torch.zeros_like(identical)
    else:
        med = _median_distance(d2, None)
        degenerate = (med <= tol.sqrt()) & ~identical
        if bool(degenerate.any()):
            med = torch.where(degenerate, _median_distance(d2, tol), med)
        sig = med * sigma_scale
    sig = torch.where(identical, torch.ones_like(sig), sig)
    return BandwidthResult(sig, identical, degenerate)


def gaussian_kernel(
    d2: torch.Tensor, sigma: torch.Tensor, *, out: torch.Tensor | None = None
) -> torch.Tensor:
    r"""``K_ij = exp(-D_ij / (2 σ²))`` with one ``σ`` per item.

    Args:
        d2: ``(..., n, n)`` squared distances.
        sigma: ``(...)`` bandwidths.
        out: ``d2`` itself to overwrite it (saves one ``n x n`` matrix), or None.
    """
    scale = -1.0 / (2.0 * sigma[..., None, None] ** 2)
    if out is None:
        return torch.exp(d2 * scale)
    return out.mul_(scale).exp_()


def cosine_kernel(gc: torch.Tensor, tol: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Cosine similarities of the (centred) states from their Gram.

    .. math:: K_{ij} = \frac{G_{ij}}{\sqrt{G_{ii} G_{jj}}}

    A row whose squared norm is at or below ``tol`` has no direction; it gets a zero
    row and column (so only the ridge ``εI`` represents it later).

    Args:
        gc: ``(..., n, n)`` centred (and possibly projected) Gram.
        tol: ``(...)`` squared norms at or below it count as 0.

    Returns:
        ``K`` of shape ``(..., n, n)`` and the zero-row mask ``(..., n)``.
    """
    diag = torch.diagonal(gc, dim1=-2, dim2=-1)
    zero = diag <= tol[..., None]
    inv = torch.where(zero, torch.zeros_like(diag), diag.clamp_min(torch.finfo(diag.dtype).tiny).rsqrt())
    k = gc * inv[..., :, None] * inv[..., None, :]
    torch.diagonal(k, dim1=-2, dim2=-1).copy_((~zero).to(k.dtype))
    return k, zero
