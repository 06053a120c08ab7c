"""Matrix-based Rényi entropy of token states (the prompt-level probe).

The state-level function forms the linear Gram matrix and goes through the same code
path as the Gram-level one, so results from stored Grams (``--save-grams``) and from
states agree to round-off.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import torch

from ..errors import DegenerateGeometryWarning
from ._checks import (
    EXACT,
    ArrayKind,
    EntropyBounds,
    Spectrum,
    as_gram,
    as_states,
    check_alpha,
    check_base,
    check_eps,
    check_kernel,
    check_max_memory,
    check_pca_dim,
    check_sigma,
    check_spectrum,
    format_indices,
    in_base,
    wrap_interval,
)
from ._chunks import item_bytes, run_chunked
from ._geometry import (
    centre_gram,
    cosine_kernel,
    gaussian_kernel,
    median_bandwidth,
    pca_gram,
    squared_distances,
    state_geometry,
    zero_tolerance,
)
from ._linalg import sym_product
from ._spectrum import renyi_of_kernel

__all__ = [
    "centred_states",
    "empty_result",
    "external_stacklevel",
    "entropy_nats",
    "linear_gram",
    "matrix_entropy",
    "matrix_entropy_from_gram",
    "projected_entropy_nats",
    "warn_degenerate_median",
]


def external_stacklevel() -> int:
    """The ``stacklevel`` at which a warning issued by the calling function points at the
    first frame outside ``entprobe.estimators`` (the user's call, however deep the
    estimator's internal call chain is)."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("entprobe.estimators"):
        frame = frame.f_back
        level += 1
    return level


def warn_degenerate_median(mask: torch.Tensor, what: str) -> None:
    """Warn once per call for the items whose median distance was 0."""
    if bool(mask.any()):
        warnings.warn(
            f"the median pairwise distance of {what} is 0{format_indices(mask)} (more than "
            "half of the token pairs coincide); the bandwidth uses the median of the "
            "positive distances instead",
            DegenerateGeometryWarning,
            stacklevel=external_stacklevel(),
        )


def centred_states(states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Float64 states centred over the token axis and rescaled by a power of two.

    Centring the states (not only ``H G H`` on their Gram) keeps float64 round-off
    relative to the token spread rather than to the states' mean, which in transformer
    layers can be orders of magnitude larger. Each item is then multiplied by a power
    of two (exact in floating point) that brings its largest centred entry into
    ``[0.5, 1)``, so products of the states can neither overflow nor underflow; every
    estimator option except a fixed bandwidth is invariant to that scale.

    Args:
        states: ``(..., n, d)`` float64.

    Returns:
        The centred, rescaled states ``(..., n, d)`` and the factor ``(...)`` they were
        multiplied by (a fixed bandwidth must be multiplied by it too).
    """
    xc = states - states.mean(dim=-2, keepdim=True)
    # A second pass removes the mean's own round-off (the states route has no H G H
    # after the product to do it): tokens that coincide stay exactly at 0.
    xc -= xc.mean(dim=-2, keepdim=True)
    _, exponent = torch.frexp(xc.abs().amax(dim=(-2, -1)))
    factor = torch.ldexp(torch.ones_like(exponent, dtype=xc.dtype), -exponent)
    xc.mul_(factor[..., None, None])
    return xc, factor


def entropy_nats(
    gram: torch.Tensor,
    *,
    rank_bound: int,
    alpha: float,
    kernel: str,
    sigma: torch.Tensor | None,
    sigma_scale: float,
    pca_dim: int | None,
    eps: float,
    what: str,
    spec: Spectrum = EXACT,
) -> torch.Tensor:
    """The one code path behind :func:`matrix_entropy` and :func:`matrix_entropy_from_gram`.

    Args:
        gram: ``(..., n, n)`` float64 linear Gram (centred or not).
        rank_bound: upper bound on the states' dimension, for skipping PCA.
        sigma: ``(...)`` fixed bandwidths in the Gram's units, or None for the median.
        what: how to name the input in warnings.
        spec: the spectrum option (:class:`~entprobe.estimators._checks.Spectrum`).

    Returns:
        ``(3, ...)``: value, lower and upper bound in nats (equal when exact); exactly 0
        where all tokens coincide.
    """
    tol = zero_tolerance(gram)
    proj = pca_gram(centre_gram(gram), pca_dim, rank_bound=rank_bound)
    return projected_entropy_nats(
        proj,
        tol,
        alpha=alpha,
        kernel=kernel,
        sigma=sigma,
        sigma_scale=sigma_scale,
        eps=eps,
        what=what,
        spec=spec,
    )


def projected_entropy_nats(
    proj: torch.Tensor,
    tol: torch.Tensor,
    *,
    alpha: float,
    kernel: str,
    sigma: torch.Tensor | None,
    sigma_scale: float,
    eps: float,
    what: str,
    spec: Spectrum = EXACT,
) -> torch.Tensor:
    """:func:`entropy_nats` after the PCA: from the ``(..., n, n)`` projected Gram
    ``proj`` (consumed: it is overwritten) and the zero tolerance ``tol`` ``(...)``."""
    if kernel == "gaussian":
        d2 = squared_distances(proj)
        del proj
        bw = median_bandwidth(d2, tol, sigma=sigma, sigma_scale=sigma_scale)
        warn_degenerate_median(bw.degenerate, what)
        h = renyi_of_kernel(
            gaussian_kernel(d2, bw.sigma, out=d2), alpha=alpha, eps=eps, spec=spec, inplace=True
        )
        identical = bw.identical
    else:
        k, zero_rows = cosine_kernel(proj, tol)
        identical = zero_rows.all(dim=-1)
        partial = zero_rows.any(dim=-1) & ~identical
        if bool(partial.any()):
            warnings.warn(
                f"{what} has tokens at the centroid{format_indices(partial)} (zero after "
                "centring), which have no direction for the cosine kernel; they enter "
                "through the ridge eps only",
                DegenerateGeometryWarning,
                stacklevel=external_stacklevel(),
            )
        h = renyi_of_kernel(k, alpha=alpha, eps=eps, spec=spec, inplace=True)
    out = torch.stack(h)
    return torch.where(identical, torch.zeros_like(out), out)


def empty_result(shape: torch.Size, kind: ArrayKind) -> np.ndarray | torch.Tensor:
    """The result for a batch with no items: zeros of shape ``(0, ...)`` like the input."""
    out = torch.zeros(shape, dtype=torch.float64, device=kind.device)
    return out.numpy() if kind.is_numpy else out


def linear_gram(states: np.ndarray | torch.Tensor, *, centre: bool = False) -> np.ndarray | torch.Tensor:
    r"""The linear Gram matrix of token states, in float64.

    .. math:: G = X X^\top

    This is all the estimators need from the states (see
    :func:`matrix_entropy_from_gram`), and what ``--save-grams`` stores.

    Args:
        states: ``(n_tokens, d_model)`` or ``(..., n_tokens, d_model)``, any float dtype.
        centre: subtract the token mean (in float64) before the product. Every
            estimator is translation invariant, so the results are the same, but
            round-off then scales with the tokens' spread rather than with their mean,
            which in transformer layers can be orders of magnitude larger.

    Returns:
        ``(..., n_tokens, n_tokens)`` float64: a NumPy array for NumPy input, a torch
        tensor on the input's device for torch input.

    Raises:
        ProbeInputError: not a float array/tensor, rank < 2, fewer than 2 tokens, or
            NaN/Inf values.

    Example:
        >>> import numpy as np
        >>> linear_gram(np.eye(3, 4)).shape
        (3, 3)
    """
    x, kind = as_states(states, "states")
    if centre:
        x = x - x.mean(dim=-2, keepdim=True)
    g = sym_product(x)
    return g.numpy() if kind.is_numpy else g.to(kind.device)


def matrix_entropy(
    states: np.ndarray | torch.Tensor,
    *,
    alpha: float = 1.01,
    kernel: str = "gaussian",
    sigma: str | float = "median",
    sigma_scale: float = 1.0,
    pca_dim: int | None = 64,
    eps: float = 1e-6,
    base: float | str = 2,
    spectrum: str = "exact",
    max_memory: int | None = None,
) -> float | np.ndarray | torch.Tensor | EntropyBounds:
    r"""Matrix-based Rényi entropy of a set of token states.

    With the Gaussian kernel: centre the states, project them on their top
    ``min(pca_dim, n, d)`` principal axes, and with ``σ`` the median pairwise distance
    (times ``sigma_scale``) form

    .. math:: K_{ij} = e^{-\|z_i - z_j\|^2 / 2\sigma^2}, \quad
              A = \frac{K + \varepsilon I}{\operatorname{tr}(K + \varepsilon I)}, \quad
              H_\alpha = \frac{1}{1-\alpha} \log_b \sum_i \lambda_i(A)^\alpha

    (``alpha == 1``: the von Neumann limit ``-Σ λ log λ``; ``alpha == 2``: ``‖A‖_F²``,
    without an eigendecomposition). The value lies in ``[0, log_b n]``.

    With ``kernel="linear"``, ``K`` is the cosine Gram of the centred (and, unless
    ``pca_dim=None``, PCA-projected) states, the prompt entropy of the Layer-by-Layer
    paper (Skean et al., 2025). That paper used no PCA: pass ``pca_dim=None`` to
    compare with it. A token equal to the mean of the set has no direction; it gets a
    zero row and column, so only ``εI`` represents it (with a
    :class:`~entprobe.errors.DegenerateGeometryWarning`).

    Degenerate geometry: if all tokens coincide (every squared distance at most
    ``1e-12`` of the largest squared norm in the Gram, i.e. float64 round-off), the
    entropy is exactly 0 -- the ridge ``εI`` would otherwise add a spurious spread
    of order ``ε``. If the median distance is 0 but some distances are positive, the
    median of the positive distances is used and a
    :class:`~entprobe.errors.DegenerateGeometryWarning` is emitted.

    The computation runs in float64 on the input's device whatever the input dtype,
    through the linear Gram ``X Xᵀ`` (see :func:`matrix_entropy_from_gram`); all
    leading axes are handled by single batched eigen-solver calls.

    Args:
        states: ``(n_tokens, d_model)`` or ``(..., n_tokens, d_model)`` (e.g.
            ``(n_layers + 1, n_tokens, d_model)``), NumPy or torch, any float dtype.
        alpha: Rényi order, > 0.
        kernel: ``"gaussian"`` or ``"linear"`` (cosine).
        sigma: ``"median"``, or a fixed positive bandwidth in the PCA-projected space.
        sigma_scale: factor on the median bandwidth (only with ``sigma="median"``).
        pca_dim: principal components kept, or None for no projection.
        eps: ridge added to the kernel diagonal, >= 0.
        base: logarithm base: 2 (bits), ``"e"`` (nats) or any positive number != 1.
        spectrum: ``"exact"`` (all eigenvalues of the normalised kernel) or
            ``"topk:K"``, the certified approximation for long sequences: ``K`` Ritz
            pairs from a block subspace iteration and the leftover trace mass give a
            guaranteed ``[lower, upper]`` (see ``estimators/_bounds.py``). The PCA
            step stays exact, so the interval is certified for the exact value.
            Exact where ``n <= 2K`` or ``alpha == 2``. ``"float32"``: all eigenvalues,
            computed in float32 (1.2-1.5x faster on the CPU at n = 576 to 4,096;
            measured error 4e-8 to 2e-6 bits there, with no bound; see docs/performance.md).
        max_memory: bytes the estimator may hold at once; layers are processed in
            chunks that fit (None: half of the memory available). Numbers do not
            change.

    Returns:
        A Python float for ``(n_tokens, d_model)`` input; otherwise the entropies of
        shape ``(...)`` in float64, as a NumPy array for NumPy input or a torch tensor
        on the input's device for torch input. With ``spectrum="topk:K"`` an
        :class:`~entprobe.estimators.EntropyBounds` ``(value, lower, upper)`` of such
        results (``value`` the midpoint).

    Raises:
        ProbeInputError: ``states`` is not a float array/tensor, has rank < 2, fewer
            than 2 tokens, no features or NaN/Inf values (naming the layer); or an
            option is out of range (``alpha <= 0``, ``eps < 0``, ``sigma`` or
            ``sigma_scale`` not positive and finite, unknown ``kernel`` or ``sigma``
            string, ``pca_dim < 1``, a bad ``base``).

    Example:
        >>> import numpy as np
        >>> x = 10.0 * np.eye(8)
        >>> round(matrix_entropy(x, sigma=1.0, eps=0.0), 6)  # far-apart tokens: log2(8)
        3.0
    """
    kernel = check_kernel(kernel)
    alpha = check_alpha(alpha)
    fixed_sigma, sigma_scale = check_sigma(sigma, sigma_scale, kernel=kernel)
    pca_dim = check_pca_dim(pca_dim)
    eps = check_eps(eps)
    log_base = check_base(base)
    spec = check_spectrum(spectrum)
    max_memory = check_max_memory(max_memory)
    x, kind = as_states(states, "states")
    if x.numel() == 0:
        return empty_result(x.shape[:-2], kind)

    def chunk(xs: torch.Tensor) -> torch.Tensor:
        xc, factor = centred_states(xs)
        proj, tol = state_geometry(xc, pca_dim)
        del xc
        return projected_entropy_nats(
            proj,
            tol,
            alpha=alpha,
            kernel=kernel,
            sigma=None if fixed_sigma is None else fixed_sigma * factor,
            sigma_scale=sigma_scale,
            eps=eps,
            what="states",
            spec=spec,
        )

    h = run_chunked(chunk, (x,), per_item=item_bytes(x.shape[-2], d=x.shape[-1]), max_memory=max_memory)
    return wrap_interval(in_base(h, log_base), kind, spec.topk)


def matrix_entropy_from_gram(
    gram: np.ndarray | torch.Tensor,
    *,
    alpha: float = 1.01,
    kernel: str = "gaussian",
    sigma: str | float = "median",
    sigma_scale: float = 1.0,
    pca_dim: int | None = 64,
    eps: float = 1e-6,
    base: float | str = 2,
    spectrum: str = "exact",
    max_memory: int | None = None,
) -> float | np.ndarray | torch.Tensor | EntropyBounds:
    r""":func:`matrix_entropy` from the linear Gram ``G = X Xᵀ`` of the states.

    Centring is ``H G H``; PCA keeps the top-``pca_dim`` eigenpairs of the centred
    Gram (skipped when ``pca_dim >= n - 1``, where it is only a rotation); distances
    come from

    .. math:: D_{ij} = \max(G_{ii} + G_{jj} - 2 G_{ij}, 0).

    ``matrix_entropy_from_gram(linear_gram(x))`` equals ``matrix_entropy(x)`` up to
    float64 round-off (relative to the states' mean rather than their spread, since
    the state-level path centres before forming the Gram).

    Precision: distances from a Gram carry an absolute error of about ``1e-16`` times
    the largest squared norm, so a tight cluster ``R/s`` times further from the rest
    than its own spread ``s`` has its small distances known to a relative
    ``1e-16 (R/s)²``. This matters only when the bandwidth is set by such a cluster
    and ``R/s`` exceeds about ``1e4``; it holds for the state-level functions too,
    which share this code path.

    Args:
        gram: ``(n, n)`` or ``(..., n, n)`` linear Gram (centred or not), symmetric (to a relative
            ``1e-5``), NumPy or torch, any float dtype.
        alpha, kernel, sigma, sigma_scale, pca_dim, eps, base, spectrum, max_memory:
            as in :func:`matrix_entropy`.

    Returns:
        As :func:`matrix_entropy`: a float for ``(n, n)``, else shape ``(...)``.

    Raises:
        ProbeInputError: ``gram`` is not a float array/tensor, not square, covers fewer
            than 2 tokens, has NaN/Inf, is not symmetric or has a negative diagonal
            (naming the layer); or an option is out of range as in
            :func:`matrix_entropy`.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(16, 32))
        >>> abs(matrix_entropy_from_gram(linear_gram(x)) - matrix_entropy(x)) < 1e-9
        True
    """
    kernel = check_kernel(kernel)
    alpha = check_alpha(alpha)
    fixed_sigma, sigma_scale = check_sigma(sigma, sigma_scale, kernel=kernel)
    pca_dim = check_pca_dim(pca_dim)
    eps = check_eps(eps)
    log_base = check_base(base)
    spec = check_spectrum(spectrum)
    max_memory = check_max_memory(max_memory)
    g, kind = as_gram(gram, "gram")
    if g.numel() == 0:
        return empty_result(g.shape[:-2], kind)
    fixed = None if fixed_sigma is None else torch.tensor(fixed_sigma, dtype=g.dtype, device=g.device)
    h = run_chunked(
        lambda gc: entropy_nats(
            gc,
            rank_bound=g.shape[-1],
            alpha=alpha,
            kernel=kernel,
            sigma=fixed,
            sigma_scale=sigma_scale,
            pca_dim=pca_dim,
            eps=eps,
            what="gram",
            spec=spec,
        ),
        (g,),
        per_item=item_bytes(g.shape[-1]),
        max_memory=max_memory,
    )
    return wrap_interval(in_base(h, log_base), kind, spec.topk)
