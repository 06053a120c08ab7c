"""Input checks shared by the public estimator entry points.

Every public function checks its inputs once, here, and then works on float64 torch
tensors only. Messages name the argument, what was expected and what arrived, and for
batched input the index that failed (``"at layer 7"`` for one leading axis,
``"at index (1, 7)"`` for several).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from ..errors import ProbeInputError

__all__ = [
    "ArrayKind",
    "as_states",
    "as_gram",
    "check_alpha",
    "check_base",
    "check_eps",
    "check_kernel",
    "check_n_draws",
    "check_n_prompt",
    "check_normalization",
    "check_pca_dim",
    "check_prompt_sigma",
    "check_seed",
    "check_spectrum",
    "EXACT",
    "Spectrum",
    "check_max_memory",
    "check_sigma",
    "format_index",
    "format_indices",
    "wrap_result",
    "wrap_interval",
    "in_base",
    "EntropyBounds",
]

KERNELS = ("gaussian", "linear")
NORMALIZATIONS = ("trace", "plain", "subsample")
PROMPT_SIGMAS = ("joint", "own")

# Relative tolerance for a Gram matrix that should be symmetric (stored Grams may have
# passed through float32 arithmetic, whose round-off is about 1e-7).
_GRAM_SYMMETRY_RTOL = 1e-5


@dataclass(frozen=True)
class ArrayKind:
    """Where the input came from, so the result can go back the same way."""

    is_numpy: bool
    device: torch.device


def format_index(index: tuple[int, ...]) -> str:
    """``" at layer 7"`` for one leading axis, ``" at index (1, 7)"`` for more, ``""`` for none."""
    if not index:
        return ""
    if len(index) == 1:
        return f" at layer {index[0]}"
    return f" at index {index}"


def format_indices(mask: torch.Tensor) -> str:
    """The batch positions where ``mask`` (shape ``(...)``) is true, for a warning."""
    if mask.ndim == 0:
        return ""
    idx = [tuple(int(i) for i in row) for row in torch.nonzero(mask.cpu())]
    if mask.ndim == 1:
        shown = ", ".join(str(i[0]) for i in idx[:20])
        more = f", ... ({len(idx)} in all)" if len(idx) > 20 else ""
        return f" at layer{'s' if len(idx) > 1 else ''} {shown}{more}"
    shown = ", ".join(str(i) for i in idx[:20])
    more = f", ... ({len(idx)} in all)" if len(idx) > 20 else ""
    return f" at index {shown}{more}"


def _to_float64_tensor(x: object, name: str) -> tuple[torch.Tensor, ArrayKind]:
    if isinstance(x, torch.Tensor):
        if not (x.is_floating_point()):
            raise ProbeInputError(f"{name} must have a floating-point dtype; got {x.dtype}")
        return x.detach().to(torch.float64), ArrayKind(is_numpy=False, device=x.device)
    if isinstance(x, np.ndarray):
        if x.dtype.kind != "f":
            raise ProbeInputError(f"{name} must have a floating-point dtype; got {x.dtype}")
        arr = np.asarray(x, dtype=np.float64)
        if not arr.flags.c_contiguous:  # torch.from_numpy refuses negative strides
            arr = arr.copy(order="C")
        return torch.from_numpy(arr), ArrayKind(is_numpy=True, device=torch.device("cpu"))
    raise ProbeInputError(f"{name} must be a NumPy array or a torch tensor of floats; got {type(x).__name__}")


def _check_finite(t: torch.Tensor, name: str) -> None:
    """Raise naming the first batch position holding NaN or Inf."""
    if t.numel() == 0:
        return
    flat = t.reshape(*t.shape[:-2], -1)
    for bad, what in ((torch.isnan(flat), "NaN"), (torch.isinf(flat), "Inf")):
        per_item = bad.any(dim=-1)
        if bool(per_item.any()):
            first = tuple(int(i) for i in torch.nonzero(per_item.cpu())[0]) if per_item.ndim else ()
            raise ProbeInputError(f"{name} has {what}{format_index(first)}; need finite values")


def as_states(x: object, name: str) -> tuple[torch.Tensor, ArrayKind]:
    """Check token states and return them as float64 on their own device.

    Args:
        x: ``(n_tokens, d_model)`` or ``(..., n_tokens, d_model)``, float.
        name: the argument name used in messages.

    Returns:
        The float64 tensor (same shape) and the input's :class:`ArrayKind`.

    Raises:
        ProbeInputError: not a float array/tensor, rank < 2, fewer than 2 tokens,
            no features, or NaN/Inf values.
    """
    t, kind = _to_float64_tensor(x, name)
    if t.ndim < 2:
        raise ProbeInputError(
            f"{name} must have shape (n_tokens, d_model) or (..., n_tokens, d_model); "
            f"got shape {tuple(t.shape)}"
        )
    n, d = t.shape[-2], t.shape[-1]
    if n < 2:
        raise ProbeInputError(
            f"{name} has {n} token{'' if n == 1 else 's'}; need at least 2 (shape {tuple(t.shape)})"
        )
    if d < 1:
        raise ProbeInputError(f"{name} has 0 features; need at least 1 (shape {tuple(t.shape)})")
    _check_finite(t, name)
    return t, kind


def as_gram(x: object, name: str = "gram") -> tuple[torch.Tensor, ArrayKind]:
    """Check an uncentred linear Gram matrix ``X Xᵀ`` and return it as float64.

    A Gram that is symmetric up to a relative ``1e-5`` (float32 round-off) is
    accepted and symmetrised.

    Args:
        x: ``(n, n)`` or ``(..., n, n)``, float.
        name: the argument name used in messages.

    Raises:
        ProbeInputError: not a float array/tensor, rank < 2, not square, n < 2,
            NaN/Inf values, not symmetric, or a negative diagonal entry.
    """
    t, kind = _to_float64_tensor(x, name)
    if t.ndim < 2 or t.shape[-1] != t.shape[-2]:
        raise ProbeInputError(
            f"{name} must be square with shape (n, n) or (..., n, n); got shape {tuple(t.shape)}"
        )
    n = t.shape[-1]
    if n < 2:
        raise ProbeInputError(
            f"{name} covers {n} token{'' if n == 1 else 's'}; need at least 2 (shape {tuple(t.shape)})"
        )
    _check_finite(t, name)
    if t.numel() == 0:
        return t, kind
    scale = t.abs().amax(dim=(-2, -1))
    asym = (t - t.mT).abs().amax(dim=(-2, -1))
    bad = asym > _GRAM_SYMMETRY_RTOL * scale
    if bool(bad.any()):
        first = tuple(int(i) for i in torch.nonzero(bad.cpu())[0]) if bad.ndim else ()
        worst = float((asym / scale.clamp_min(torch.finfo(torch.float64).tiny)).max())
        raise ProbeInputError(
            f"{name} is not symmetric{format_index(first)}: largest |G - Gᵀ| is "
            f"{worst:.3g} of max |G|; expected a Gram matrix X Xᵀ (tolerance {_GRAM_SYMMETRY_RTOL})"
        )
    diag = torch.diagonal(t, dim1=-2, dim2=-1)
    neg = (diag < -_GRAM_SYMMETRY_RTOL * scale[..., None]).any(dim=-1)
    if bool(neg.any()):
        first = tuple(int(i) for i in torch.nonzero(neg.cpu())[0]) if neg.ndim else ()
        raise ProbeInputError(
            f"{name} has a negative diagonal entry{format_index(first)}; "
            "a Gram matrix X Xᵀ has squared norms on its diagonal"
        )
    return 0.5 * (t + t.mT), kind


def _is_real_number(v: object) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def _is_int(v: object) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def check_alpha(alpha: object) -> float:
    """Rényi order: a positive finite number (1 is the von Neumann limit)."""
    if not _is_real_number(alpha) or not math.isfinite(float(alpha)) or float(alpha) <= 0:
        raise ProbeInputError(f"alpha must be a positive finite number; got {alpha!r}")
    return float(alpha)


def check_eps(eps: object) -> float:
    """Ridge added to the kernel diagonal: a finite number >= 0."""
    if not _is_real_number(eps) or not math.isfinite(float(eps)) or float(eps) < 0:
        raise ProbeInputError(f"eps must be a finite number >= 0; got {eps!r}")
    return float(eps)


def check_base(base: object) -> float:
    """Logarithm base: ``"e"`` or a positive finite number other than 1. Returns ln(base)."""
    if isinstance(base, str):
        if base == "e":
            return 1.0
        raise ProbeInputError(f"base must be 2, 'e' or a positive number other than 1; got {base!r}")
    if not _is_real_number(base) or not math.isfinite(float(base)) or float(base) <= 0 or float(base) == 1:
        raise ProbeInputError(f"base must be 2, 'e' or a positive number other than 1; got {base!r}")
    return math.log(float(base))


def check_kernel(kernel: object) -> str:
    if kernel not in KERNELS:
        raise ProbeInputError(f"kernel must be one of {KERNELS}; got {kernel!r}")
    return str(kernel)


def check_normalization(normalization: object) -> str:
    if normalization not in NORMALIZATIONS:
        raise ProbeInputError(f"normalization must be one of {NORMALIZATIONS}; got {normalization!r}")
    return str(normalization)


def check_sigma(
    sigma: object, sigma_scale: object, *, kernel: str = "gaussian"
) -> tuple[float | None, float]:
    """Bandwidth options. Returns ``(sigma or None for the median, sigma_scale)``.

    ``sigma_scale`` multiplies the median only, so combining it with a fixed ``sigma``
    is refused rather than silently ignored; so are bandwidth options with the linear
    kernel, which has no bandwidth.
    """
    if not _is_real_number(sigma_scale) or not math.isfinite(float(sigma_scale)) or float(sigma_scale) <= 0:
        raise ProbeInputError(f"sigma_scale must be a positive finite number; got {sigma_scale!r}")
    if isinstance(sigma, str):
        if sigma != "median":
            raise ProbeInputError(f"sigma must be 'median' or a positive finite number; got {sigma!r}")
        fixed = None
    elif _is_real_number(sigma) and math.isfinite(float(sigma)) and float(sigma) > 0:
        fixed = float(sigma)
    else:
        raise ProbeInputError(f"sigma must be 'median' or a positive finite number; got {sigma!r}")
    if fixed is not None and float(sigma_scale) != 1.0:
        raise ProbeInputError(
            f"sigma_scale scales the median bandwidth only; got sigma={sigma!r} with "
            f"sigma_scale={sigma_scale!r} (pass sigma={fixed * float(sigma_scale)!r} instead)"
        )
    if kernel == "linear" and (fixed is not None or float(sigma_scale) != 1.0):
        raise ProbeInputError(
            f"sigma and sigma_scale apply to kernel='gaussian' only; got sigma={sigma!r}, "
            f"sigma_scale={sigma_scale!r} with kernel='linear'"
        )
    return fixed, float(sigma_scale)


def check_prompt_sigma(prompt_sigma: object, fixed_sigma: float | None) -> str:
    """Bandwidth of H(prompt) in the proxy: ``"joint"`` or ``"own"`` (median bandwidth only)."""
    if prompt_sigma not in PROMPT_SIGMAS:
        raise ProbeInputError(f"prompt_sigma must be one of {PROMPT_SIGMAS}; got {prompt_sigma!r}")
    if prompt_sigma == "own" and fixed_sigma is not None:
        raise ProbeInputError(
            f"prompt_sigma='own' takes the prompt's own median bandwidth; it cannot be combined "
            f"with a fixed sigma={fixed_sigma!r} (which serves both terms)"
        )
    return str(prompt_sigma)


@dataclass(frozen=True)
class Spectrum:
    """How the normalised kernel's spectrum is computed (the ``spectrum`` option).

    Attributes:
        topk: Ritz pairs of the certified approximation (``"topk:K"``), or None for
            every eigenvalue.
        float32: every eigenvalue, computed in float32 (``"float32"``): faster, with a
            small error that carries no bound (the entropy is formed in float64).
    """

    topk: int | None = None
    float32: bool = False


#: ``spectrum="exact"``: every eigenvalue, in float64.
EXACT = Spectrum()


def check_spectrum(spectrum: object) -> Spectrum:
    """``"exact"``, ``"float32"`` or ``"topk:K"`` (K >= 1) -> :class:`Spectrum`."""
    if spectrum == "exact":
        return EXACT
    if spectrum == "float32":
        return Spectrum(float32=True)
    if isinstance(spectrum, str) and spectrum.startswith("topk:"):
        try:
            k = int(spectrum[5:])
        except ValueError:
            k = 0
        if k >= 1:
            return Spectrum(topk=k)
    raise ProbeInputError(
        f"spectrum must be 'exact', 'float32' or 'topk:K' with an integer K >= 1; got {spectrum!r}"
    )


def check_max_memory(max_memory: object) -> int | None:
    """None (half the available memory) or a positive number of bytes (at least 1 MiB)."""
    if max_memory is None:
        return None
    if not _is_int(max_memory) or int(max_memory) < 2**20:
        raise ProbeInputError(f"max_memory must be None or a number of bytes >= 2**20; got {max_memory!r}")
    return int(max_memory)


def check_pca_dim(pca_dim: object) -> int | None:
    if pca_dim is None:
        return None
    if not _is_int(pca_dim) or int(pca_dim) < 1:
        raise ProbeInputError(f"pca_dim must be None or an integer >= 1; got {pca_dim!r}")
    return int(pca_dim)


def check_n_draws(n_draws: object) -> int:
    if not _is_int(n_draws) or int(n_draws) < 1:
        raise ProbeInputError(f"n_draws must be an integer >= 1; got {n_draws!r}")
    return int(n_draws)


def check_seed(seed: object) -> int:
    if not _is_int(seed) or int(seed) < 0:
        raise ProbeInputError(f"seed must be an integer >= 0; got {seed!r}")
    return int(seed)


def check_n_prompt(n_prompt: object, n: int) -> int:
    """Prompt rows of a joint Gram: an integer leaving at least 2 tokens on each side."""
    if not _is_int(n_prompt):
        raise ProbeInputError(f"n_prompt must be an integer; got {n_prompt!r}")
    k = int(n_prompt)
    if k < 2 or n - k < 2:
        raise ProbeInputError(
            f"n_prompt must leave at least 2 tokens on each side of a gram over {n} tokens "
            f"(2 <= n_prompt <= {n - 2}); got n_prompt={k}"
        )
    return k


def wrap_result(value: torch.Tensor, kind: ArrayKind) -> float | np.ndarray | torch.Tensor:
    """A Python float for unbatched input, else NumPy or torch float64 like the input."""
    if value.ndim == 0:
        return float(value)
    if kind.is_numpy:
        return value.cpu().numpy()
    return value.to(kind.device)


class EntropyBounds(NamedTuple):
    """Result of ``spectrum="topk:K"``: a certified interval and its midpoint.

    ``lower <= exact value <= upper`` is guaranteed (see ``estimators/_bounds.py``);
    ``value`` is the midpoint. Each field has the shape and kind of the exact result.
    """

    value: float | np.ndarray | torch.Tensor
    lower: float | np.ndarray | torch.Tensor
    upper: float | np.ndarray | torch.Tensor


def in_base(h: torch.Tensor, log_base: float) -> torch.Tensor:
    """``(3, ...)`` value/lower/upper in nats -> the base with ln(base) ``log_base``
    (a base below 1 flips the sign, so lower and upper swap)."""
    out = h / log_base
    if log_base < 0:
        out = torch.stack([out[0], out[2], out[1]])
    return out


def wrap_interval(h: torch.Tensor, kind: ArrayKind, topk: int | None) -> object:
    """``(3, ...)`` -> the exact result (``topk`` None) or :class:`EntropyBounds`."""
    if topk is None:
        return wrap_result(h[0], kind)
    return EntropyBounds(*(wrap_result(h[i], kind) for i in range(3)))
