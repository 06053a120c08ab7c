"""Placeholders only."""

from .._shell import missing
from . import misc  # noqa: F401

__getattr__ = missing("torchvision.ops")
