"""Model adapters: one file per family, a registry, and tiny offline models.

The contract is :class:`ModelAdapter` (``base.py``); what a caller hands it is in
``requests.py`` (:class:`LoadOptions`, :class:`Request`, :class:`GenerationSettings`).
Names are imported on first use, and heavy backends (transformers, upstream code)
only inside the adapters, so that the command line starts fast and
``entprobe.models.requests`` can be read without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Encoded": "entprobe.models.base",
    "Generation": "entprobe.models.base",
    "ModelAdapter": "entprobe.models.base",
    "GenerationSettings": "entprobe.models.requests",
    "LoadOptions": "entprobe.models.requests",
    "Request": "entprobe.models.requests",
    "detect_adapter": "entprobe.models.registry",
    "get_adapter": "entprobe.models.registry",
    "list_adapters": "entprobe.models.registry",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'entprobe.models' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
