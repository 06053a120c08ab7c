"""A cheap integrity check of a local checkpoint's safetensors files, made before the
store is touched or the model is loaded.

A truncated download otherwise surfaces as a raw ``SafetensorError`` from deep inside
``from_pretrained``. The check reads only each file's header (8-byte length, then a
JSON table of tensors with byte offsets) and compares the end of the last tensor
with the file's size; nothing is loaded.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

from ..errors import ModelLoadError

__all__ = ["check_safetensors_files"]

_MAX_HEADER = 100 * 1024 * 1024


def _problem(path: Path) -> str | None:
    size = path.stat().st_size
    if size < 8:
        return f"{size} bytes, shorter than a safetensors header"
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        if n > _MAX_HEADER or 8 + n > size:
            return f"header of {n} bytes does not fit in the file's {size} bytes"
        try:
            header = json.loads(f.read(n))
        except ValueError as exc:
            return f"unreadable header ({exc})"
    if not isinstance(header, dict):
        return "header is not a JSON object"
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            end = max(end, int(info["data_offsets"][1]))
        except (KeyError, TypeError, ValueError, IndexError):
            return f"tensor {name!r} has no data offsets"
    if 8 + n + end > size:
        return f"its tensors need {8 + n + end} bytes but the file has {size}"
    return None


def check_safetensors_files(model: str | os.PathLike[str]) -> None:
    """Raise :class:`ModelLoadError` if a ``*.safetensors`` file of the local folder
    ``model`` is truncated or malformed (hub ids and non-folders are left alone).

    Raises:
        ModelLoadError: naming the file, what is wrong and what to do.
    """
    folder = Path(model).expanduser()
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("*.safetensors")):
        try:
            problem = _problem(path)
        except OSError as exc:
            problem = f"cannot be read ({exc.strerror or exc})"
        if problem is not None:
            raise ModelLoadError(
                f"checkpoint file {path} is damaged or incomplete: {problem}. A download that "
                f"stopped early does this; download the model again. Nothing was loaded or written"
            )
