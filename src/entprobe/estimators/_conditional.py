"""The conditional entropy proxy ``H(prompt ⊕ response) − H(prompt)`` (response level).

One code path: the state-level function forms the Gram of ``[prompt; response]``
and calls the Gram-level core.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ProbeInputError
from ._checks import (
    EXACT,
    EntropyBounds,
    Spectrum,
    as_gram,
    as_states,
    check_alpha,
    check_base,
    check_eps,
    check_max_memory,
    check_n_draws,
    check_n_prompt,
    check_normalization,
    check_pca_dim,
    check_prompt_sigma,
    check_seed,
    check_sigma,
    check_spectrum,
    in_base,
    wrap_interval,
)
from ._chunks import item_bytes, run_chunked
from ._entropy import centred_states, empty_result, warn_degenerate_median
from ._geometry import (
    centre_gram,
    gaussian_kernel,
    median_bandwidth,
    pca_gram,
    squared_distances,
    state_geometry,
    zero_tolerance,
)
from ._linalg import sym_product
from ._spectrum import renyi_of_kernel

__all__ = ["conditional_entropy", "conditional_entropy_from_gram", "subsample_indices"]

_WHAT = "the joint prompt+response tokens"


def subsample_indices(
    n_prompt: int, n_response: int, *, n_draws: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The token draws of ``normalization="subsample"``, reproducibly.

    Protocol: ``rng = numpy.random.default_rng(seed)``; ``m = min(n_prompt,
    n_response)``; for each of the ``n_draws`` draws, first
    ``rng.choice(n_prompt, size=m, replace=False)`` (prompt positions), then
    ``rng.choice(n_response, size=m, replace=False)`` (response positions, counted
    from the first response token). The same draws serve every leading index
    (layer), so each layer sees the same tokens.

    Returns:
        ``n_draws`` pairs ``(prompt_idx, response_idx)`` of int64 arrays of length ``m``.
    """
    rng = np.random.default_rng(seed)
    m = min(n_prompt, n_response)
    draws = []
    for _ in range(n_draws):
        ip = rng.choice(n_prompt, size=m, replace=False)
        ir = rng.choice(n_response, size=m, replace=False)
        draws.append((ip, ir))
    return draws


def _proxy_nats(
    gram: torch.Tensor,
    n_prompt: int,
    *,
    rank_bound: int,
    weighted: bool,
    alpha: float,
    sigma: torch.Tensor | None,
    sigma_scale: float,
    pca_dim: int | None,
    eps: float,
    prompt_sigma: str = "joint",
    spec: Spectrum = EXACT,
) -> torch.Tensor:
    """Plain or trace-normalised proxy for one joint Gram ``(..., n, n)``, prompt rows first.

    ``prompt_sigma="own"``: H(prompt) uses the median distance of the prompt's own
    pairs (in the joint PCA space) instead of the joint set's bandwidth.

    Returns:
        ``(3, ...)``: value, lower and upper bound in nats.
    """
    proj = pca_gram(centre_gram(gram), pca_dim, rank_bound=rank_bound)
    return projected_proxy_nats(
        proj,
        zero_tolerance(gram),
        n_prompt,
        weighted=weighted,
        alpha=alpha,
        sigma=sigma,
        sigma_scale=sigma_scale,
        eps=eps,
        prompt_sigma=prompt_sigma,
        spec=spec,
    )


def projected_proxy_nats(
    proj: torch.Tensor,
    tol: torch.Tensor,
    n_prompt: int,
    *,
    weighted: bool,
    alpha: float,
    sigma: torch.Tensor | None,
    sigma_scale: float,
    eps: float,
    prompt_sigma: str = "joint",
    spec: Spectrum = EXACT,
) -> torch.Tensor:
    """:func:`_proxy_nats` after the PCA: from the ``(..., n, n)`` projected joint Gram
    (consumed) and the zero tolerance ``(...)``; ``(3, ...)`` nats."""
    n = proj.shape[-1]
    n_resp = n - n_prompt
    d2 = squared_distances(proj)
    del proj
    bw = median_bandwidth(d2, tol, sigma=sigma, sigma_scale=sigma_scale)
    warn_degenerate_median(bw.degenerate, _WHAT)
    # Everything the prompt term needs from the distances is taken before the joint
    # kernel overwrites them (one n x n matrix less at the peak).
    d2_p = d2[..., :n_prompt, :n_prompt]
    prompt_identical = d2_p.amax(dim=(-2, -1)) <= tol
    k_p = None
    if prompt_sigma == "own" and sigma is None:
        bw_p = median_bandwidth(d2_p, tol, sigma=None, sigma_scale=sigma_scale)
        warn_degenerate_median(bw_p.degenerate, "the prompt tokens")
        k_p = gaussian_kernel(d2_p, bw_p.sigma)
    k = gaussian_kernel(d2, bw.sigma, out=d2)
    if k_p is None:
        k_p = k[..., :n_prompt, :n_prompt].contiguous()
    weights = None
    if weighted:
        # W (K + εI) W with W = diag(1/sqrt(2 n_side)): each side's block carries half
        # the trace, cross blocks get 1/(2 sqrt(n_p n_r)); a congruence keeps it PSD.
        weights = torch.cat(
            [
                torch.full((n_prompt,), (2.0 * n_prompt) ** -0.5, dtype=k.dtype, device=k.device),
                torch.full((n_resp,), (2.0 * n_resp) ** -0.5, dtype=k.dtype, device=k.device),
            ]
        )
    h_joint = torch.stack(renyi_of_kernel(k, alpha=alpha, eps=eps, weights=weights, spec=spec, inplace=True))
    del k
    h_joint = torch.where(bw.identical, torch.zeros_like(h_joint), h_joint)
    h_prompt = torch.stack(renyi_of_kernel(k_p, alpha=alpha, eps=eps, spec=spec, inplace=True))
    h_prompt = torch.where(prompt_identical, torch.zeros_like(h_prompt), h_prompt)
    # Interval arithmetic: lower = H_joint_lo - H_prompt_hi, upper = H_joint_hi - H_prompt_lo.
    return torch.stack([h_joint[0] - h_prompt[0], h_joint[1] - h_prompt[2], h_joint[2] - h_prompt[1]])


def conditional_nats(
    gram: torch.Tensor,
    n_prompt: int,
    *,
    rank_bound: int,
    normalization: str,
    alpha: float,
    sigma: torch.Tensor | None,
    sigma_scale: float,
    pca_dim: int | None,
    eps: float,
    n_draws: int,
    seed: int,
    prompt_sigma: str = "joint",
    spec: Spectrum = EXACT,
) -> torch.Tensor:
    """The one code path behind both public conditional-entropy functions: ``(3, ...)`` nats."""
    options = dict(
        rank_bound=rank_bound,
        alpha=alpha,
        sigma=sigma,
        sigma_scale=sigma_scale,
        pca_dim=pca_dim,
        eps=eps,
        prompt_sigma=prompt_sigma,
        spec=spec,
    )
    if normalization != "subsample":
        return _proxy_nats(gram, n_prompt, weighted=normalization == "trace", **options)
    n_resp = gram.shape[-1] - n_prompt
    total = torch.zeros((3, *gram.shape[:-2]), dtype=gram.dtype, device=gram.device)
    # A loop over draws (not layers): each draw is one batched call over all layers,
    # and stacking the draws would multiply peak memory by n_draws.
    for ip, ir in subsample_indices(n_prompt, n_resp, n_draws=n_draws, seed=seed):
        idx = torch.from_numpy(np.concatenate([ip, n_prompt + ir])).to(gram.device)
        sub = gram.index_select(-2, idx).index_select(-1, idx)
        total += _proxy_nats(sub, len(ip), weighted=False, **options)
    return total / n_draws


@dataclass(frozen=True)
class _Options:
    """The checked options shared by both public functions."""

    normalization: str
    alpha: float
    sigma: float | None
    sigma_scale: float
    pca_dim: int | None
    eps: float
    log_base: float
    n_draws: int
    seed: int
    prompt_sigma: str
    spec: Spectrum
    max_memory: int | None

    @classmethod
    def check(
        cls,
        normalization: object,
        alpha: object,
        sigma: object,
        sigma_scale: object,
        pca_dim: object,
        eps: object,
        base: object,
        n_draws: object,
        seed: object,
        prompt_sigma: object = "joint",
        spectrum: object = "exact",
        max_memory: object = None,
    ) -> _Options:
        """Check every option (raising :class:`ProbeInputError`) and keep the results."""
        fixed_sigma, sigma_scale = check_sigma(sigma, sigma_scale)
        prompt_sigma = check_prompt_sigma(prompt_sigma, fixed_sigma)
        return cls(
            normalization=check_normalization(normalization),
            alpha=check_alpha(alpha),
            sigma=fixed_sigma,
            sigma_scale=sigma_scale,
            pca_dim=check_pca_dim(pca_dim),
            eps=check_eps(eps),
            log_base=check_base(base),
            n_draws=check_n_draws(n_draws),
            seed=check_seed(seed),
            prompt_sigma=prompt_sigma,
            spec=check_spectrum(spectrum),
            max_memory=check_max_memory(max_memory),
        )

    def fixed_sigma(self, like: torch.Tensor, sigma_factor: torch.Tensor | None) -> torch.Tensor | None:
        """The fixed bandwidth as a tensor (times ``sigma_factor``), or None for the median."""
        if self.sigma is None:
            return None
        sigma = torch.tensor(self.sigma, dtype=like.dtype, device=like.device)
        return sigma if sigma_factor is None else sigma * sigma_factor

    def run_states(self, xc: torch.Tensor, n_prompt: int, *, sigma_factor: torch.Tensor) -> torch.Tensor:
        """The proxy in the requested base from centred joint states ``(..., n, d)``.

        "trace" and "plain" take the projected Gram from the states
        (:func:`~entprobe.estimators._geometry.state_geometry`: no ``n x n``
        eigenproblem when ``d < n``); "subsample" draws principal submatrices of the Gram.
        """
        if self.normalization == "subsample":
            return self.run(sym_product(xc), n_prompt, rank_bound=xc.shape[-1], sigma_factor=sigma_factor)
        proj, tol = state_geometry(xc, self.pca_dim)
        h = projected_proxy_nats(
            proj,
            tol,
            n_prompt,
            weighted=self.normalization == "trace",
            alpha=self.alpha,
            sigma=self.fixed_sigma(proj, sigma_factor),
            sigma_scale=self.sigma_scale,
            eps=self.eps,
            prompt_sigma=self.prompt_sigma,
            spec=self.spec,
        )
        return in_base(h, self.log_base)

    def run(
        self, gram: torch.Tensor, n_prompt: int, *, rank_bound: int, sigma_factor: torch.Tensor | None
    ) -> torch.Tensor:
        """The proxy in the requested base; ``sigma_factor`` rescales a fixed bandwidth."""
        sigma = self.fixed_sigma(gram, sigma_factor)
        h = conditional_nats(
            gram,
            n_prompt,
            rank_bound=rank_bound,
            normalization=self.normalization,
            alpha=self.alpha,
            sigma=sigma,
            sigma_scale=self.sigma_scale,
            pca_dim=self.pca_dim,
            eps=self.eps,
            n_draws=self.n_draws,
            seed=self.seed,
            prompt_sigma=self.prompt_sigma,
            spec=self.spec,
        )
        return in_base(h, self.log_base)


def conditional_entropy(
    prompt_states: np.ndarray | torch.Tensor,
    response_states: np.ndarray | torch.Tensor,
    *,
    normalization: str = "trace",
    alpha: float = 1.01,
    sigma: str | float = "median",
    sigma_scale: float = 1.0,
    pca_dim: int | None = 64,
    eps: float = 1e-6,
    base: float | str = 2,
    n_draws: int = 10,
    seed: int = 0,
    prompt_sigma: str = "joint",
    spectrum: str = "exact",
    max_memory: int | None = None,
) -> float | np.ndarray | torch.Tensor | EntropyBounds:
    r"""Conditional entropy proxy of a response given its prompt (Algorithm 1).

    .. math:: \widehat H_\alpha(Z_r \mid Z_p) = H_\alpha(A_\mathrm{joint}) - H_\alpha(A_{pp})

    PCA is fitted on the concatenated rows ``[prompt; response]`` (centred over all of
    them) and the Gaussian bandwidth ``σ`` is the median pairwise distance over the
    concatenated set (times ``sigma_scale``); both terms use the same kernel
    ``K_ij = exp(-‖z_i - z_j‖² / 2σ²)``. ``A_pp`` is the prompt block of that kernel
    plus ``εI``, divided by its own trace. ``A_joint`` depends on ``normalization``:

    - ``"trace"`` (default): each side carries half of the mass,
      ``A ∝ W (K + εI) W`` with ``W = diag(1/√(2 n_p), …, 1/√(2 n_r), …)``: the prompt
      block is scaled by ``1/(2 n_p)``, the response block by ``1/(2 n_r)``, the cross
      blocks by ``1/(2 √(n_p n_r))``; being a congruence this stays PSD. It is then
      divided by its trace (which is ``1 + ε``).
    - ``"plain"``: Algorithm 1 literally, ``(K + εI) / tr(K + εI)`` over all tokens, so
      the longer side dominates.
    - ``"subsample"``: ``min(n_p, n_r)`` tokens drawn from each side without
      replacement, ``n_draws`` times, and the mean of the ``"plain"`` proxy over the
      draws, each draw re-fitting PCA and ``σ`` on its subsample. The draws follow
      :func:`subsample_indices` (``numpy.random.default_rng(seed)``; per draw the
      prompt positions, then the response positions); they are shared by all layers.

    ``prompt_sigma`` chooses the bandwidth of the ``H(A_pp)`` term: ``"joint"`` (default,
    Algorithm 1 as read above) shares the joint set's ``σ``; ``"own"`` uses the median
    pairwise distance of the prompt tokens alone (still in the joint PCA space, times
    ``sigma_scale``), i.e. ``H(prompt)`` as :func:`matrix_entropy` would bandwidth it.
    The joint term is the same either way. With ``"subsample"`` the prompt's own
    median is taken per draw. A fixed ``sigma`` serves both terms, so ``"own"``
    with a fixed ``sigma`` is refused.

    A side whose tokens all coincide has entropy exactly 0 (see
    :func:`matrix_entropy`); a zero median distance falls back to the median of the
    positive distances with a :class:`~entprobe.errors.DegenerateGeometryWarning`.

    Args:
        prompt_states: ``(n_p, d)`` or ``(..., n_p, d)``, NumPy or torch, float.
        response_states: ``(n_r, d)`` or ``(..., n_r, d)``, the same kind of input
            with the same leading axes and ``d`` (``n_r`` may differ from ``n_p``).
        normalization: ``"trace"``, ``"plain"`` or ``"subsample"``.
        alpha: Rényi order, > 0.
        sigma: ``"median"`` or a fixed positive bandwidth in the PCA-projected space.
        sigma_scale: factor on the median bandwidth (only with ``sigma="median"``).
        pca_dim: principal components kept, or None for no projection.
        eps: ridge added to the kernel diagonal, >= 0.
        base: logarithm base: 2 (bits), ``"e"`` (nats) or any positive number != 1.
        n_draws: draws for ``"subsample"``, >= 1.
        seed: seed of the draws for ``"subsample"``, >= 0.
        prompt_sigma: ``"joint"`` or ``"own"``: the bandwidth of ``H(prompt)``.
        spectrum: ``"exact"`` (all eigenvalues), ``"float32"`` (all eigenvalues in
            float32, uncertified; see :func:`matrix_entropy`) or ``"topk:K"``: the
            certified approximation from ``K`` Ritz pairs per spectrum (see
            :func:`matrix_entropy`); the interval is
            ``[H_joint_lo - H_prompt_hi, H_joint_hi - H_prompt_lo]``.
        max_memory: bytes the estimator may hold at once; layers are processed in
            chunks that fit (None: half the memory available). Numbers do not change.

    Returns:
        A Python float for unbatched input; otherwise shape ``(...)`` in float64,
        NumPy for NumPy input, a torch tensor on the input's device for torch input.
        With ``spectrum="topk:K"`` an :class:`EntropyBounds` ``(value, lower, upper)``
        of such results.

    Raises:
        ProbeInputError: either input is not a float array/tensor, has rank < 2,
            fewer than 2 tokens, NaN/Inf (naming the layer); the two differ in
            ``d``, leading axes, array library or device; or an option is out of
            range (as in :func:`matrix_entropy`, plus an unknown ``normalization``
            or ``prompt_sigma``, ``prompt_sigma="own"`` with a fixed ``sigma``,
            ``n_draws < 1``, ``seed < 0``).

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(20, 8))
        >>> abs(conditional_entropy(x, x)) < 1e-3   # response = prompt: nothing new
        True
    """
    opts = _Options.check(
        normalization,
        alpha,
        sigma,
        sigma_scale,
        pca_dim,
        eps,
        base,
        n_draws,
        seed,
        prompt_sigma,
        spectrum,
        max_memory,
    )
    p, kind_p = as_states(prompt_states, "prompt_states")
    r, kind_r = as_states(response_states, "response_states")
    if kind_p != kind_r:
        where_p = "NumPy" if kind_p.is_numpy else f"torch on {kind_p.device}"
        where_r = "NumPy" if kind_r.is_numpy else f"torch on {kind_r.device}"
        raise ProbeInputError(
            f"prompt_states and response_states must both be NumPy arrays or torch tensors "
            f"on one device; got {where_p} and {where_r}"
        )
    if p.shape[-1] != r.shape[-1]:
        raise ProbeInputError(
            f"prompt_states and response_states must have the same feature dimension; got "
            f"d={p.shape[-1]} (shape {tuple(p.shape)}) and d={r.shape[-1]} (shape {tuple(r.shape)})"
        )
    if p.shape[:-2] != r.shape[:-2]:
        raise ProbeInputError(
            f"prompt_states and response_states must have the same leading axes; got "
            f"{tuple(p.shape[:-2])} (shape {tuple(p.shape)}) and {tuple(r.shape[:-2])} "
            f"(shape {tuple(r.shape)})"
        )
    if p.numel() == 0:
        return empty_result(p.shape[:-2], kind_p)

    def chunk(pc: torch.Tensor, rc: torch.Tensor) -> torch.Tensor:
        xc, factor = centred_states(torch.cat([pc, rc], dim=-2))
        return opts.run_states(xc, pc.shape[-2], sigma_factor=factor)

    n = p.shape[-2] + r.shape[-2]
    h = run_chunked(chunk, (p, r), per_item=item_bytes(n, d=p.shape[-1]), max_memory=opts.max_memory)
    return wrap_interval(h, kind_p, opts.spec.topk)


def conditional_entropy_from_gram(
    gram: np.ndarray | torch.Tensor,
    n_prompt: int,
    *,
    normalization: str = "trace",
    alpha: float = 1.01,
    sigma: str | float = "median",
    sigma_scale: float = 1.0,
    pca_dim: int | None = 64,
    eps: float = 1e-6,
    base: float | str = 2,
    n_draws: int = 10,
    seed: int = 0,
    prompt_sigma: str = "joint",
    spectrum: str = "exact",
    max_memory: int | None = None,
) -> float | np.ndarray | torch.Tensor | EntropyBounds:
    r""":func:`conditional_entropy` from the linear Gram of ``[prompt; response]``.

    ``gram = Z Zᵀ`` with ``Z`` the prompt rows followed by the response rows (what
    :func:`linear_gram` returns for the concatenation). Centring, PCA, distances and
    the bandwidth are derived from it as in :func:`matrix_entropy_from_gram`; PCA is
    skipped when ``pca_dim >= n - 1``. ``"subsample"`` takes principal submatrices
    with the same draws as :func:`conditional_entropy`, so the two agree to round-off.

    Args:
        gram: ``(n, n)`` or ``(..., n, n)`` linear Gram, centred or not (centring
            is applied again and is idempotent), ``n = n_p + n_r``.
        n_prompt: ``n_p``, the number of leading prompt rows; ``2 <= n_p <= n - 2``.
        normalization, alpha, sigma, sigma_scale, pca_dim, eps, base, n_draws, seed,
        prompt_sigma, spectrum, max_memory: as in :func:`conditional_entropy`.

    Returns:
        As :func:`conditional_entropy`.

    Raises:
        ProbeInputError: a bad ``gram`` (as in :func:`matrix_entropy_from_gram`), a
            bad ``n_prompt``, or an option out of range.

    Example:
        >>> import numpy as np
        >>> from entprobe.estimators import linear_gram
        >>> x = np.random.default_rng(0).normal(size=(20, 8))
        >>> g = linear_gram(np.concatenate([x, x]))
        >>> abs(conditional_entropy_from_gram(g, 20)) < 1e-3
        True
    """
    opts = _Options.check(
        normalization,
        alpha,
        sigma,
        sigma_scale,
        pca_dim,
        eps,
        base,
        n_draws,
        seed,
        prompt_sigma,
        spectrum,
        max_memory,
    )
    g, kind = as_gram(gram, "gram")
    n_p = check_n_prompt(n_prompt, g.shape[-1])
    if g.numel() == 0:
        return empty_result(g.shape[:-2], kind)
    h = run_chunked(
        lambda gc: opts.run(gc, n_p, rank_bound=g.shape[-1], sigma_factor=None),
        (g,),
        per_item=item_bytes(g.shape[-1]),
        max_memory=opts.max_memory,
    )
    return wrap_interval(h, kind, opts.spec.topk)
