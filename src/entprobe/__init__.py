"""entprobe: layer-by-layer entropy probing of unified multimodal models.

Public API:

- :func:`matrix_entropy` — matrix-based Rényi entropy of token states (prompt level).
- :func:`conditional_entropy` — the proxy H(prompt ⊕ response) − H(prompt) (response level).
- :func:`capture` — record per-layer hidden states of any ``torch.nn.Module``.
- :class:`ProbeInputError` and the other exceptions in :mod:`entprobe.errors`.

Heavy submodules are imported on first use so that ``import entprobe`` and the CLI
start fast.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from .errors import (
    DatasetError,
    DegenerateGeometryWarning,
    EntprobeError,
    ModelLoadError,
    NumericalFallbackWarning,
    ProbeInputError,
    StoreError,
    StoreLockedError,
    UnsupportedError,
)

try:
    __version__ = version("entprobe")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

_LAZY = {
    "matrix_entropy": "entprobe.estimators",
    "conditional_entropy": "entprobe.estimators",
    "capture": "entprobe.capture",
    "Role": "entprobe.capture",
}

__all__ = [
    "DatasetError",
    "DegenerateGeometryWarning",
    "EntprobeError",
    "ModelLoadError",
    "NumericalFallbackWarning",
    "ProbeInputError",
    "Role",
    "StoreError",
    "StoreLockedError",
    "UnsupportedError",
    "__version__",
    "capture",
    "conditional_entropy",
    "matrix_entropy",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'entprobe' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
