"""Bounded memory: layers are estimated in chunks sized from the sequence length.

The estimators hold a few ``n x n`` float64 matrices per item (layer) at a time:
the centred Gram, the projected Gram / distances, the kernel and its normalised copy,
LAPACK's working copy. :func:`item_bytes` is that working set, measured with
``entprobe bench`` (peak resident memory of a fresh process) and rounded up, so that
``max_memory // item_bytes`` items in flight stay under the budget. Chunking changes
no number: every item is computed independently (equal to the unchunked call to
float64 round-off; bit for bit on the CPU in the tests).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch

__all__ = ["DEFAULT_MEMORY_FRACTION", "default_max_memory", "item_bytes", "parse_memory", "run_chunked"]

#: Fraction of the memory available when a run starts that the estimators may use by default.
DEFAULT_MEMORY_FRACTION = 0.5

# n x n float64 matrices alive at once per item, at the peak (see the module docstring).
_MATRICES_PER_ITEM = 7


def item_bytes(n: int, *, d: int | None = None) -> int:
    """Peak working set of one item over ``n`` tokens (plus the ``n x d`` states if given)."""
    return 8 * (_MATRICES_PER_ITEM * n * n + (2 * n * d if d else 0))


def _available_cpu_bytes() -> int:
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 4 * 2**30


def default_max_memory(device: torch.device | str = "cpu") -> int:
    """``ENTPROBE_MAX_MEMORY`` if set (``entprobe --max-memory``, e.g. ``8G``), else half of
    the memory available now: ``MemAvailable`` on the CPU, free GPU memory on CUDA."""
    env = os.environ.get("ENTPROBE_MAX_MEMORY", "").strip()
    if env and env.lower() != "auto":
        return parse_memory(env)  # type: ignore[return-value]
    dev = torch.device(device)
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        return int(DEFAULT_MEMORY_FRACTION * free)
    return int(DEFAULT_MEMORY_FRACTION * _available_cpu_bytes())


def parse_memory(text: str | int | None) -> int | None:
    """``"8G"``, ``"512M"``, ``"2.5GiB"``, ``"auto"``/None (the default) or a byte count -> bytes or None.

    Raises:
        ValueError: not a positive size.
    """
    if text is None or (isinstance(text, str) and text.strip().lower() in ("", "auto")):
        return None
    if isinstance(text, int) and not isinstance(text, bool):
        value = float(text)
    else:
        s = str(text).strip().upper().replace("IB", "").rstrip("B")
        units = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
        mult = units.get(s[-1:], 1)
        try:
            value = float(s[:-1] if s[-1:] in units else s) * mult
        except ValueError:
            raise ValueError(f"max memory must look like 8G, 512M or a byte count; got {text!r}") from None
    if not value >= 2**20:
        raise ValueError(f"max memory must be at least 1M; got {text!r}")
    return int(value)


def run_chunked(
    fn: Callable[..., torch.Tensor],
    tensors: tuple[torch.Tensor, ...],
    *,
    per_item: int,
    max_memory: int | None,
) -> torch.Tensor:
    """``fn(*chunks)`` over chunks of the flattened leading axes, concatenated.

    Args:
        fn: maps tensors ``(b, ...)`` to ``(3, b)`` (value, lower, upper).
        tensors: inputs sharing their leading axes (all but the last two).
        per_item: bytes one item needs (:func:`item_bytes`).
        max_memory: budget in bytes, or None for :func:`default_max_memory`.

    Returns:
        ``(3, *leading)``.
    """
    lead = tensors[0].shape[:-2]
    flat = [t.reshape(-1, *t.shape[-2:]) for t in tensors]
    total = flat[0].shape[0]
    budget = default_max_memory(flat[0].device) if max_memory is None else max_memory
    size = max(1, min(total, budget // max(per_item, 1)))
    if size >= total:
        return fn(*flat).reshape(3, *lead)
    parts = [fn(*(t[i : i + size] for t in flat)) for i in range(0, total, size)]
    return torch.cat(parts, dim=-1).reshape(3, *lead)
