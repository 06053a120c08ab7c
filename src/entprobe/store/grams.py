"""Gram files of ``--save-grams``: what the estimators need, without the model.

The estimators depend on the states only through the linear Gram ``G = X Xᵀ``
(and are translation invariant, so the Gram of the centred states serves). One
safetensors file per (dataset, sample, level) keeps:

- ``gram``: float64 ``(n_layers + 1, n, n)``, of the centred states. Prompt level:
  the Gram of the prompt's content states. Response levels: the Gram of
  ``[prompt; response]``, prompt rows first, with ``n_prompt`` in the metadata.
- metadata ``entprobe``: JSON with the sample's columns (dataset, sample_id, level,
  modality, category, ...), the model and adapter, ``n_prompt``, the run's
  configuration and ``gram_id``: the hash of the configuration minus the estimator
  options (the Gram does not depend on them).

Layout: ``ROOT/<gram_id>/<dataset>/<level>/<sample_id>.safetensors`` (names made
file-system safe), so runs whose Grams differ never overwrite each other and runs
that differ only in estimator options share files. Files are written to a temporary
name and renamed, so a killed run never leaves a half-written file. The probe writes
each Gram under a *pending* name, commits the sample's store rows, then renames it:
a kill in between leaves a pending file that the next run of the same command
publishes (its rows are in the store) or removes (they are not), so there is never
a Gram file without its rows nor rows whose Gram went missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import StoreError

__all__ = [
    "FORMAT",
    "PENDING_SUFFIX",
    "GramRecord",
    "gram_path",
    "iter_gram_files",
    "load_gram",
    "pending_grams",
    "publish_gram",
    "published_path",
    "read_gram_meta",
    "safe_name",
    "save_gram",
]

FORMAT = "entprobe-gram/1"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str) -> str:
    """A file-system-safe name; a hash suffix keeps distinct names distinct."""
    safe = _SAFE.sub("_", str(text)).strip("._") or "_"
    if safe != text or len(safe) > 100:
        digest = hashlib.sha1(str(text).encode("utf-8")).hexdigest()[:10]
        safe = f"{safe[:80]}-{digest}"
    return safe


@dataclass
class GramRecord:
    """One Gram file.

    Attributes:
        gram: ``(n_layers + 1, n, n)`` float64.
        n_prompt: leading prompt rows (response levels), None at the prompt level.
        meta: the metadata (see the module docstring).
        path: the file.
    """

    gram: np.ndarray
    n_prompt: int | None
    meta: dict[str, Any]
    path: Path


def gram_path(root: str | os.PathLike[str], gram_id: str, dataset: str, sample_id: str, level: str) -> Path:
    """Where the Gram of (dataset, sample, level) of configuration ``gram_id`` lives."""
    return (
        Path(root)
        / safe_name(gram_id)
        / safe_name(dataset)
        / safe_name(level)
        / f"{safe_name(sample_id)}.safetensors"
    )


def save_gram(
    root: str | os.PathLike[str],
    gram: Any,
    *,
    meta: Mapping[str, Any],
    n_prompt: int | None = None,
    publish: bool = True,
) -> Path:
    """Write one Gram file atomically (temporary file, then rename).

    Args:
        root: the ``--save-grams`` folder.
        gram: ``(n_layers + 1, n, n)`` array or tensor (any device); stored float64.
        meta: JSON-able metadata with at least ``gram_id``, ``dataset``,
            ``sample_id`` and ``level``.
        n_prompt: leading prompt rows, for the response levels.
        publish: False: leave the complete file under its *pending* name
            (``.<name>.<pid>.pending``, skipped by :func:`iter_gram_files`) for
            :func:`publish_gram` once the sample's store rows are committed.

    Returns:
        The file's path (the pending one when ``publish`` is False).
    """
    from safetensors.numpy import save_file

    missing = [k for k in ("gram_id", "dataset", "sample_id", "level") if k not in meta]
    if missing:
        raise StoreError(f"Gram metadata lacks {missing}")
    if hasattr(gram, "detach"):
        gram = gram.detach().to("cpu").double().numpy()
    array = np.ascontiguousarray(np.asarray(gram, dtype=np.float64))
    if array.ndim != 3 or array.shape[-1] != array.shape[-2]:
        raise StoreError(f"gram must have shape (n_layers + 1, n, n); got {array.shape}")
    path = gram_path(root, meta["gram_id"], meta["dataset"], meta["sample_id"], meta["level"])
    path.parent.mkdir(parents=True, exist_ok=True)
    body = dict(meta)
    body["n_prompt"] = None if n_prompt is None else int(n_prompt)
    metadata = {"format": FORMAT, "entprobe": json.dumps(body, sort_keys=True, default=str)}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pending = path.with_name(f".{path.name}.{os.getpid()}{PENDING_SUFFIX}")
    try:
        save_file({"gram": array}, str(tmp), metadata=metadata)
        os.replace(tmp, path if publish else pending)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path if publish else pending


#: Suffix of a Gram file written but not yet published (its store rows not yet committed).
PENDING_SUFFIX = ".pending"


def published_path(pending: str | os.PathLike[str]) -> Path:
    """The final path of a pending Gram file ``.<name>.<pid>.pending``."""
    pending = Path(pending)
    stem = pending.name[1 : -len(PENDING_SUFFIX)]
    return pending.with_name(stem.rsplit(".", 1)[0])


def publish_gram(pending: str | os.PathLike[str]) -> Path:
    """Rename a pending Gram file to its final name (after its rows are committed)."""
    final = published_path(pending)
    os.replace(pending, final)
    return final


def pending_grams(root: str | os.PathLike[str], gram_id: str) -> list[tuple[Path, int | None]]:
    """The pending Gram files of configuration ``gram_id`` under ``root``, each with
    the pid that wrote it (None if unreadable)."""
    folder = Path(root) / safe_name(gram_id)
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.rglob(f".*{PENDING_SUFFIX}")):
        try:
            pid: int | None = int(path.name[: -len(PENDING_SUFFIX)].rsplit(".", 1)[1])
        except (IndexError, ValueError):
            pid = None
        out.append((path, pid))
    return out


def read_gram_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata of one Gram file, without reading the Gram.

    Raises:
        StoreError: not an entprobe Gram file, or unreadable.
    """
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="numpy") as f:
            metadata = f.metadata() or {}
    except Exception as exc:
        # A file cut short keeps its header: read the metadata from it directly, so
        # the sample can be named (and recorded as failed) by whoever loads it.
        metadata = _raw_header_metadata(path)
        if metadata is None:
            raise StoreError(f"cannot read Gram file {path}: {exc}") from exc
    return json.loads(_checked_format(metadata, path)["entprobe"])


def _checked_format(metadata: dict[str, str], path: Path) -> dict[str, str]:
    """A Gram file's safetensors ``metadata``, once it is known to be entprobe's.

    Raises:
        StoreError: any other file.
    """
    if metadata.get("format") != FORMAT:
        raise StoreError(f"{path} is not an entprobe Gram file (format {metadata.get('format')!r})")
    return metadata


def _raw_header_metadata(path: Path) -> dict[str, str] | None:
    """``__metadata__`` of a safetensors header read by hand (8-byte little-endian
    length, then JSON), or None if even that is unreadable."""
    import struct

    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return None
            (n,) = struct.unpack("<Q", head)
            if n > 100 * 1024 * 1024:
                return None
            header = json.loads(f.read(n))
        meta = header.get("__metadata__") if isinstance(header, dict) else None
        return meta if isinstance(meta, dict) else None
    except (OSError, ValueError):
        return None


def load_gram(path: str | os.PathLike[str]) -> GramRecord:
    """Read one Gram file.

    Raises:
        StoreError: not an entprobe Gram file, or unreadable.
    """
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="numpy") as f:
            metadata = _checked_format(f.metadata() or {}, path)
            gram = f.get_tensor("gram")
    except StoreError:
        raise
    except Exception as exc:
        raise StoreError(f"cannot read Gram file {path}: {exc}") from exc
    meta = json.loads(metadata["entprobe"])
    n_prompt = meta.get("n_prompt")
    return GramRecord(gram=gram, n_prompt=None if n_prompt is None else int(n_prompt), meta=meta, path=path)


def iter_gram_files(root: str | os.PathLike[str]) -> Iterator[Path]:
    """The Gram files under ``root``, in sorted order (temporary files skipped).

    Raises:
        StoreError: ``root`` is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise StoreError(f"Gram folder {root} does not exist")
    for path in sorted(root.rglob("*.safetensors")):
        if not path.name.startswith("."):
            yield path
