"""``omnigen2``: the multimodal LLM of OmniGen2 (VectorSpaceLab/OmniGen2).

OmniGen2's checkpoint is a diffusers-style folder (``model_index.json``, ``mllm/``,
``processor/``, ``transformer/``, ``vae/``, ``scheduler/``). Its multimodal LLM is
transformers' stock ``Qwen2_5_VLForConditionalGeneration`` in ``mllm/``; the tokenizer
and image processor are in ``processor/``. No OmniGen2 code is needed: only those two
folders are read, with transformers (tested with 4.49 and 5.x).

Prompts are laid out as OmniGen2's chat pipeline lays them out: its system prompt, then
the user turn (for an image prompt ``"<img1>: <|vision_start|><|image_pad|><|vision_end|>"``
before the question), then ``"<|im_start|>assistant\\n"``. The image placeholder is
expanded to ``prod(image_grid_thw) / merge_size**2`` copies, exactly as
``Qwen2_5_VLProcessor`` does, by this adapter (the processor class itself needs a video
processor, i.e. torchvision, under transformers 5). Roles: the expanded image
placeholders are IMAGE (their embeddings are replaced by the vision encoder's), tokens
overlapping the user's text TEXT, the rest SPECIAL.

Text generation (inherited): ``generate``, stopping at ``<|im_end|>``, ``<|endoftext|>``
or ``<|img|>`` (the token with which OmniGen2 hands over to its image decoder), then one
teacher-forced pass over ``[prompt; response]`` with the image.

Image generation is refused: OmniGen2 generates images in a separate diffusion
transformer conditioned on the LLM's last hidden state; the LLM never sees the image, so
the paper's prompt -> response proxy over LLM states is not defined for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..capture import Role
from ..errors import ModelLoadError
from ._hf import find_layers_path, from_pretrained, resolve_dtype, special_token_ids
from ._multimodal import label_offsets
from ._upstream import require_versions
from .base import Encoded
from .hf_causal_lm import HFCausalLMAdapter
from .requests import LoadOptions

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

__all__ = ["OmniGen2Adapter"]

#: The system turn of OmniGen2's pipelines (pipeline_omnigen2_chat.py, _apply_chat_template).
SYSTEM = (
    "<|im_start|>system\nYou are a helpful assistant that generates high-quality images based "
    "on user instructions.<|im_end|>\n<|im_start|>user\n"
)
IMAGE_BLOCK = "<img1>: <|vision_start|>{pad}<|vision_end|>"
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n"
#: OmniGen2's chat pipeline stops text generation at these.
STOP_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|img|>")

WHY_NO_IMAGE_GEN = (
    "OmniGen2 generates images in a separate diffusion transformer conditioned on the LLM's last "
    "hidden state; the LLM never sees the generated image, so the prompt->response proxy over LLM "
    "states is not defined (probe its prompt and text-gen levels instead)"
)


def _check_layout(source: str) -> None:
    """A local folder must be OmniGen2's: a ``model_index.json`` naming ``mllm`` and ``processor``."""
    root = Path(source).expanduser()
    if not root.exists():
        return  # a hub id: from_pretrained reports what is missing
    index = root / "model_index.json"
    try:
        table = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"{source!r} is not an OmniGen2 checkpoint folder: cannot read its model_index.json ({exc})"
        ) from exc
    missing = [k for k in ("mllm", "processor") if k not in table]
    if missing:
        raise ModelLoadError(
            f"{index} names no {', '.join(missing)} component; is this an OmniGen2 checkpoint?"
        )


@dataclass
class OmniGen2Adapter(HFCausalLMAdapter):
    """OmniGen2's Qwen2.5-VL: text and image prompts, text generation; no image-gen (see module)."""

    name = "omnigen2"
    description = (
        "OmniGen2 (its Qwen2.5-VL multimodal LLM, mllm/ + processor/ of the release folder, "
        f"transformers only): text and image prompts, text generation. No image-gen: {WHY_NO_IMAGE_GEN}"
    )
    pipeline_classes = ("OmniGen2Pipeline",)
    capabilities = frozenset({"text-prompt", "image-prompt", "text-gen"})
    unsupported = {"image-gen": WHY_NO_IMAGE_GEN}

    image_processor: Any = field(default=None, kw_only=True)

    @classmethod
    def load_from(cls, source: str, options: LoadOptions) -> OmniGen2Adapter:
        """Load ``mllm/`` and ``processor/`` of an OmniGen2 folder or hub id.

        Raises:
            ModelLoadError: not an OmniGen2 layout, or ``mllm/`` is not a Qwen2.5-VL.
        """
        from transformers import (
            AutoConfig,
            AutoImageProcessor,
            AutoTokenizer,
            Qwen2_5_VLForConditionalGeneration,
        )

        require_versions({"transformers": "4.49"}, who=f"adapter {cls.name!r} (Qwen2.5-VL)")
        source = str(source)
        kw = options.pretrained_kwargs()
        _check_layout(source)
        mllm, proc = "mllm", "processor"
        config = from_pretrained(
            AutoConfig, source, what="mllm config", adapter=cls.name, subfolder=mllm, **kw
        )
        if config.model_type != "qwen2_5_vl":
            raise ModelLoadError(
                f"{source}/{mllm} is a {config.model_type!r} model, not OmniGen2's qwen2_5_vl"
            )
        tok = from_pretrained(AutoTokenizer, source, what="tokenizer", adapter=cls.name, subfolder=proc, **kw)
        images = from_pretrained(
            AutoImageProcessor, source, what="image processor", adapter=cls.name, subfolder=proc, **kw
        )
        model = from_pretrained(
            Qwen2_5_VLForConditionalGeneration,
            source,
            what="mllm",
            adapter=cls.name,
            subfolder=mllm,
            dtype=resolve_dtype(options.dtype),
            **kw,
        )
        model.to(options.device).eval()
        return cls(
            model=model,
            processor=tok,
            source=source,
            image_processor=images,
            layers_path=find_layers_path(model),
            extra_identity={"prompt_format": "omnigen2-chat"},
        )

    # --- prompts ---------------------------------------------------------------------------
    def _stop_ids(self) -> set[int]:
        ids = {self.tokenizer.convert_tokens_to_ids(t) for t in STOP_TOKENS}
        return {i for i in ids if isinstance(i, int) and i != self.tokenizer.unk_token_id}

    def _special_ids(self) -> set[int]:
        return super()._special_ids() | self._stop_ids()

    def _prompt(
        self, text: str, image: Image.Image | None = None
    ) -> tuple[dict[str, torch.Tensor], list[Role]]:
        """Inputs (``input_ids``, ``attention_mask``, and for an image ``pixel_values``,
        ``image_grid_thw``) and one role per position."""
        text = text.strip()
        pad = "<|image_pad|>"
        inputs: dict[str, torch.Tensor] = {}
        replacements: list[dict[str, Any]] = []
        prefix, n_image = SYSTEM, 0
        if image is not None:
            pixels = self.image_processor(images=[image.convert("RGB")], return_tensors="pt")
            grid = pixels["image_grid_thw"]
            n_image = int(grid[0].prod()) // int(self.image_processor.merge_size) ** 2
            start = len(prefix) + IMAGE_BLOCK.index("{pad}")
            replacements = [
                {"span": (start, start + len(pad)), "new_span": (start, start + n_image * len(pad))}
            ]
            prefix += IMAGE_BLOCK.format(pad=pad)
            inputs["pixel_values"] = pixels["pixel_values"].to(self.device, self.model.dtype)
            inputs["image_grid_thw"] = grid.to(self.device)
        unexpanded = prefix + text + SUFFIX
        expanded = unexpanded.replace(pad, pad * n_image, 1) if replacements else unexpanded
        enc = self.tokenizer(expanded, add_special_tokens=False, return_offsets_mapping=True)
        roles = label_offsets(
            enc["input_ids"],
            enc["offset_mapping"],
            replacements,
            (len(prefix), len(prefix) + len(text)),
            image_token_id=int(self.model.config.image_token_id),
            special_ids=special_token_ids(self.tokenizer),
        )
        ids = torch.tensor([enc["input_ids"]], dtype=torch.long, device=self.device)
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), **inputs}, roles

    def encode_image(self, image: Image.Image, question: str = "") -> Encoded:
        self.require("image-prompt")
        return self._encode(*self._prompt(question, image))

    def _generation_config(self, settings: Any, max_new_tokens: int) -> Any:
        cfg = super()._generation_config(settings, max_new_tokens)
        eos = cfg.eos_token_id
        eos = [eos] if isinstance(eos, int) else list(eos or ())
        cfg.eos_token_id = sorted(set(eos) | self._stop_ids())
        return cfg
