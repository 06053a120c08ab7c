"""Model adapters: one file per family, a registry, and tiny offline models.

The contract is :class:`ModelAdapter` (``base.py``); what a caller hands it is in
``requests.py`` (:class:`LoadOptions`, :class:`Request`, :class:`GenerationSettings`).
Names are imported on first use, and heavy backends (transformers, upstream code)
only inside the adapters, so that the command line starts fast and
``entprobe.models.requests`` can be read without torch.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_WHERE = {
    "Encoded": ".base",
    "Generation": ".base",
    "ModelAdapter": ".base",
    "GenerationSettings": ".requests",
    "LoadOptions": ".requests",
    "Request": ".requests",
    "detect_adapter": ".registry",
    "get_adapter": ".registry",
    "list_adapters": ".registry",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
