"""A tiny, seeded, randomly initialised OmniGen2 multimodal LLM in OmniGen2's release layout.

OmniGen2 (VectorSpaceLab/OmniGen2) ships a diffusers-style folder: ``model_index.json``
naming its components, ``mllm/`` (transformers' ``Qwen2_5_VLForConditionalGeneration``),
``processor/`` (``Qwen2_5_VLProcessor``), and ``transformer/``, ``vae/``, ``scheduler/``
for the diffusion decoder. entprobe reads only ``model_index.json``, ``mllm/`` and
``processor/``, so only those are written. The Qwen2.5-VL here has a 3-layer text model
(hidden 32) and a 1-block vision encoder with 4 px patches merged 2 x 2; images are
resized to at most 32 x 32 px keeping their aspect (sides multiples of 8), e.g. an
8 x 8 patch grid and 16 image tokens for a square image. Built with the
transformers that is installed (4.49 or later); its numbers mean nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

from ._common import keep_generation_config, seeded_model, tiny_text_sizes
from ._tokenizer import build_tokenizer

__all__ = ["IMAGE_SIZE", "NUM_IMAGE_TOKENS", "save_tiny_omnigen2"]

IMAGE_SIZE = 32
PATCH_SIZE = 4
MERGE_SIZE = 2
#: image tokens in the LLM sequence per 32 x 32 image: (32 / 4)^2 patches / (2 x 2) merged.
NUM_IMAGE_TOKENS = (IMAGE_SIZE // PATCH_SIZE) ** 2 // MERGE_SIZE**2

SPECIALS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<|img|>",
)

#: The component table of OmniGen2's model_index.json (only names, no weights).
MODEL_INDEX = {
    "_class_name": "OmniGen2Pipeline",
    "mllm": ["transformers", "Qwen2_5_VLForConditionalGeneration"],
    "processor": ["transformers", "Qwen2_5_VLProcessor"],
    "scheduler": ["scheduling_flow_match_euler_discrete", "FlowMatchEulerDiscreteScheduler"],
    "transformer": ["transformer_omnigen2", "OmniGen2Transformer2DModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}


def save_tiny_omnigen2(out_dir: Path, *, seed: int = 0) -> Path:
    """The tiny OmniGen2 MLLM and processor, for ``OmniGen2Adapter.load(out_dir)``
    (a builder of :data:`~entprobe.models.tiny.TINY_BUILDERS`)."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessor

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(
        vocab_size=330,
        special_tokens=SPECIALS,
        bos_token="<|endoftext|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIALS}
    # Top-level text keys: transformers 4.49 reads them there, 5.x folds them into text_config.
    config = Qwen2_5_VLConfig(
        **tiny_text_sizes(len(tokenizer), num_key_value_heads=2),
        rope_scaling={"type": "mrope", "mrope_section": [2, 1, 1]},  # sums to head_dim / 2
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        vision_config={
            "depth": 1,
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_heads": 2,
            "patch_size": PATCH_SIZE,
            "spatial_merge_size": MERGE_SIZE,
            "temporal_patch_size": 2,
            "window_size": 16,
            "fullatt_block_indexes": [0],
            "out_hidden_size": 32,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    model = seeded_model(Qwen2_5_VLForConditionalGeneration, config, seed)
    keep_generation_config(
        model,
        bos=ids["<|endoftext|>"],
        eos=[ids["<|im_end|>"], ids["<|endoftext|>"]],
        pad=ids["<|endoftext|>"],
    )

    pixels = IMAGE_SIZE * IMAGE_SIZE
    image_processor = Qwen2VLImageProcessor(
        min_pixels=pixels,
        max_pixels=pixels,
        patch_size=PATCH_SIZE,
        merge_size=MERGE_SIZE,
        temporal_patch_size=2,
    )
    # The processor folder holds the tokenizer and the image processor. Qwen2_5_VLProcessor
    # itself is not built: under transformers 5 it needs a video processor (torchvision).
    model.save_pretrained(out_dir / "mllm")
    proc_dir = out_dir / "processor"
    tokenizer.save_pretrained(proc_dir)
    image_processor.save_pretrained(proc_dir)
    # As in the release: Qwen2.5-VL's processor insists on a Qwen2 tokenizer class.
    cfg_file = proc_dir / "tokenizer_config.json"
    tok_cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
    tok_cfg["tokenizer_class"] = "Qwen2Tokenizer"
    cfg_file.write_text(json.dumps(tok_cfg, indent=2) + "\n", encoding="utf-8")
    (out_dir / "model_index.json").write_text(json.dumps(MODEL_INDEX, indent=2) + "\n", encoding="utf-8")
    return out_dir
