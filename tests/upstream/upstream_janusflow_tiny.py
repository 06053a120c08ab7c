"""A tiny random JanusFlow built from the REAL upstream classes, saved in the release layout.

The release (``deepseek-ai/JanusFlow-1.3B``) is a Hugging Face folder read by
``VLChatProcessor.from_pretrained`` and ``MultiModalityCausalLM.from_pretrained``
(``janus/janusflow/models`` of deepseek-ai/Janus); the README decodes latents with the
separately downloaded SDXL VAE, here a tiny diffusers ``AutoencoderKL`` in ``vae/``.

Upstream hard-codes the widths (LLM 2048, SigLIP 1024, UViT 768), so only depths,
vocabulary and image size shrink: a 2-layer Llama (16 heads, 4 KV heads, MLP 128), a
1-layer SigLIP-L on 64 px (16 patches = ``num_image_tokens``), a UViT encoder with
stride 2 and one mid block over a 4 x 8 x 8 latent (16 latent tokens), a decoder
without mid block. About 50 M parameters, a few seconds to build.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from entprobe.models.tiny import build_tokenizer

__all__ = ["JANUS_SPECIALS", "build_tiny_janusflow", "upstream_janusflow"]

JANUS_SPECIALS = (
    "<｜begin▁of▁sentence｜>",
    "<｜end▁of▁sentence｜>",
    "<｜▁pad▁｜>",
    "<image_placeholder>",
    "<begin_of_image>",
    "<end_of_image>",
    "<｜begin▁of▁generation｜>",
)


def upstream_janusflow(checkout: Path) -> None:
    root = str(Path(checkout).resolve())
    if root not in sys.path:
        sys.path.insert(0, root)


def build_tiny_janusflow(out: Path, checkout: Path, *, seed: int = 0) -> Path:
    """Build and save a tiny JanusFlow (model, processor, ``vae/``) into ``out``; return it."""
    upstream_janusflow(checkout)
    from diffusers.models import AutoencoderKL
    from janus.janusflow.models import MultiModalityCausalLM, VLChatProcessor, VLMImageProcessor
    from janus.janusflow.models.modeling_vlm import MultiModalityConfig
    from transformers import LlamaTokenizerFast

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(
        vocab_size=320,
        special_tokens=JANUS_SPECIALS,
        bos_token=JANUS_SPECIALS[0],
        eos_token=JANUS_SPECIALS[1],
        pad_token=JANUS_SPECIALS[2],
    )
    tok.save_pretrained(out / "_tok")
    tok = LlamaTokenizerFast.from_pretrained(out / "_tok")  # the class the processor declares
    image_processor = VLMImageProcessor(image_size=64, image_mean=(0.5, 0.5, 0.5), image_std=(0.5, 0.5, 0.5))
    processor = VLChatProcessor(image_processor, tok, num_image_tokens=16)
    processor.save_pretrained(out)

    cfg = MultiModalityConfig(
        vision_und_enc_config={
            "cls": "CLIPVisionTower",
            "params": {
                "model_name": "siglip_large_patch16_384",
                "image_size": 64,
                "select_feature": "same",
                "select_layer": 1,
                "ckpt_path": "",
            },
        },
        vision_gen_enc_config={
            "cls": "ShallowUViTEncoder",
            "params": {
                "input_channels": 4,
                "stride": 2,
                "kernel_size": 2,
                "padding": 0,
                "block_out_channels": [768],
                "layers_in_middle": 1,
                "hidden_size": 2048,
                "use_mid_block": True,
            },
        },
        vision_gen_dec_config={
            "cls": "ShallowUViTDecoder",
            "params": {
                "in_channels": 768,
                "out_channels": 4,
                "block_out_channels": [768],
                "upsamples": 1,
                "layers_in_middle": 1,
                "hidden_size": 2048,
                "use_mid_block": False,
            },
        },
        language_config={
            "vocab_size": len(tok) + 8,
            "hidden_size": 2048,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 16,
            "num_key_value_heads": 4,
            "max_position_embeddings": 2048,
            "bos_token_id": tok.bos_token_id,
            "eos_token_id": tok.eos_token_id,
            "pad_token_id": tok.pad_token_id,
        },
        torch_dtype="float32",
    )
    torch.manual_seed(seed)
    model = MultiModalityCausalLM(cfg)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # upstream zero-initialises some parts; make every part matter
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.02)
    model.save_pretrained(out)

    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=8,
        block_out_channels=(8, 8, 8, 8),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
    )
    vae.save_pretrained(out / "vae")
    return out
