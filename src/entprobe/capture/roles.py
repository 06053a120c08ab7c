"""Token roles: what each captured position is, so selections can be made by role."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import Enum

import torch

from ..errors import ProbeInputError

__all__ = ["Role", "role_mask", "select"]


class Role(str, Enum):
    """The role of one position of a captured sequence."""

    TEXT = "text"
    IMAGE = "image"
    SPECIAL = "special"  # BOS/EOS, chat-template text, image delimiters, row markers
    GENERATED_TEXT = "generated_text"
    GENERATED_IMAGE = "generated_image"


def role_mask(roles: Sequence[Role], keep: Iterable[Role | str]) -> torch.Tensor:
    """Boolean mask of shape ``(n_tokens,)`` that is True where ``roles[i]`` is kept."""
    wanted = {Role(k) for k in keep}
    return torch.tensor([Role(r) in wanted for r in roles], dtype=torch.bool)


def select(states: torch.Tensor, roles: Sequence[Role], keep: Iterable[Role | str]) -> torch.Tensor:
    """Take the positions whose role is in ``keep``.

    Args:
        states: ``(..., n_tokens, d_model)``.
        roles: one role per position, length ``n_tokens``.
        keep: roles to keep.

    Returns:
        ``(..., n_kept, d_model)``, positions in their original order.

    Raises:
        ProbeInputError: if ``len(roles)`` differs from the token axis.
    """
    if states.shape[-2] != len(roles):
        raise ProbeInputError(
            f"roles has {len(roles)} entries but states has {states.shape[-2]} tokens "
            f"(states shape {tuple(states.shape)})"
        )
    mask = role_mask(roles, keep).to(states.device)
    return states[..., mask, :]
