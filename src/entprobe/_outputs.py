"""Checks of output folders, made before any expensive work.

One helper, :func:`writable_folder`, for every command that writes files
(``probe --save-images/--save-grams``, ``report --out``, ``export --out``): it
creates a missing folder and proves it writable by creating and removing a probe
file, so a read-only or unwritable folder fails with a message naming the option
instead of after hours of generation (``os.access`` alone misses read-only mounts
and ACLs).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import OutputPathError

__all__ = ["writable_folder"]


def writable_folder(path: str | os.PathLike[str], what: str) -> Path:
    """Create ``path`` if missing and check that files can be written in it.

    Args:
        path: the folder.
        what: how the user named it, for the message (e.g. ``"--save-images folder"``).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OutputPathError: ``path`` is a file, cannot be created, or is not writable.
    """
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise OutputPathError(f"{what} {folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(f"cannot create the {what} {folder}: {exc.strerror or exc}") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".entprobe-write-check-", dir=folder)
    except OSError as exc:
        raise OutputPathError(
            f"the {what} {folder} is not writable ({exc.strerror or exc}); choose a folder you can write to"
        ) from None
    os.close(fd)
    os.unlink(probe)
    return folder
