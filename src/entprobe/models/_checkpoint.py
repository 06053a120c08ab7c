"""Cheap checks of a local checkpoint, made before the store is touched or the model is
loaded: its safetensors files are whole (:func:`check_safetensors_files`), and its
configuration says nothing the installed transformers would silently ignore
(:func:`check_config_keys`).

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

__all__ = ["check_config_keys", "check_safetensors_files"]

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


def _transformers_major() -> int | None:
    try:
        from importlib.metadata import version

        return int(version("transformers").split(".")[0])
    except Exception:  # not installed, or an unusual version string
        return None


def _ignored_rope(cfg: object, where: str) -> list[str]:
    """Places in a config (nested dicts too) that keep their RoPE settings only under
    transformers 5's ``rope_parameters``, which transformers 4 does not read."""
    found = []
    if isinstance(cfg, dict):
        params = cfg.get("rope_parameters")
        if isinstance(params, dict) and "rope_theta" in params and "rope_theta" not in cfg:
            found.append(f"{where} (rope_theta={params['rope_theta']!r} only in rope_parameters)")
        for key, value in cfg.items():
            if isinstance(value, dict):
                found += _ignored_rope(value, f"{where}.{key}")
    return found


def check_config_keys(model: str | os.PathLike[str]) -> None:
    """Raise :class:`ModelLoadError` when a local checkpoint's configuration holds
    settings the installed transformers would ignore, changing every state from layer 1
    on without an error: today, RoPE settings stored only under ``rope_parameters``
    (written by transformers 5) read by transformers 4, which then uses its default
    ``rope_theta``. Hub ids and files are left alone; unreadable configs are left to
    the loader.

    Raises:
        ModelLoadError: naming the file, the key and what to do.
    """
    folder = Path(model).expanduser()
    major = _transformers_major()
    if not folder.is_dir() or major is None or major >= 5:
        return
    for path in sorted([*folder.glob("*config*.json"), *folder.glob("*/config.json")]):
        try:
            cfg = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        ignored = _ignored_rope(cfg, path.name)
        if ignored:
            raise ModelLoadError(
                f"{path} was written by transformers 5: {', '.join(ignored)}. The installed transformers "
                f"{major}.x does not read rope_parameters and would use its default rope_theta, changing "
                "every state from layer 1 on. Load it under transformers >= 5, or copy rope_theta (and "
                "rope_scaling) next to rope_parameters in that file. Nothing was loaded or written"
            )
