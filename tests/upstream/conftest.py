"""Integration tests of upstream UMM code: tiny random configs of the REAL upstream classes.

The upstream checkouts are found through ``ENTPROBE_UPSTREAM_ROOT`` (a folder holding
``<owner>+<repo>`` checkouts, e.g. ``showlab+Show-o``); without it these tests skip
with the reason. ``standins/`` (import stand-ins that only make an upstream import work
on a CPU, e.g. a ``torchvision`` shell for timm) goes on ``sys.path``; never part of
the product.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

STANDINS = Path(__file__).parent / "standins"


def _transformers_major() -> int:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return int(version("transformers").split(".")[0])
    except (PackageNotFoundError, ValueError):
        return 0


# Only in the upstream environment (transformers 4.x, `make test-upstream`): in the main
# one, a whole-suite run also loads this file, and a torchvision shell on sys.path would
# make transformers 5 take torchvision for installed and break its image processors.
if _transformers_major() < 5 and str(STANDINS) not in sys.path:
    sys.path.insert(0, str(STANDINS))
HERE = str(Path(__file__).parent)
if HERE not in sys.path:  # the upstream_<family>_tiny.py builders
    sys.path.insert(0, HERE)


def upstream_checkout(name: str) -> Path:
    """``$ENTPROBE_UPSTREAM_ROOT/<name>``, or skip the test saying why."""
    root = os.environ.get("ENTPROBE_UPSTREAM_ROOT")
    if not root:
        pytest.skip(
            "ENTPROBE_UPSTREAM_ROOT is not set (a folder of upstream checkouts, e.g. ../shared/upstream)"
        )
    path = Path(root).expanduser() / name
    if not path.is_dir():
        pytest.skip(f"no upstream checkout {path} (ENTPROBE_UPSTREAM_ROOT={root})")
    return path
