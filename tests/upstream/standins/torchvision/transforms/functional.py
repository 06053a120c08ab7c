"""``resize`` of PIL images and ``InterpolationMode``, with torchvision's semantics.

torchvision resizes a PIL image with PIL itself (``Image.resize((w, h), mode)``,
which always antialiases), so this gives the same pixels.
"""

from __future__ import annotations

from enum import Enum

from PIL import Image

from .._shell import StandInError, missing


class InterpolationMode(Enum):
    NEAREST = "nearest"
    NEAREST_EXACT = "nearest-exact"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    BOX = "box"
    HAMMING = "hamming"
    LANCZOS = "lanczos"


_PIL = {
    InterpolationMode.NEAREST: Image.NEAREST,
    InterpolationMode.BILINEAR: Image.BILINEAR,
    InterpolationMode.BICUBIC: Image.BICUBIC,
    InterpolationMode.BOX: Image.BOX,
    InterpolationMode.HAMMING: Image.HAMMING,
    InterpolationMode.LANCZOS: Image.LANCZOS,
}


def resize(img, size, interpolation=InterpolationMode.BILINEAR, max_size=None, antialias=True):
    """``size`` is ``[h, w]`` or an int for the shorter side, as in torchvision."""
    if not isinstance(img, Image.Image):
        raise StandInError("the torchvision stand-in resizes PIL images only")
    if max_size is not None:
        raise StandInError("the torchvision stand-in does not implement max_size")
    w, h = img.size
    if isinstance(size, int) or len(size) == 1:
        short = size if isinstance(size, int) else size[0]
        if w <= h:
            new = (short, int(short * h / w))
        else:
            new = (int(short * w / h), short)
    else:
        new = (int(size[1]), int(size[0]))
    if new == (w, h):
        return img
    return img.resize(new, _PIL[interpolation])


__getattr__ = missing("torchvision.transforms.functional")
