"""``janus``: DeepSeek Janus / Janus-Pro through ``JanusForConditionalGeneration``.

Text and image prompts, text generation from either, image generation. Decoder
layers: ``model.language_model.layers`` (the Llama decoder inside ``JanusModel``).

Prompt labelling. The adapter composes the prompt string itself: the processor's
chat template is rendered for one user turn (image first, then the text, with the
generation prompt) with a sentinel in place of the user's text, which splits the
rendering into ``prefix + text + suffix`` (the text stripped, as the Janus template
does); the default system prompt is prepended when the processor is configured so.
The processor then expands the image placeholder into
``<begin_of_image> <image_placeholder> x num_image_tokens <end_of_image>`` and
tokenises with character offsets. Roles: image placeholders -> IMAGE (their
embeddings are replaced by the vision encoder's), tokens whose characters overlap the
user's text -> TEXT, everything else -> SPECIAL (BOS, system prompt, template text
such as ``"<|User|>: "`` and ``"\\n\\n<|Assistant|>:"``, begin/end-of-image). A BPE
token straddling template and user text (a space merged into the first word) is TEXT.

Text generation (inherited from :class:`~entprobe.models.hf_causal_lm.HFCausalLMAdapter`):
``generate``, then one teacher-forced pass over ``[prompt; response]`` ids (with the
image for image prompts). The image placeholder id is suppressed while generating
(it would have no image features in the teacher-forced pass).

Image generation. ``generate(generation_mode="image")`` with classifier-free guidance
runs the conditional and the unconditional branch (prompt replaced by padding) as one
batch of two; hooks see ``[2, ...]`` and only row 0 (conditional) is kept. With
``guidance_scale <= 1`` both branches still run (transformers' Janus always batches
them) but only the conditional logits are used. Sampling options other than
``image_do_sample`` / ``image_temperature`` (e.g. ``top_k``) come from the model's
``generation_config``. The prompt is the chat-templated text followed by
``<begin_of_image>``, as the processor builds for ``generation_mode="image"``. The response is the model's full grid of
``vision_config.num_image_tokens`` image tokens; its states come from one
teacher-forced pass through the language model over
``[prompt embeddings; prepare_embeddings_for_image_generation(image tokens)]``, and
all its positions are GENERATED_IMAGE. ``response_ids`` (and the response part of
``encoded.input_ids``) are VQ codebook indices, not tokenizer ids. The image is the
VQ decoder's output (channels-last in [-1, 1]) mapped to 8-bit RGB.

Generation states. With ``keep_generation_states=True`` the states hooked while
generating are returned at the response positions that went through a forward pass
(every generated token but the last) and are GENERATED_TEXT / GENERATED_IMAGE, so
``generation_states == response_states()[:, :k]``, ``k = generation_states.shape[1]``,
up to floating-point noise of the KV cache. For image generation ``k`` is
``num_image_tokens - 1``.

The prompt, generation-state and image helpers this adapter shares with Emu3 (and
Chameleon) live in :mod:`entprobe.models._multimodal`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from ..capture import Role, capture
from ..errors import ProbeInputError
from ._batch import collate, row_sampler
from ._hf import check_prompt_length, maybe_capture, seeded
from ._multimodal import (
    ImagePromptAdapter,
    ProcessedPrompt,
    process_prompt,
    step_states,
    template_parts,
    to_pil,
)
from .base import CAPABILITIES, Encoded, Generation, GenerationSettings

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

__all__ = ["JanusAdapter"]


def _conditional_logits() -> Any:
    """A logits processor keeping the first (conditional) half of a ``[cond; uncond]`` batch."""
    from transformers import LogitsProcessor

    class ConditionalLogits(LogitsProcessor):
        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
            return scores[: scores.shape[0] // 2]

    return ConditionalLogits()


# --- the adapter ----------------------------------------------------------------------
@dataclass
class JanusAdapter(ImagePromptAdapter):
    """Janus / Janus-Pro: SigLIP-encoded image prompts, text generation, VQ image generation.

    See the module docstring for prompt labelling, image generation and the alignment
    of generation states.
    """

    name = "janus"
    description = (
        "DeepSeek Janus / Janus-Pro (JanusForConditionalGeneration): text and image prompts, "
        "text generation, image generation with classifier-free guidance"
    )
    model_types = ("janus",)
    capabilities = frozenset(CAPABILITIES)

    layer_paths = ("model.language_model.layers",)

    model_class = "JanusForConditionalGeneration"
    # Written and checked against transformers 5 (its JanusForConditionalGeneration and processor).
    requires = {"transformers": "5.0"}

    def loaded_identity(self) -> dict[str, Any]:
        return {
            "num_image_tokens": int(self.model.config.vision_config.num_image_tokens),
            "default_system_prompt": bool(getattr(self.processor, "use_default_system_prompt", False)),
        }

    # --- introspection ----------------------------------------------------------------

    @property
    def num_image_tokens(self) -> int:
        """Image tokens per image, in image prompts and in generated images."""
        return int(self.model.config.vision_config.num_image_tokens)

    @property
    def image_token_id(self) -> int:
        return int(self.model.config.image_token_id)

    # --- prompts ------------------------------------------------------------------------
    def _processed(
        self, text: str, image: Image.Image | None, *, for_image_generation: bool = False
    ) -> ProcessedPrompt:
        proc = self.processor
        content = [{"type": "image"}] if image is not None else []
        fallback = (f"{proc.image_token}\n" if image is not None else "", "")
        prefix, text, suffix = template_parts(proc, content, text, fallback)
        mode = "image" if for_image_generation else "text"
        # The processor's public call builds the prompt (JanusProcessor.__call__ adds
        # the system prompt in text mode, the image-start token in image mode), so a
        # change in transformers changes our prompts with it. Its offsets refer to the
        # string after that prefix, so the user's text shifts by the system prompt.
        shift = 0
        if mode == "text" and getattr(proc, "use_default_system_prompt", False):
            from transformers.models.janus.processing_janus import DEFAULT_SYSTEM_PROMPT

            shift = len(DEFAULT_SYSTEM_PROMPT)
        prompt = process_prompt(
            lambda **kw: proc(**kw, generation_mode=mode),
            self.tokenizer,
            prefix + text + suffix,
            (shift + len(prefix), shift + len(prefix) + len(text)),
            image=image,
            image_token_id=self.image_token_id,
            device=self.device,
            dtype=self.model.dtype,
        )
        # Loud, not silent, if the processor ever puts the text elsewhere.
        got = self.tokenizer.decode(
            [int(i) for i, r in zip(prompt.input_ids, prompt.roles) if r == Role.TEXT]
        )
        if "".join(got.split()) != "".join(text.split()):
            raise ProbeInputError(
                f"JanusProcessor placed the prompt text differently than entprobe expects "
                f"(tokens labelled as text decode to {got[:80]!r}, not {text[:80]!r}); this "
                f"transformers version needs a fix in models/janus.py"
            )
        return prompt

    def _prompt(
        self, text: str, image: Image.Image | None = None
    ) -> tuple[dict[str, torch.Tensor], list[Role]]:
        prompt = self._processed(text, image)
        return prompt.inputs, prompt.roles

    # --- generation ---------------------------------------------------------------------
    def _generation_config(self, settings: GenerationSettings, max_new_tokens: int) -> Any:
        cfg = super()._generation_config(settings, max_new_tokens)
        cfg.suppress_tokens = [self.image_token_id]
        return cfg

    def _generate_images(
        self, texts: list[str], settings: GenerationSettings, keep_generation_states: bool
    ) -> list[Generation]:
        """Image generation for a left-padded batch of prompts.

        transformers' Janus loop doubles the batch into ``[cond_1..cond_B;
        uncond_1..uncond_B]`` (the unconditional rows keep only BOS and
        ``<begin_of_image>``, padding stays masked); guidance (or, without it, taking
        the conditional half) runs as our first logits processor, then each row
        samples with its own generator (:func:`~._batch.row_sampler`). The
        teacher-forced pass is one right-padded batch through the language model.
        """
        from transformers import LogitsProcessorList
        from transformers.generation import ClassifierFreeGuidanceLogitsProcessor

        self.require("image-gen")
        model, tok = self.model, self.tokenizer
        prompts = [self._processed(text, None, for_image_generation=True) for text in texts]
        for prompt in prompts:
            check_prompt_length(prompt.n_tokens + self.num_image_tokens, self.max_context)
        pad = (
            tok.pad_token_id
            if model.generation_config.pad_token_id is None
            else model.generation_config.pad_token_id
        )
        batch = collate([p.inputs for p in prompts], pad_id=int(pad), side="left")

        cfg = copy.deepcopy(model.generation_config)
        cfg.do_sample = settings.image_do_sample
        cfg.temperature = settings.image_temperature if settings.image_do_sample else None
        guided = settings.guidance_scale is not None and settings.guidance_scale > 1
        # Guidance is applied by our own processor, first, so that the row sampler
        # sees the guided logits (transformers would append its own after ours).
        cfg.guidance_scale = 1.0
        first = (
            ClassifierFreeGuidanceLogitsProcessor(settings.guidance_scale)
            if guided
            else _conditional_logits()
        )
        cfg, sampler = row_sampler(cfg, len(prompts), settings.seed, self.device, self.model)
        boi = tok.convert_tokens_to_ids(self.processor.image_start_token)
        cfg.generation_kwargs = {**(getattr(cfg, "generation_kwargs", None) or {}), "boi_token_id": boi}
        if cfg.pad_token_id is None:
            cfg.pad_token_id = tok.pad_token_id
        if cfg.bos_token_id is None:
            cfg.bos_token_id = tok.bos_token_id

        with torch.no_grad(), seeded(settings.seed, self.device):
            with maybe_capture(model, self.layers_path, keep_generation_states) as rec:
                image_ids = model.generate(
                    input_ids=batch.inputs["input_ids"],
                    attention_mask=batch.inputs["attention_mask"],
                    generation_mode="image",
                    generation_config=cfg,
                    logits_processor=LogitsProcessorList([first, *sampler]),
                )
            embeds = [
                torch.cat(
                    [
                        model.get_input_embeddings()(p.inputs["input_ids"]),
                        model.prepare_embeddings_for_image_generation(ids[None]),
                    ],
                    dim=1,
                )
                for p, ids in zip(prompts, image_ids)
            ]
            width = max(e.shape[1] for e in embeds)
            padded = torch.cat([torch.nn.functional.pad(e, (0, 0, 0, width - e.shape[1])) for e in embeds])
            mask = torch.zeros(padded.shape[:2], dtype=torch.long, device=padded.device)
            for i, e in enumerate(embeds):
                mask[i, : e.shape[1]] = 1
            with capture(model, self.layers_path) as tf:
                model.model.language_model(inputs_embeds=padded, attention_mask=mask, use_cache=False)
            states = tf.states(0)
            pixels = model.decode_image_tokens(image_ids)

        out = []
        for i, prompt in enumerate(prompts):
            n = prompt.n_tokens
            response = image_ids[i].cpu()
            response_roles = [Role.GENERATED_IMAGE] * len(response)
            row = states[:, i, : n + len(response)]
            out.append(
                Generation(
                    encoded=Encoded(
                        states=row,
                        roles=prompt.roles + response_roles,
                        # response positions hold VQ codebook indices, not tokenizer ids
                        input_ids=torch.cat([prompt.input_ids, response]),
                    ),
                    n_prompt_tokens=n,
                    response_ids=response,
                    image=to_pil(pixels[i]),
                    generation_states=(
                        step_states(rec, n, response_roles, row) if keep_generation_states else None
                    ),
                )
            )
        return out
