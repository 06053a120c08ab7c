"""Placeholders only (``torchvision.utils.save_image`` / ``make_grid`` are never run)."""

from ._shell import missing

__getattr__ = missing("torchvision.utils")
