"""``chameleon``: Meta's Chameleon through ``ChameleonForConditionalGeneration``.

Understanding only: text and image prompts, and text generation from either. In
transformers Chameleon cannot generate images (image-token logits are masked and its
VQ model has no decoder), so :meth:`ChameleonAdapter.generate_image` refuses at once.

Prompt format: the processor's chat mode, ``<s> prompt <sep>``, where an image prompt
is ``<image>`` followed by the question (the image first, so its tokens' states do not
depend on the question). The processor expands ``<image>`` into
``<racm3:break> <image> x image_seq_length <eoss>``. Roles: the image placeholders ->
IMAGE (their embeddings are replaced by the VQ tokens of the image), BOS, the
separator and the image start/end markers -> SPECIAL, the rest TEXT; generated tokens
as in :mod:`~entprobe.models.hf_causal_lm`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ..errors import UnsupportedError
from ._multimodal import ImagePromptAdapter
from .base import Generation, roles_from_ids
from .requests import Request

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

    from ..capture import Role

__all__ = ["ChameleonAdapter"]

_NO_IMAGE_GEN = (
    "chameleon in transformers is understanding-only: image-token logits are masked and its "
    "VQ model has no decoder"
)


@dataclass
class ChameleonAdapter(ImagePromptAdapter):
    """Chameleon: text and image prompts, text generation."""

    name = "chameleon"
    description = (
        "Chameleon (ChameleonForConditionalGeneration): text and image prompts, text generation; "
        "no image generation in transformers"
    )
    model_types = ("chameleon",)
    capabilities = frozenset({"text-prompt", "image-prompt", "text-gen"})

    layer_paths = ("model.layers",)

    model_class = "ChameleonForConditionalGeneration"

    def _special_ids(self) -> set[int]:
        p = self.processor
        ids = super()._special_ids()
        ids.update(
            i
            for i in (p.image_start_token_id, p.image_end_token_id, self.tokenizer.sep_token_id)
            if i is not None
        )
        return ids

    def _prompt(
        self, text: str, image: Image.Image | None = None
    ) -> tuple[dict[str, torch.Tensor], list[Role]]:
        p = self.processor
        if image is None:
            enc = p(text=text, return_tensors="pt")
        else:
            enc = p(text=p.image_token + text, images=image.convert("RGB"), return_tensors="pt")
        inputs = {k: v.to(self.device) for k, v in enc.items()}
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        roles = roles_from_ids(
            enc["input_ids"][0], image_token_ids=(p.image_token_id,), special_token_ids=self._special_ids()
        )
        return inputs, roles

    def image_generation(self, request: Request, keep_generation_states: bool = False) -> Generation:
        """Always raises :class:`UnsupportedError`: Chameleon cannot generate images here."""
        raise UnsupportedError(_NO_IMAGE_GEN)
