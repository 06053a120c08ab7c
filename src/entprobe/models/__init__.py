"""Model adapters: one file per family, a registry, and tiny offline models.

Heavy backends (transformers) are imported inside the adapters, not here, so the
CLI starts fast.
"""

from .base import Encoded, Generation, GenerationSettings, ModelAdapter
from .registry import detect_adapter, get_adapter, list_adapters

__all__ = [
    "Encoded",
    "Generation",
    "GenerationSettings",
    "ModelAdapter",
    "detect_adapter",
    "get_adapter",
    "list_adapters",
]
