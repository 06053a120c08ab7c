"""Test-only stand-in for ``torchvision`` (PyPI's build breaks the pinned CPU torch).

timm imports torchvision at module level (``torchvision.ops.misc.FrozenBatchNorm2d``,
``torchvision.transforms``) but Harmon's MAR only uses timm's ViT ``Block``;
JanusFlow's image processor really calls ``transforms.functional.resize`` on PIL
images (bicubic, antialiased) and its CLIP tower may build ``transforms.Normalize``.
Those two are implemented here with the same semantics as torchvision on PIL images /
float tensors; every other name is a placeholder that raises when used. Never part
of the product.
"""

from __future__ import annotations

from . import datasets, ops, transforms, utils  # noqa: F401
from ._shell import missing

__version__ = "0.0.0+entprobe-test-standin"
__getattr__ = missing("torchvision")
