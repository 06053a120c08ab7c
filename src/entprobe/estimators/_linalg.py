"""Batched symmetric eigen-solvers that run on the input's device.

The float64 solvers on CUDA (cuSOLVER/MAGMA) occasionally fail to converge or are
missing from a build; the CPU LAPACK solver is then used for the same matrices, with
a :class:`~entprobe.errors.NumericalFallbackWarning`, and the result is moved back.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TypeVar

import torch

from ..errors import NumericalFallbackWarning

__all__ = ["eigh", "eigvalsh", "sym_product", "top_eigh"]

_T = TypeVar("_T")


def _can_fall_back(mat: torch.Tensor) -> bool:
    """Whether a failure on ``mat``'s device can be retried on the CPU."""
    return mat.device.type != "cpu"


def _first(result: object) -> torch.Tensor:
    return result[0] if isinstance(result, tuple) else result  # type: ignore[return-value]


def _solve(name: str, solver: Callable[[torch.Tensor], _T], mat: torch.Tensor) -> _T:
    if not _can_fall_back(mat):
        return solver(mat)
    try:
        result = solver(mat)
        # Some GPU solvers report no error and hand back NaN instead.
        if not bool(torch.isfinite(_first(result)).all()):
            raise RuntimeError("non-finite eigenvalues")
        return result
    except RuntimeError as exc:  # torch.linalg.LinAlgError is a RuntimeError
        warnings.warn(
            f"torch.linalg.{name} failed on {mat.device} ({type(exc).__name__}: {exc}); "
            "recomputed on the CPU",
            NumericalFallbackWarning,
            stacklevel=3,
        )
        result = solver(mat.cpu())
        if isinstance(result, tuple):
            return tuple(r.to(mat.device) for r in result)  # type: ignore[return-value]
        return result.to(mat.device)  # type: ignore[union-attr]


def eigh(mat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (ascending) and eigenvectors of symmetric ``(..., n, n)`` float64."""
    return _solve("eigh", lambda m: tuple(torch.linalg.eigh(m)), mat)


def eigvalsh(mat: torch.Tensor) -> torch.Tensor:
    """Eigenvalues (ascending) of symmetric ``(..., n, n)`` float64."""
    return _solve("eigvalsh", torch.linalg.eigvalsh, mat)


def _use_subset_solver(mat: torch.Tensor) -> bool:
    """LAPACK's subset solver (``?syevx`` via SciPy) is used on the CPU only; torch has
    no subset eigensolver, and on accelerators the full ``eigh`` is fast enough."""
    return mat.device.type == "cpu"


def top_eigh(mat: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` largest eigenvalues (ascending) and their eigenvectors.

    On the CPU this is LAPACK ``dsyevx`` (Householder tridiagonalisation, bisection for
    the wanted eigenvalues, inverse iteration for their vectors, back-transformation of
    ``k`` vectors only), item by item: the same eigenpairs as the full ``eigh`` to
    round-off at a fraction of its cost (no divide-and-conquer over all ``n`` vectors).
    If it reports a failure (inverse iteration not converging in a tight cluster) the
    full ``eigh`` is used for that item. Elsewhere the full ``eigh`` is sliced.

    Args:
        mat: ``(..., n, n)`` symmetric float64.
        k: ``1 <= k <= n``.

    Returns:
        ``(..., k)`` eigenvalues and ``(..., n, k)`` orthonormal eigenvectors.
    """
    n = mat.shape[-1]
    if not _use_subset_solver(mat) or k >= n:
        vals, vecs = eigh(mat)
        return vals[..., n - k :], vecs[..., n - k :]
    import numpy as np
    import scipy.linalg

    flat = mat.reshape(-1, n, n)
    vals = torch.empty((flat.shape[0], k), dtype=mat.dtype)
    vecs = torch.empty((flat.shape[0], n, k), dtype=mat.dtype)
    for i in range(flat.shape[0]):
        a = np.ascontiguousarray(flat[i].numpy())
        try:
            w, v = scipy.linalg.eigh(a, subset_by_index=[n - k, n - 1], driver="evx", check_finite=False)
        except (np.linalg.LinAlgError, ValueError):
            w_all, v_all = torch.linalg.eigh(flat[i])
            w, v = w_all[n - k :].numpy(), v_all[:, n - k :].numpy()
        vals[i] = torch.from_numpy(np.asarray(w))
        vecs[i] = torch.from_numpy(np.asarray(v))
    return vals.reshape(*mat.shape[:-2], k), vecs.reshape(*mat.shape[:-2], n, k)


def _use_syrk(x: torch.Tensor) -> bool:
    """BLAS ``dsyrk`` (half the flops of a general product) is used for CPU float64; torch
    exposes no symmetric rank-k product, and on accelerators ``matmul`` is used."""
    return x.device.type == "cpu" and x.dtype == torch.float64


def sym_product(x: torch.Tensor, *, inner: str = "features") -> torch.Tensor:
    r"""The symmetric product ``X Xᵀ`` (``inner="features"``, the ``(..., n, n)`` Gram) or
    ``Xᵀ X`` (``inner="tokens"``, the ``(..., d, d)`` scatter matrix) of ``(..., n, d)``.

    On the CPU in float64 this is BLAS ``dsyrk`` through SciPy item by item, which forms
    one triangle only (half the multiply-adds of ``matmul``), mirrored afterwards; the
    result is exactly symmetric either way.
    """
    if not _use_syrk(x):
        prod = x @ x.mT if inner == "features" else x.mT @ x
        return 0.5 * (prod + prod.mT)
    import numpy as np
    from scipy.linalg.blas import dsyrk

    flat = x.reshape(-1, *x.shape[-2:]).contiguous()
    m = flat.shape[-2] if inner == "features" else flat.shape[-1]
    out = torch.empty((flat.shape[0], m, m), dtype=x.dtype)
    for i in range(flat.shape[0]):
        # The transpose of a C-ordered (n, d) item is Fortran-ordered (d, n): no copy.
        at = flat[i].numpy().T
        # dsyrk fills the upper triangle (of a Fortran-ordered result), leaves the rest 0.
        upper = torch.from_numpy(np.asarray(dsyrk(1.0, at, trans=1 if inner == "features" else 0)))
        # One pass: U + Uᵀ, then halve the diagonal it doubled.
        torch.add(upper, upper.mT, out=out[i])
        out[i].diagonal().mul_(0.5)
    return out.reshape(*x.shape[:-2], m, m)
