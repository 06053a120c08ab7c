"""Helpers shared by the multimodal adapters (``janus``, ``emu3``, ``chameleon``).

Loading a ``*ForConditionalGeneration`` model with its processor after checking the
model family (:func:`load_multimodal`), locating the user's text in a processor's
chat template (:func:`template_parts`), tokenising with the processor and labelling
positions from character offsets (:func:`process_prompt`, :func:`label_offsets`,
:class:`ProcessedPrompt`), aligning the states hooked during generation with the
teacher-forced pass (:func:`step_states`) and converting generated images
(:func:`to_pil`). They live here because more than one adapter uses them; what only
one adapter needs stays in its own file. transformers is imported inside functions
only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from ..capture import Recorder, Role
from ..errors import ModelLoadError, ProbeInputError
from ._hf import _SENTINEL, from_pretrained, resolve_dtype, special_token_ids
from ._upstream import require_versions
from .base import Encoded, Generation
from .hf_causal_lm import HFCausalLMAdapter
from .requests import GenerationSettings, LoadOptions, Request

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

__all__ = [
    "ImagePromptAdapter",
    "ProcessedPrompt",
    "label_offsets",
    "load_multimodal",
    "process_prompt",
    "step_states",
    "template_parts",
    "to_pil",
]

_GENERATED = (Role.GENERATED_TEXT, Role.GENERATED_IMAGE)


def load_multimodal(
    cls: type[HFCausalLMAdapter], source: str, model_class: str, options: LoadOptions
) -> tuple[torch.nn.Module, Any]:
    """``transformers.<model_class>`` and its processor, after checking the config's
    ``model_type`` against ``cls.model_types``.

    Raises:
        ModelLoadError: the checkpoint cannot be loaded or is of another family.
    """
    import transformers

    kwargs = options.pretrained_kwargs()
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
        getattr(transformers, model_class),
        source,
        what="model",
        adapter=cls.name,
        dtype=resolve_dtype(options.dtype),
        **kwargs,
    )
    model.to(options.device).eval()
    return model, processor


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


class ImagePromptAdapter(HFCausalLMAdapter):
    """Base of the adapters whose processor interleaves image placeholders with text
    (Janus, Emu3, Chameleon). Subclasses name their transformers class
    (``model_class``) and the package floors their code was written against
    (``requires``), and implement ``_prompt(text, image)``, returning the model inputs
    and one role per position; :meth:`loaded_identity` adds to the model identity."""

    #: ``transformers.<model_class>`` of the family, loaded with ``AutoProcessor``.
    model_class: ClassVar[str] = ""
    #: package -> lowest version the family's code was checked against.
    requires: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def load_from(cls, source: str, options: LoadOptions) -> ImagePromptAdapter:
        """Load ``transformers.<model_class>`` and its processor.

        Raises:
            ModelLoadError: a package below ``requires``, a checkpoint that cannot be
                loaded or is of another family.
        """
        if cls.requires:
            require_versions(cls.requires, who=f"adapter {cls.name!r}")
        model, processor = load_multimodal(cls, str(source), cls.model_class, options)
        adapter = cls(model=model, processor=processor, source=str(source))
        adapter.extra_identity = adapter.loaded_identity()
        return adapter

    def loaded_identity(self) -> dict[str, Any]:
        """What the family records in the model identity besides the defaults."""
        return {}

    # Token-by-token image generation: the family's ``_generate_images(texts, settings,
    # keep_generation_states)`` runs a left-padded batch (its docstring says how).
    def image_generation(self, request: Request, keep_generation_states: bool = False) -> Generation:
        """The full grid of image tokens, with classifier-free guidance when
        ``settings.guidance_scale > 1``; ``image_do_sample``, ``image_temperature``,
        ``guidance_scale`` and ``seed`` apply, ``max_new_tokens`` does not (the grid
        size is the model's).

        Raises:
            ProbeInputError: prompt and image tokens do not fit the model's context.
        """
        self.require("image-gen")
        return self._generate_images([request.text], request.settings, keep_generation_states)[0]

    def image_generations(self, requests: Sequence[Request]) -> list[Generation]:
        """:meth:`image_generation` of each request, as one batch."""
        self.require("image-gen")
        return self._generate_images([r.text for r in requests], requests[0].settings, False)

    def _generate_images(
        self, texts: list[str], settings: GenerationSettings, keep_generation_states: bool
    ) -> list[Generation]:  # pragma: no cover - the family's
        raise NotImplementedError

    @property
    def tokenizer(self) -> Any:
        return self.processor.tokenizer

    def encode_image(self, image: Image.Image, question: str = "") -> Encoded:
        """One forward pass over the model's templated user turn: the image, then the
        question (so the image tokens' states do not depend on the question)."""
        self.require("image-prompt")
        return self._encode(*self._prompt(question, image))
