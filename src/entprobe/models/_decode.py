"""Text generation by full re-forward, for families whose own decoding loop runs the
whole sequence again for every new token (Show-o2's ``lm_generate`` / ``mmu_generate``:
a custom 4D attention mask, no KV cache), so HF ``generate`` is not their path.

:func:`next_token` picks a token from logits with :class:`GenerationSettings`;
:func:`reforward_generate` runs the loop on input embeddings, then the teacher-forced
pass, under one capture, and returns the :class:`Generation` (with ``model_calls``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ..capture import Role, capture
from ._hf import seeded
from .base import Encoded, Generation, GenerationSettings

__all__ = ["next_token", "reforward_generate"]


def next_token(logits: torch.Tensor, settings: GenerationSettings) -> int:
    """Greedy, or sampled at ``temperature`` with nucleus ``top_p``, from ``(vocab,)`` logits."""
    if not settings.do_sample:
        return int(logits.argmax())
    probs = (logits.float() / settings.temperature).softmax(-1)
    if settings.top_p < 1.0:
        sorted_p, order = probs.sort(descending=True)
        probs[order[sorted_p.cumsum(-1) - sorted_p > settings.top_p]] = 0.0
    return int(torch.multinomial(probs / probs.sum(), 1))


def reforward_generate(
    model: torch.nn.Module,
    layers_path: str,
    forward: Callable[[torch.Tensor], torch.Tensor],
    embed: Callable[[list[int]], torch.Tensor],
    prompt_embeds: torch.Tensor,
    prompt_roles: Sequence[Role],
    prompt_ids: Sequence[int],
    settings: GenerationSettings,
    stop_ids: set[int],
    *,
    keep_generation_states: bool = False,
) -> tuple[Generation, list[int]]:
    """Decode ``settings.max_new_tokens`` at most (stopping after a stop id), one full
    forward per token, then one teacher-forced forward over ``[prompt; response]``.

    Args:
        forward: ``(1, L, d)`` embeddings -> ``(vocab,)`` next-token logits (one LLM call).
        embed: token ids -> ``(1, k, d)`` embeddings.
        prompt_embeds: ``(1, n, d)``; ``prompt_roles`` / ``prompt_ids`` label them.

    Returns:
        The :class:`Generation` (``text`` unset; generated stop ids are SPECIAL;
        ``generation_states``: generated token j's states from call j + 1, the first
        that holds it, which equal the teacher-forced ones) and the response ids.
    """
    n, response = prompt_embeds.shape[1], []
    with torch.no_grad(), seeded(settings.seed, prompt_embeds.device), capture(model, layers_path) as rec:
        embeds = prompt_embeds
        while len(response) < settings.max_new_tokens and not (response and response[-1] in stop_ids):
            response.append(next_token(forward(embeds), settings))
            embeds = torch.cat([embeds, embed(response[-1:])], dim=1)
        n_gen = rec.n_calls
        forward(embeds)
    states = rec.states(n_gen)[:, 0]
    roles = list(prompt_roles) + [Role.SPECIAL if t in stop_ids else Role.GENERATED_TEXT for t in response]
    kept = None
    if keep_generation_states:
        steps = [rec.states(k)[:, 0, n + k - 1 : n + k] for k in range(1, n_gen)]
        steps = [s for s, r in zip(steps, roles[n:]) if r == Role.GENERATED_TEXT]
        kept = torch.cat(steps, dim=1) if steps else states[:, :0]
    gen = Generation(
        encoded=Encoded(states, roles, torch.tensor(list(prompt_ids) + response)),
        n_prompt_tokens=n,
        response_ids=torch.tensor(response, dtype=torch.long),
        generation_states=kept,
        model_calls={"generation": n_gen, "teacher-forced": 1},
    )
    return gen, response
