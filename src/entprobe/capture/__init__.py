"""Capture per-layer hidden states from any ``torch.nn.Module`` and label positions by role."""

from .hooks import CallTag, Recorder, capture, resolve_layers
from .roles import Role, role_mask, select

__all__ = ["CallTag", "Recorder", "Role", "capture", "resolve_layers", "role_mask", "select"]
