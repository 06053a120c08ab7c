"""Placeholders only (timm's dataset factory names them at import time)."""

from ._shell import missing

__getattr__ = missing("torchvision.datasets")
