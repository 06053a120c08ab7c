"""Where the upstream checkouts are (``$ENTPROBE_UPSTREAM_ROOT``); skip without them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def upstream_checkout(folder: str) -> Path:
    """``$ENTPROBE_UPSTREAM_ROOT/<folder>``, or skip the test with the reason."""
    root = os.environ.get("ENTPROBE_UPSTREAM_ROOT")
    if not root:
        pytest.skip(
            "ENTPROBE_UPSTREAM_ROOT is not set (a folder of upstream checkouts; `make test-upstream`)"
        )
    path = Path(root) / folder
    if not path.is_dir():
        pytest.skip(f"{path} does not exist (ENTPROBE_UPSTREAM_ROOT holds no {folder})")
    return path
