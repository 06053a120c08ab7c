"""``emu3``: BAAI Emu3 through ``Emu3ForConditionalGeneration``.

Text and image prompts, text generation from either, image generation. Decoder
layers: ``model.text_model.layers`` (the decoder inside ``Emu3Model``).

Prompt labelling works as for Janus (see :mod:`entprobe.models.janus`): the chat
template is rendered with a sentinel for the user's text (plain text when the
processor has no template), ``Emu3Processor`` prepends BOS, expands ``<image>`` and
tokenises with offsets. An image becomes ``<|image start|>H*W<|image token|>``, then
``H x (W + 1)`` placeholders, then ``<|extra_201|><|image end|>``; the placeholders
carry the image's visual tokens row by row, each row closed by an end-of-line token.
Roles: visual-token placeholders -> IMAGE (``H x W`` of them), end-of-line
placeholders, the size text, the image markers, BOS and template text -> SPECIAL, the
user's text -> TEXT.

Text generation (inherited from :class:`~entprobe.models.hf_causal_lm.HFCausalLMAdapter`):
``generate`` with ``<image>`` suppressed, then one teacher-forced pass over
``[prompt; response]`` ids (with the image for image prompts).

Image generation follows transformers' documented Emu3 recipe. The prompt is
``BOS + text + <|image start|>H*W<|image token|>`` (no chat template, as Emu3-Gen
expects). Ordinary ``generate`` with a ``prefix_allowed_tokens_fn`` yields ``H`` rows
of ``W`` visual tokens each closed by an end-of-line token, then end-of-frame,
end-of-image and EOS: ``H x (W + 1) + 3`` tokens. ``H x W`` is the grid of
``(ratio, image_area)`` taken from the model's ``generation_config`` (attributes
``image_area``, ``image_ratio``) when present, else the processor's defaults
(``518400`` pixels, ``"1:1"``: 90 x 90 tokens). Sampling options other than
``image_do_sample`` / ``image_temperature`` (e.g. ``top_k``) come from the model's
``generation_config``. Classifier-free guidance (``guidance_scale > 1``) passes
``negative_prompt_ids`` (``BOS + negative_prompt + image prefix``); transformers then
runs the unconditional branch as a second forward after each conditional one, so the
hooks fire twice per step and only the conditional calls are kept. Response roles:
visual tokens -> GENERATED_IMAGE, end-of-line, end-of-frame, end-of-image and EOS ->
SPECIAL, so ``response_states()`` holds exactly ``H x W`` positions. ``response_ids``
are the whole generated sequence, markers included (``encoded.input_ids[n_prompt:]``).
The image is decoded by the VQ model and mapped from [-1, 1] to 8-bit RGB.

Generation states. With ``keep_generation_states=True`` the conditional states hooked
while generating are returned at the response positions that went through a forward
pass (every generated token but the last) and are GENERATED_TEXT / GENERATED_IMAGE,
so ``generation_states == response_states()[:, :k]``, ``k = generation_states.shape[1]``.
For image generation the last token is EOS, so every visual token is covered:
``k == H x W`` and the two are equal in full.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from ..capture import Role
from ._batch import collate, row_sampler
from ._hf import check_prompt_length, forward_batch_states, maybe_capture, seeded
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

__all__ = ["Emu3Adapter", "NEGATIVE_PROMPT"]

#: Emu3's own negative prompt for classifier-free guidance.
NEGATIVE_PROMPT = (
    "lowres, bad anatomy, bad hands, text, error, missing fingers, extra digit, fewer digits, "
    "cropped, worst quality, low quality, normal quality, jpeg artifacts, signature, watermark, "
    "username, blurry."
)


@dataclass
class Emu3Adapter(ImagePromptAdapter):
    """Emu3: one decoder over text and VQ visual tokens, for understanding and generation.

    See the module docstring for prompt labelling, image generation (grid, guidance)
    and the alignment of generation states.

    Attributes:
        negative_prompt: text of the unconditional branch of classifier-free guidance.
    """

    name = "emu3"
    description = (
        "BAAI Emu3 (Emu3ForConditionalGeneration): text and image prompts, text generation, "
        "image generation with classifier-free guidance"
    )
    model_types = ("emu3",)
    capabilities = frozenset(CAPABILITIES)

    layer_paths = ("model.text_model.layers",)
    negative_prompt: str = field(default=NEGATIVE_PROMPT, kw_only=True)

    model_class = "Emu3ForConditionalGeneration"
    # Written and checked against transformers 5 (its Emu3ForConditionalGeneration and processor).
    requires = {"transformers": "5.0"}

    def loaded_identity(self) -> dict[str, Any]:
        return {"image_grid": list(self.image_grid), "negative_prompt": self.negative_prompt}

    # --- introspection ----------------------------------------------------------------

    @property
    def image_grid(self) -> tuple[int, int]:
        """``(H, W)``: visual tokens of a generated image, end-of-line tokens excluded."""
        proc = self.processor
        gen = self.model.generation_config
        area = int(getattr(gen, "image_area", None) or proc.image_area)
        ratio = str(getattr(gen, "image_ratio", None) or proc.ratio)
        height, width = proc.calculate_generate_size(ratio, area, proc.downsample_ratio)
        return int(height), int(width)

    @property
    def image_token_id(self) -> int:
        return int(self.model.vocabulary_mapping.image_token_id)

    # --- prompts ------------------------------------------------------------------------
    def _processed(self, prefix: str, text: str, suffix: str, image: Image.Image | None) -> ProcessedPrompt:
        proc = self.processor
        start = len(proc.bos_token) + len(prefix)  # Emu3Processor prepends BOS
        prompt = process_prompt(
            proc,
            self.tokenizer,
            prefix + text + suffix,
            (start, start + len(text)),
            image=image,
            image_token_id=self.image_token_id,
            device=self.device,
            dtype=self.model.dtype,
        )
        if image is not None:
            self._mark_end_of_line(prompt)
        return prompt

    def _mark_end_of_line(self, prompt: ProcessedPrompt) -> None:
        """The last placeholder of each grid row carries an end-of-line token: SPECIAL."""
        factor = self.processor.downsample_ratio
        placeholders = [i for i, role in enumerate(prompt.roles) if role == Role.IMAGE]
        start = 0
        for height, width in prompt.inputs["image_sizes"].tolist():
            rows, cols = int(height) // factor, int(width) // factor
            for j, pos in enumerate(placeholders[start : start + rows * (cols + 1)]):
                if j % (cols + 1) == cols:
                    prompt.roles[pos] = Role.SPECIAL
            start += rows * (cols + 1)

    def _prompt(
        self, text: str, image: Image.Image | None = None
    ) -> tuple[dict[str, torch.Tensor], list[Role]]:
        proc = self.processor
        content = [{"type": "image"}] if image is not None else []
        fallback = (proc.image_token if image is not None else "", "")
        prompt = self._processed(*template_parts(proc, content, text, fallback), image)
        return prompt.inputs, prompt.roles

    # --- generation ---------------------------------------------------------------------
    def _generation_config(self, settings: GenerationSettings, max_new_tokens: int) -> Any:
        cfg = super()._generation_config(settings, max_new_tokens)
        cfg.suppress_tokens = [self.image_token_id]
        return cfg

    def _image_prefix(self) -> str:
        """What ``Emu3Processor`` appends for ``return_for_image_generation=True``."""
        proc = self.processor
        height, width = self.image_grid
        return f"{proc.image_start_token}{height}*{width}{proc.fake_token_around_image}"

    def _generate_images(
        self, texts: list[str], settings: GenerationSettings, keep_generation_states: bool
    ) -> list[Generation]:
        """Image generation for a left-padded batch of prompts.

        Every row has the same padded prompt width, so the step that
        ``prefix_allowed_tokens_fn`` computes from the sequence length is the same for
        all rows. The negative prompt (no padding) is repeated per row for the
        unconditional forwards of guidance. Each row samples with its own generator
        (:func:`~._batch.row_sampler`); the teacher-forced pass is right-padded.
        """
        from transformers import LogitsProcessorList

        self.require("image-gen")
        model, tok, proc = self.model, self.tokenizer, self.processor
        height, width = self.image_grid
        prefix = self._image_prefix()
        prompts = [self._processed("", text.strip(), prefix, None) for text in texts]
        n_grid = height * (width + 1)
        for prompt in prompts:
            check_prompt_length(prompt.n_tokens + n_grid + 3, self.max_context)

        mapping = model.vocabulary_mapping
        visual = list(mapping.image_tokens)
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        batch = collate([p.inputs for p in prompts], pad_id=int(pad), side="left")
        n = batch.width

        def on_device(ids: list[int]) -> torch.Tensor:  # indexes the logits without a copy per step
            return torch.tensor(ids, dtype=torch.long, device=self.device)

        visual_ids, eol_ids, pad_ids = on_device(visual), on_device([mapping.eol_token_id]), on_device([pad])
        tail = {
            n_grid + 1: on_device([tok.convert_tokens_to_ids(proc.eof_token)]),
            n_grid + 2: on_device([tok.convert_tokens_to_ids(proc.image_end_token)]),
            n_grid + 3: on_device([tok.eos_token_id]),
        }

        def allowed(batch_id: int, input_ids: torch.Tensor) -> torch.Tensor:
            step = int(input_ids.shape[-1]) - n + 1  # 1-based index of the token to generate
            if step <= n_grid:
                return eol_ids if step % (width + 1) == 0 else visual_ids
            return tail.get(step, pad_ids)

        cfg = copy.deepcopy(model.generation_config)
        cfg.update(
            max_new_tokens=n_grid + 3,
            do_sample=settings.image_do_sample,
            temperature=settings.image_temperature if settings.image_do_sample else None,
            pad_token_id=pad,
        )
        cfg, sampler = row_sampler(cfg, len(prompts), settings.seed, self.device, self.model)
        guided = settings.guidance_scale is not None and settings.guidance_scale > 1
        cfg.guidance_scale = settings.guidance_scale if guided else None
        kwargs: dict[str, Any] = {"prefix_allowed_tokens_fn": allowed, "generation_config": cfg}
        if guided:
            negative = tok(
                proc.bos_token + self.negative_prompt + prefix, add_special_tokens=False, return_tensors="pt"
            )
            kwargs.update(
                negative_prompt_ids=negative["input_ids"].repeat(len(prompts), 1).to(self.device),
                negative_prompt_attention_mask=negative["attention_mask"]
                .repeat(len(prompts), 1)
                .to(self.device),
            )

        with torch.no_grad(), seeded(settings.seed, self.device):
            with maybe_capture(model, self.layers_path, keep_generation_states) as rec:
                out = model.generate(**batch.inputs, **kwargs, logits_processor=LogitsProcessorList(sampler))
        responses = [out[i, n:] for i in range(len(prompts))]
        full = [
            {"input_ids": torch.cat([p.inputs["input_ids"], r[None]], dim=1)}
            for p, r in zip(prompts, responses)
        ]
        tf = collate(full, pad_id=int(pad), side="right")
        states = forward_batch_states(model, self.layers_path, tf.inputs, use_cache=False)
        is_visual = set(visual)
        pixels = None
        if all(len(r) == n_grid + 3 for r in responses):
            with torch.no_grad():
                pixels = model.decode_image_tokens(image_tokens=out[:, n:], height=height, width=width)

        generations = []
        for i, (prompt, response) in enumerate(zip(prompts, responses)):
            response = response.cpu()
            roles = [Role.GENERATED_IMAGE if t in is_visual else Role.SPECIAL for t in response.tolist()]
            row = states[:, i, tf.span(i)]
            generations.append(
                Generation(
                    encoded=Encoded(
                        states=row, roles=prompt.roles + roles, input_ids=full[i]["input_ids"][0].cpu()
                    ),
                    n_prompt_tokens=prompt.n_tokens,
                    response_ids=response,
                    image=None if pixels is None else to_pil(pixels[i].permute(1, 2, 0)),
                    generation_states=(
                        step_states(rec, prompt.n_tokens, roles, row, stride=2 if guided else 1)
                        if keep_generation_states
                        else None
                    ),
                )
            )
        return generations
