"""Prompts handed to a stock Hugging Face decoder as input embeddings.

Upstream families whose LLM is a plain transformers causal LM (Harmon's Qwen2.5,
JanusFlow's Llama, ...) splice image features into the token embeddings themselves
and call ``llm.generate(inputs_embeds=...)`` for text. This module holds what they
share: labelling a rendered template by character offsets (:func:`label_text`), the
prompt container (:class:`EmbedPrompt`), one hooked forward (:func:`encode_embeds`)
and HF generation followed by the teacher-forced pass (:func:`generate_from_embeds`),
and :class:`EmbedsFamily`, the prompt level and text generation of such a family
built on them. transformers is imported inside functions only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ..capture import Role, capture
from ._hf import check_prompt_length, maybe_capture, seeded, special_token_ids
from .base import Encoded, Generation, GenerationSettings
from .requests import Request

__all__ = ["EmbedPrompt", "EmbedsFamily", "encode_embeds", "generate_from_embeds", "label_text"]


def label_text(
    tokenizer: Any, rendered: str, span: tuple[int, int], *, add_special_tokens: bool
) -> tuple[list[int], list[Role]]:
    """Token ids of ``rendered`` and their roles: tokens overlapping the user's text
    ``rendered[span[0]:span[1]]`` are TEXT (special ids excepted), the rest SPECIAL."""
    enc = tokenizer(rendered, add_special_tokens=add_special_tokens, return_offsets_mapping=True)
    special = special_token_ids(tokenizer)
    start, end = span
    roles = [
        Role.TEXT if a < end and b > start and b > a and tid not in special else Role.SPECIAL
        for tid, (a, b) in zip(enc["input_ids"], enc["offset_mapping"])
    ]
    return list(enc["input_ids"]), roles


@dataclass
class EmbedPrompt:
    """One prompt as the LLM receives it (batch of one).

    Attributes:
        embeds: ``(1, n_tokens, d_model)`` input embeddings (image features spliced in).
        roles: one role per position.
        input_ids: ``(n_tokens,)`` ids; image positions hold the placeholder id.
    """

    embeds: torch.Tensor
    roles: list[Role]
    input_ids: torch.Tensor

    @property
    def n_tokens(self) -> int:
        return int(self.embeds.shape[1])


def encode_embeds(
    root: torch.nn.Module,
    layers_path: str,
    decoder: torch.nn.Module,
    prompt: EmbedPrompt,
    *,
    max_context: int | None = None,
) -> Encoded:
    """One forward of ``decoder`` (the bare transformer, e.g. ``llm.model``) over the
    prompt with hooks on ``root``'s ``layers_path``."""
    check_prompt_length(prompt.n_tokens, max_context)
    mask = torch.ones(prompt.embeds.shape[:2], dtype=torch.long, device=prompt.embeds.device)
    with torch.no_grad(), capture(root, layers_path) as rec:
        decoder(inputs_embeds=prompt.embeds, attention_mask=mask, use_cache=False)
    return Encoded(rec.states(0)[:, 0], list(prompt.roles), prompt.input_ids.detach().cpu())


def _generation_config(
    settings: GenerationSettings, max_new: int, *, eos: int | None, pad: int | None
) -> Any:
    from transformers import GenerationConfig

    kwargs: dict[str, Any] = {
        "max_new_tokens": max_new,
        "do_sample": settings.do_sample,
        "num_beams": 1,
        "eos_token_id": eos,
        "pad_token_id": pad if pad is not None else eos,
    }
    if settings.do_sample:
        # top_k=0 (no top-k), not None: transformers 5 fills an unset top_k with 50.
        kwargs.update(temperature=settings.temperature, top_p=settings.top_p, top_k=0)
    else:
        kwargs.update(temperature=None, top_p=None, top_k=None)
    return GenerationConfig(**kwargs)


def generate_from_embeds(
    root: torch.nn.Module,
    layers_path: str,
    causal_lm: Any,
    prompt: EmbedPrompt,
    tokenizer: Any,
    settings: GenerationSettings,
    *,
    keep_generation_states: bool = False,
    max_context: int | None = None,
    embed: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Generation:
    """``causal_lm.generate(inputs_embeds=...)`` (greedy unless ``settings.do_sample``),
    then one teacher-forced pass of ``[prompt embeds; response token embeds]`` through
    ``causal_lm.model`` with hooks. Response positions are GENERATED_TEXT (special
    tokens such as EOS: SPECIAL).

    ``generation_states`` (when kept): the states hooked while generating at the
    generated positions that went through a forward pass (all but the last token).

    Raises:
        ProbeInputError: the prompt does not fit ``max_context``.
    """
    n = prompt.n_tokens
    check_prompt_length(n + 1, max_context)
    max_new = (
        settings.max_new_tokens if max_context is None else min(settings.max_new_tokens, max_context - n)
    )
    cfg = _generation_config(settings, max_new, eos=tokenizer.eos_token_id, pad=tokenizer.pad_token_id)
    mask = torch.ones(prompt.embeds.shape[:2], dtype=torch.long, device=prompt.embeds.device)
    embed = embed or causal_lm.get_input_embeddings()
    with torch.no_grad(), seeded(settings.seed, prompt.embeds.device):
        with maybe_capture(root, layers_path, keep_generation_states) as rec:
            out = causal_lm.generate(inputs_embeds=prompt.embeds, attention_mask=mask, generation_config=cfg)
        # With inputs_embeds only, generate returns the new tokens alone.
        response = out[0].detach()
        full = torch.cat([prompt.embeds, embed(response[None].to(prompt.embeds.device))], dim=1)
        ids = torch.cat([prompt.input_ids.to("cpu"), response.to("cpu")])
        forced = EmbedPrompt(full, list(prompt.roles), ids)
        special = special_token_ids(tokenizer)
        forced.roles += [Role.SPECIAL if int(t) in special else Role.GENERATED_TEXT for t in response]
        encoded = encode_embeds(root, layers_path, causal_lm.model, forced)
    generation_states = None
    if keep_generation_states:
        hooked = rec.stacked()[:, 0]
        stepped = encoded.roles[n : hooked.shape[1]]
        keep = torch.tensor([r == Role.GENERATED_TEXT for r in stepped], dtype=torch.bool)
        generation_states = hooked[:, n:][:, keep.to(hooked.device)]
    return Generation(
        encoded=encoded,
        n_prompt_tokens=n,
        response_ids=response.cpu(),
        text=tokenizer.decode(response.tolist(), skip_special_tokens=True),
        generation_states=generation_states,
    )


class EmbedsFamily:
    """Mixin: the prompt level and text generation of an adapter whose LLM is a stock
    transformers causal LM fed input embeddings. The family provides
    :attr:`causal_lm` (the ``*ForCausalLM``), :attr:`tokenizer`,
    :meth:`text_prompt` and :meth:`image_prompt` (each an :class:`EmbedPrompt`); the
    rest of the adapter contract (``encode_text``, ``encode_image``,
    ``text_generation``) follows. Put it first among the bases."""

    causal_lm: Any
    tokenizer: Any

    def text_prompt(self, text: str) -> EmbedPrompt:  # pragma: no cover - the family's
        raise NotImplementedError

    def image_prompt(
        self, image: Any, question: str, settings: Any = None
    ) -> EmbedPrompt:  # pragma: no cover
        """The family's image prompt; ``settings`` for families whose prompt depends on
        them (:meth:`ModelAdapter.prompt_config`)."""
        raise NotImplementedError

    def encode_text(self, text: str) -> Encoded:
        self.require("text-prompt")  # type: ignore[attr-defined]
        return self._encode(self.text_prompt(text))

    def encode_image(self, image: Any, question: str = "") -> Encoded:
        self.require("image-prompt")  # type: ignore[attr-defined]
        return self._encode(self.image_prompt(image, question))

    def _encode(self, prompt: EmbedPrompt) -> Encoded:
        a: Any = self
        return encode_embeds(a.model, a.layers_path, self.causal_lm.model, prompt, max_context=a.max_context)

    def text_generation(self, request: Request, keep_generation_states: bool = False) -> Generation:
        a: Any = self
        a.require("text-gen")
        image, text = request.image, request.text
        prompt = (
            self.image_prompt(image, text, request.settings) if image is not None else self.text_prompt(text)
        )
        return generate_from_embeds(
            a.model, a.layers_path, self.causal_lm, prompt, self.tokenizer, request.settings,
            keep_generation_states=keep_generation_states, max_context=a.max_context,
        )  # fmt: skip
