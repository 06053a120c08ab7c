"""``Normalize`` for float tensors; ``InterpolationMode``; everything else a placeholder."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .._shell import missing
from . import functional  # noqa: F401
from .functional import InterpolationMode  # noqa: F401


class Normalize(torch.nn.Module):
    """``(x - mean) / std`` per channel of a ``(..., C, H, W)`` float tensor, as torchvision."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], inplace: bool = False) -> None:
        super().__init__()
        self.mean, self.std = list(mean), list(std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = torch.as_tensor(self.mean, dtype=x.dtype, device=x.device).view(-1, 1, 1)
        std = torch.as_tensor(self.std, dtype=x.dtype, device=x.device).view(-1, 1, 1)
        return (x - mean) / std


__getattr__ = missing("torchvision.transforms")
