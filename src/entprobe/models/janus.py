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

This module also holds the helpers the Emu3 adapter shares (processor prompts with
offsets, step states, image conversion).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from ..capture import Recorder, Role, capture
from ..errors import ModelLoadError, ProbeInputError
from .base import CAPABILITIES, Encoded, Generation, GenerationSettings
from .hf_causal_lm import (
    HFCausalLMAdapter,
    check_prompt_length,
    from_pretrained,
    pretrained_kwargs,
    resolve_dtype,
    special_token_ids,
)

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

__all__ = [
    "JanusAdapter",
    "ProcessedPrompt",
    "label_offsets",
    "load_multimodal",
    "maybe_capture",
    "process_prompt",
    "seeded",
    "step_states",
    "template_parts",
    "to_pil",
]

# Stands in for the user's text while a chat template is rendered.
_SENTINEL = "ENTPROBE0SENTINEL0TEXT"

_GENERATED = (Role.GENERATED_TEXT, Role.GENERATED_IMAGE)


# --- helpers shared with emu3.py ------------------------------------------------------
def load_multimodal(
    cls: type[HFCausalLMAdapter],
    source: str,
    model_class: str,
    *,
    device: str,
    dtype: str,
    trust_remote_code: bool,
    revision: str | None,
) -> tuple[torch.nn.Module, Any]:
    """``transformers.<model_class>`` and its processor, after checking the config's
    ``model_type`` against ``cls.model_types``.

    Raises:
        ModelLoadError: the checkpoint cannot be loaded or is of another family.
    """
    import transformers

    kwargs = pretrained_kwargs(trust_remote_code=trust_remote_code, revision=revision)
    config = from_pretrained(transformers.AutoConfig, source, what="config", adapter=cls.name, **kwargs)
    model_type = getattr(config, "model_type", None)
    if model_type not in cls.model_types:
        raise ModelLoadError(
            f"{source!r} is a {model_type!r} model, not {' or '.join(cls.model_types)}; "
            "pick its adapter with --adapter (see `entprobe models`)"
        )
    processor = from_pretrained(
        transformers.AutoProcessor, source, what="processor", adapter=cls.name, **kwargs
    )
    model = from_pretrained(
        getattr(transformers, model_class), source, what="model", adapter=cls.name,
        dtype=resolve_dtype(dtype), **kwargs,
    )
    model.to(device).eval()
    return model, processor


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch for the block in a forked RNG, leaving the caller's state as it was."""
    fork = [] if device.type == "cpu" else [device]
    with torch.random.fork_rng(devices=fork, device_type=device.type):
        torch.manual_seed(seed)
        yield


def maybe_capture(model: torch.nn.Module, layers_path: str, keep: bool) -> Any:
    """Hooks during generation only when the generation states are wanted."""
    return capture(model, layers_path) if keep else nullcontext()


def template_parts(
    processor: Any, content: list[dict[str, Any]], text: str, fallback: tuple[str, str]
) -> tuple[str, str, str]:
    """``(prefix, text, suffix)`` of one user turn of the processor's chat template.

    ``content`` holds the message items before the text (e.g. ``[{"type": "image"}]``);
    the text item comes last. The template is rendered with a sentinel as the text,
    which locates the user's text exactly; ``text`` is stripped (templates strip it).
    Without a chat template, ``fallback`` gives prefix and suffix.

    Raises:
        ProbeInputError: the template rewrites the text so that it cannot be found.
    """
    text = text.strip()
    if not getattr(processor, "chat_template", None):
        return fallback[0], text, fallback[1]

    def render(t: str) -> str:
        items = [*content, {"type": "text", "text": t}]
        return processor.apply_chat_template(
            [{"role": "user", "content": items}], add_generation_prompt=True, tokenize=False
        )

    rendered = render(_SENTINEL)
    if rendered.count(_SENTINEL) == 1:
        prefix, suffix = rendered.split(_SENTINEL)
        if render(text) == prefix + text + suffix:
            return prefix, text, suffix
    # The template transforms the text: look for it after the template's prefix.
    rendered = render(text)
    start = rendered.find(text, max(render(_SENTINEL).find(_SENTINEL), 0)) if text else -1
    if text and start < 0:
        raise ProbeInputError(f"cannot find the prompt text in the rendered chat template {rendered!r}")
    start = max(start, 0) if text else len(rendered)
    return rendered[:start], text, rendered[start + len(text) :]


def label_offsets(
    input_ids: Sequence[int],
    offsets: Sequence[Sequence[int]],
    replacements: Sequence[dict[str, Any]],
    text_span: tuple[int, int],
    *,
    image_token_id: int,
    special_ids: set[int],
) -> list[Role]:
    """Roles from token character offsets in the processor's expanded string.

    Args:
        input_ids: the token ids.
        offsets: ``(start, end)`` characters of each token in the expanded string.
        replacements: the processor's ``text_replacement_offsets`` for the sample
            (where each image placeholder was expanded, before and after).
        text_span: the user's text in the string before expansion.
        image_token_id: the image placeholder id.
        special_ids: ids that are never TEXT.

    Returns:
        One role per token: inside an expansion, image placeholders IMAGE and the rest
        SPECIAL; outside, tokens overlapping the user's text TEXT, the rest SPECIAL.
    """
    roles: list[Role] = []
    t0, t1 = text_span
    for tid, (s, e) in zip(input_ids, offsets):
        block = next((r for r in replacements if r["new_span"][0] <= s < r["new_span"][1]), None)
        if block is not None:
            roles.append(Role.IMAGE if tid == image_token_id else Role.SPECIAL)
            continue
        if s == e or tid in special_ids:  # added BOS/EOS have empty offsets
            roles.append(Role.SPECIAL)
            continue
        shift = sum(
            (r["new_span"][1] - r["new_span"][0]) - (r["span"][1] - r["span"][0])
            for r in replacements
            if r["new_span"][1] <= s
        )
        roles.append(Role.TEXT if s - shift < t1 and e - shift > t0 else Role.SPECIAL)
    return roles


@dataclass
class ProcessedPrompt:
    """A tokenised prompt: model inputs (batch of one, on the model's device), the ids
    ``(n_tokens,)`` on the CPU, one role per position, and the processor's
    replacement offsets of the image placeholders."""

    inputs: dict[str, Any]
    input_ids: torch.Tensor
    roles: list[Role]
    replacements: list[dict[str, Any]]

    @property
    def n_tokens(self) -> int:
        return int(self.input_ids.shape[0])


def process_prompt(
    call: Any,
    tokenizer: Any,
    text: str,
    text_span: tuple[int, int],
    *,
    image: Image.Image | None,
    image_token_id: int,
    device: torch.device,
    dtype: torch.dtype,
) -> ProcessedPrompt:
    """Expand image placeholders and tokenise ``text`` with ``call`` (a processor call)
    and label every position with :func:`label_offsets`.

    ``text_span`` locates the user's text in the string the processor tokenises before
    expanding placeholders (``text`` plus whatever the processor itself prepends).
    Floating-point inputs (pixel values) are cast to ``dtype``.
    """
    out = call(
        text=[text],
        images=None if image is None else [image.convert("RGB")],
        return_offsets_mapping=True,
        return_text_replacement_offsets=True,
        return_tensors="pt",
    )
    offsets = out.pop("offset_mapping")[0].tolist()
    replacements = (out.pop("text_replacement_offsets", None) or [[]])[0]
    ids = out["input_ids"][0].cpu()
    roles = label_offsets(
        ids.tolist(),
        offsets,
        replacements,
        text_span,
        image_token_id=image_token_id,
        special_ids=special_token_ids(tokenizer),
    )
    inputs: dict[str, Any] = {}
    for key, value in out.items():
        if isinstance(value, torch.Tensor):
            value = value.to(device)
            if value.is_floating_point():
                value = value.to(dtype)
        inputs[key] = value
    return ProcessedPrompt(inputs=inputs, input_ids=ids, roles=roles, replacements=list(replacements))


def step_states(
    rec: Recorder,
    n_prompt: int,
    response_roles: Sequence[Role],
    like: torch.Tensor,
    *,
    stride: int = 1,
) -> torch.Tensor:
    """The states hooked during generation at the generated content positions.

    Call 0 of ``rec`` is the prompt; with ``stride`` forward calls per generated token
    (2 when classifier-free guidance runs an unconditional forward after each
    conditional one), calls ``stride, 2 * stride, ...`` carry one response token each,
    of which batch row 0 (the conditional branch) is kept. The last generated token
    never goes through a forward pass. Positions whose role is not GENERATED_* are
    dropped, so the result equals ``response_states()[:, :k]`` of the teacher-forced pass.

    Args:
        rec: the recorder that was active during ``generate``.
        n_prompt: prompt length (the tokens of call 0).
        response_roles: one role per generated token.
        like: ``(n_layers + 1, n, d_model)`` states giving the shape when nothing is kept.

    Returns:
        ``(n_layers + 1, k, d_model)``.

    Raises:
        RuntimeError: the recorded calls do not match the generation.
    """
    n_response = len(response_roles)
    first = rec.states(0).shape[2] if rec.n_calls else 0
    if rec.n_calls != stride * n_response or first != n_prompt:
        raise RuntimeError(
            f"expected {stride} forward call(s) per generated token ({stride * n_response} in all, the "
            f"first over {n_prompt} prompt tokens); recorded {rec.n_calls}, the first over {first} tokens"
        )
    steps = [rec.states(i)[:, 0] for i in range(stride, rec.n_calls, stride)]
    keep = [steps[i] for i, role in enumerate(response_roles[: len(steps)]) if role in _GENERATED]
    if not keep:
        return like.new_empty((like.shape[0], 0, like.shape[-1]))
    return torch.cat(keep, dim=1)


def to_pil(image: torch.Tensor) -> Image.Image:
    """A channels-last ``(H, W, 3)`` image with values in [-1, 1] as an 8-bit RGB image."""
    from PIL import Image as PILImage

    pixels = ((image.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return PILImage.fromarray(pixels.cpu().numpy())


def _conditional_logits() -> Any:
    """A logits processor keeping the first (conditional) half of a ``[cond; uncond]`` batch."""
    from transformers import LogitsProcessor

    class ConditionalLogits(LogitsProcessor):
        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
            return scores[: scores.shape[0] // 2]

    return ConditionalLogits()


# --- the adapter ----------------------------------------------------------------------
@dataclass
class JanusAdapter(HFCausalLMAdapter):
    """Janus / Janus-Pro: SigLIP-encoded image prompts, text generation, VQ image generation.

    See the module docstring for prompt labelling, image generation and the alignment
    of generation states.
    """

    name: ClassVar[str] = "janus"
    description: ClassVar[str] = (
        "DeepSeek Janus / Janus-Pro (JanusForConditionalGeneration): text and image prompts, "
        "text generation, image generation with classifier-free guidance"
    )
    model_types: ClassVar[tuple[str, ...]] = ("janus",)
    capabilities: ClassVar[frozenset[str]] = frozenset(CAPABILITIES)

    layers_path: str = field(default="model.language_model.layers", kw_only=True)

    @classmethod
    def load(
        cls,
        source: str,
        *,
        device: str = "cpu",
        dtype: str = "auto",
        trust_remote_code: bool = False,
        revision: str | None = None,
    ) -> JanusAdapter:
        """Load ``JanusForConditionalGeneration`` and its ``JanusProcessor``.

        Raises:
            ModelLoadError: the checkpoint cannot be loaded or is not a Janus model.
        """
        model, processor = load_multimodal(
            cls, str(source), "JanusForConditionalGeneration",
            device=device, dtype=dtype, trust_remote_code=trust_remote_code, revision=revision,
        )
        return cls(
            model=model,
            processor=processor,
            source=str(source),
            extra_identity={
                "num_image_tokens": int(model.config.vision_config.num_image_tokens),
                "default_system_prompt": bool(getattr(processor, "use_default_system_prompt", False)),
            },
        )

    # --- introspection ----------------------------------------------------------------
    @property
    def tokenizer(self) -> Any:
        return self.processor.tokenizer

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
        from transformers.processing_utils import ProcessorMixin

        proc = self.processor
        content = [{"type": "image"}] if image is not None else []
        fallback = (f"{proc.image_token}\n" if image is not None else "", "")
        prefix, text, suffix = template_parts(proc, content, text, fallback)
        # What JanusProcessor.__call__ adds before handing over to ProcessorMixin.__call__.
        if for_image_generation:
            suffix += proc.image_start_token
        elif getattr(proc, "use_default_system_prompt", False):
            from transformers.models.janus.processing_janus import DEFAULT_SYSTEM_PROMPT

            prefix = DEFAULT_SYSTEM_PROMPT + prefix
        return process_prompt(
            lambda **kw: ProcessorMixin.__call__(proc, **kw),
            self.tokenizer,
            prefix + text + suffix,
            (len(prefix), len(prefix) + len(text)),
            image=image,
            image_token_id=self.image_token_id,
            device=self.device,
            dtype=self.model.dtype,
        )

    def _prompt(
        self, text: str, image: Image.Image | None = None
    ) -> tuple[dict[str, torch.Tensor], list[Role]]:
        prompt = self._processed(text, image)
        return prompt.inputs, prompt.roles

    def encode_image(self, image: Image.Image, question: str = "") -> Encoded:
        """One forward pass over the templated ``<image> question`` user turn."""
        self.require("image-prompt")
        return self._encode(*self._prompt(question, image))

    # --- generation ---------------------------------------------------------------------
    def _generation_config(self, settings: GenerationSettings, max_new_tokens: int) -> Any:
        cfg = super()._generation_config(settings, max_new_tokens)
        cfg.suppress_tokens = [self.image_token_id]
        return cfg

    def generate_image(
        self,
        text: str,
        *,
        settings: GenerationSettings = GenerationSettings(),
        keep_generation_states: bool = False,
    ) -> Generation:
        """Generate the full grid of image tokens, with classifier-free guidance when
        ``settings.guidance_scale > 1``.

        ``settings.image_do_sample``, ``image_temperature``, ``guidance_scale`` and
        ``seed`` apply; ``max_new_tokens`` does not (the grid size is the model's).

        Raises:
            ProbeInputError: prompt and image tokens do not fit the model's context.
        """
        from transformers import LogitsProcessorList

        self.require("image-gen")
        model, tok = self.model, self.tokenizer
        prompt = self._processed(text, None, for_image_generation=True)
        n = prompt.n_tokens
        check_prompt_length(n + self.num_image_tokens, self.max_context)

        cfg = copy.deepcopy(model.generation_config)
        cfg.do_sample = settings.image_do_sample
        cfg.temperature = settings.image_temperature if settings.image_do_sample else None
        guided = settings.guidance_scale is not None and settings.guidance_scale > 1
        # Janus always runs both branches; without guidance keep the conditional logits
        # (transformers only merges the two rows when guidance_scale > 1).
        cfg.guidance_scale = settings.guidance_scale if guided else 1.0
        processors = [] if guided else [_conditional_logits()]
        boi = tok.convert_tokens_to_ids(self.processor.image_start_token)
        cfg.generation_kwargs = {**(getattr(cfg, "generation_kwargs", None) or {}), "boi_token_id": boi}
        if cfg.pad_token_id is None:
            cfg.pad_token_id = tok.pad_token_id
        if cfg.bos_token_id is None:
            cfg.bos_token_id = tok.bos_token_id

        with torch.no_grad(), seeded(settings.seed, self.device):
            with maybe_capture(model, self.layers_path, keep_generation_states) as rec:
                image_ids = model.generate(
                    input_ids=prompt.inputs["input_ids"],
                    attention_mask=prompt.inputs["attention_mask"],
                    generation_mode="image",
                    generation_config=cfg,
                    logits_processor=LogitsProcessorList(processors),
                )[0]
            embeds = torch.cat(
                [
                    model.get_input_embeddings()(prompt.inputs["input_ids"]),
                    model.prepare_embeddings_for_image_generation(image_ids[None]),
                ],
                dim=1,
            )
            mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device)
            with capture(model, self.layers_path) as tf:
                model.model.language_model(inputs_embeds=embeds, attention_mask=mask, use_cache=False)
            states = tf.states(0)[:, 0]
            pixels = model.decode_image_tokens(image_ids[None])[0]

        response = image_ids.cpu()
        response_roles = [Role.GENERATED_IMAGE] * len(response)
        return Generation(
            encoded=Encoded(
                states=states,
                roles=prompt.roles + response_roles,
                # response positions hold VQ codebook indices, not tokenizer ids
                input_ids=torch.cat([prompt.input_ids, response]),
            ),
            n_prompt_tokens=n,
            response_ids=response,
            image=to_pil(pixels),
            generation_states=(
                step_states(rec, n, response_roles, states) if keep_generation_states else None
            ),
        )
