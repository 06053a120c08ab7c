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

__all__ = ["eigh", "eigvalsh"]

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
