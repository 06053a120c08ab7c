"""Lazy images: where an image lives, a cheap header check at load time, and the
full decode on demand.

At load time an image is checked without decoding its pixels: base64 is decoded,
Pillow reads the header (format and size, checked against ``max_pixels``) and
``verify()`` walks the file structure (for PNG, every chunk's CRC). Only a
reference is kept (a path, or a TSV file offset); the pixels are decoded by
:meth:`PromptRecord.load_image`, one image at a time.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings
from dataclasses import dataclass
from typing import Protocol

from PIL import Image, UnidentifiedImageError

from entprobe.errors import DatasetError

from ._rows import RowProblem, read_tsv_record

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "ImageRef",
    "FileImage",
    "TsvCellImage",
    "Base64Image",
    "decode_base64",
    "check_image_bytes",
    "check_image_file",
]

# 8192 x 8192: far above benchmark images, below Pillow's own bomb warning (~89 MP).
DEFAULT_MAX_PIXELS = 8192 * 8192

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")

_DATA_URI = re.compile(r"^data:[\w/+.-]*;base64,", re.IGNORECASE)


class ImageRef(Protocol):
    """Where one image lives; ``open`` decodes it (raising :class:`DatasetError`)."""

    def open(self, mode: str | None = "RGB") -> Image.Image: ...

    def describe(self) -> str: ...


def decode_base64(text: str) -> bytes:
    """Decode base64 image text (whitespace and a ``data:...;base64,`` prefix allowed).

    Raises:
        RowProblem: not valid base64 (kind ``bad-image``).
    """
    text = _DATA_URI.sub("", text.strip(), count=1)
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as err:
        raise RowProblem(f"image is not valid base64 ({err})", "bad-image") from None


def check_image_bytes(data: bytes, max_pixels: int | None) -> tuple[int, int, str]:
    """Header and structure check of an encoded image, without decoding pixels.

    Returns:
        ``(width, height, format)``.

    Raises:
        RowProblem: unknown or corrupt image (``bad-image``), or over ``max_pixels``
            or Pillow's decompression-bomb limit (``image-too-large``).
    """
    return _check(io.BytesIO(data), max_pixels)


def check_image_file(path: str, max_pixels: int | None) -> tuple[int, int, str]:
    """:func:`check_image_bytes` for a file; a missing file is ``missing-image``."""
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        raise RowProblem(f"image file {path} does not exist", "missing-image") from None
    except OSError as err:
        raise RowProblem(f"image file {path} cannot be read ({err})", "missing-image") from None
    with fh:
        return _check(fh, max_pixels)


def _check(fp: io.IOBase, max_pixels: int | None) -> tuple[int, int, str]:
    with warnings.catch_warnings():
        # we enforce our own limit; Pillow's hard limit still raises below
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(fp)
        except Image.DecompressionBombError as err:
            raise RowProblem(f"image is a likely decompression bomb ({err})", "image-too-large") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
            raise RowProblem(f"not a readable image ({err})", "bad-image") from None
        with im:
            width, height = im.size
            fmt = im.format or "unknown"
            _check_pixels(width, height, max_pixels)
            try:
                im.verify()
            except Exception as err:  # Pillow raises many types for corrupt files
                raise RowProblem(f"corrupt {fmt} image ({type(err).__name__}: {err})", "bad-image") from None
    return width, height, fmt


def _check_pixels(width: int, height: int, max_pixels: int | None) -> None:
    if max_pixels is not None and width * height > max_pixels:
        raise RowProblem(
            f"image is {width}x{height} = {width * height:,} pixels, over the limit of "
            f"{max_pixels:,} (max_pixels)",
            "image-too-large",
        )


def _base64_on_open(text: str) -> bytes:
    """:func:`decode_base64` for an image being opened: bad base64 is a :class:`DatasetError`."""
    try:
        return decode_base64(text)
    except RowProblem as err:
        raise DatasetError(str(err)) from None


def _decode(data: bytes, max_pixels: int | None, mode: str | None) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            _check_pixels(*im.size, max_pixels)
            im.load()
        if mode is not None and im.mode != mode:
            im = im.convert(mode)
        return im
    except RowProblem as err:
        raise DatasetError(str(err)) from None
    except Exception as err:  # any decoder failure becomes one error naming the image
        raise DatasetError(f"image cannot be decoded ({type(err).__name__}: {err})") from None


@dataclass(frozen=True)
class FileImage:
    """An image file on disk."""

    path: str
    max_pixels: int | None = DEFAULT_MAX_PIXELS

    def open(self, mode: str | None = "RGB") -> Image.Image:
        try:
            with open(self.path, "rb") as fh:
                data = fh.read()
        except OSError as err:
            raise DatasetError(f"image file {self.path} cannot be read ({err})") from None
        return _decode(data, self.max_pixels, mode)

    def describe(self) -> str:
        return self.path


@dataclass(frozen=True)
class TsvCellImage:
    """A base64 image in one cell of a TSV file, re-read from its byte offset.

    ``key`` is the row's value in column ``key_column`` (the MMBench ``index``),
    checked on reading so that a file changed since loading is noticed.
    """

    path: str
    offset: int
    column: int
    key_column: int
    key: str
    max_pixels: int | None = DEFAULT_MAX_PIXELS

    def open(self, mode: str | None = "RGB") -> Image.Image:
        try:
            fields = read_tsv_record(self.path, self.offset)
        except OSError as err:
            raise DatasetError(f"{self.path} cannot be read ({err})") from None
        if (
            fields is None
            or len(fields) <= max(self.column, self.key_column)
            or fields[self.key_column].strip() != self.key
        ):
            raise DatasetError(
                f"{self.path} changed since it was loaded: no row with index {self.key} "
                f"at byte offset {self.offset}; load the prompt set again"
            )
        return _decode(_base64_on_open(fields[self.column]), self.max_pixels, mode)

    def describe(self) -> str:
        return f"{self.path}@{self.offset}"


@dataclass(frozen=True)
class Base64Image:
    """Base64 image text held in memory (for formats that embed it in JSON)."""

    data: str
    max_pixels: int | None = DEFAULT_MAX_PIXELS

    def open(self, mode: str | None = "RGB") -> Image.Image:
        return _decode(_base64_on_open(self.data), self.max_pixels, mode)

    def describe(self) -> str:
        return f"<base64, {len(self.data):,} chars>"
