"""A tiny, seeded, randomly initialised Janus (``JanusForConditionalGeneration``).

Llama text model (3 layers, hidden 32), SigLIP-style vision encoder on 32 px images
with 8 px patches (16 image tokens), and a small VQ model whose 4 x 4 code grid
decodes to an 8 px image. It runs text prompts, image prompts, text generation and
image generation on a CPU in well under a second; its numbers mean nothing.
"""

from __future__ import annotations

from pathlib import Path

from ._tokenizer import TINY_CONTEXT, build_tokenizer

__all__ = ["save_tiny_janus"]

#: Shaped like the real Janus template: "<|User|>: ...\n\n<|Assistant|>:".
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}<|User|>: {% elif message['role'] == 'assistant' %}<|Assistant|>: "
    "{% else %}{{ message['role'] | capitalize }}: {% endif %}"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<image_placeholder>\n"
    "{% elif content['type'] == 'text' %}{{ content['text'] | trim }}{% endif %}"
    "{% endfor %}{{ '\n\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|Assistant|>:{% endif %}"
)

IMAGE_SIZE = 32
PATCH_SIZE = 8
NUM_IMAGE_TOKENS = (IMAGE_SIZE // PATCH_SIZE) ** 2


def save_tiny_janus(out_dir: Path, *, seed: int = 0) -> Path:
    """Build the tiny Janus model, tokenizer and processor and save them to ``out_dir``.

    Args:
        out_dir: folder to write (created if missing); loadable with
            ``JanusAdapter.load(out_dir)``.
        seed: seed of the random initialisation.

    Returns:
        ``out_dir`` as a :class:`~pathlib.Path`.
    """
    import torch
    from transformers import JanusConfig, JanusForConditionalGeneration, JanusProcessor
    from transformers.models.janus.image_processing_pil_janus import JanusImageProcessorPil

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    specials = (
        "<|bos|>",
        "<|eos|>",
        "<|pad|>",
        "<image_placeholder>",
        "<begin_of_image>",
        "<end_of_image>",
    )
    tokenizer = build_tokenizer(
        vocab_size=320,
        special_tokens=specials,
        extra_special_tokens={
            "image_token": "<image_placeholder>",
            "boi_token": "<begin_of_image>",
            "eoi_token": "<end_of_image>",
        },
    )
    tokenizer.add_bos_token = True  # like the real (Llama) tokenizer
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in specials}

    config = JanusConfig(
        text_config={
            "model_type": "llama",
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 3,
            "num_attention_heads": 4,
            "num_key_value_heads": 4,
            "max_position_embeddings": TINY_CONTEXT,
            "bos_token_id": ids["<|bos|>"],
            "eos_token_id": ids["<|eos|>"],
            "pad_token_id": ids["<|pad|>"],
        },
        vision_config={
            "image_size": IMAGE_SIZE,
            "patch_size": PATCH_SIZE,
            "num_image_tokens": NUM_IMAGE_TOKENS,
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 4,
            "projection_dim": 32,
            "depth": 1,
        },
        vq_config={
            "embed_dim": 8,
            "num_embeddings": 64,
            "latent_channels": 8,
            "base_channels": 32,  # GroupNorm uses 32 groups
            "channel_multiplier": [1, 1],
            "num_res_blocks": 1,
            "image_token_embed_dim": 32,
            "projection_dim": 32,
        },
        image_token_id=ids["<image_placeholder>"],
    )
    config.bos_token_id = ids["<|bos|>"]
    config.eos_token_id = ids["<|eos|>"]
    config.pad_token_id = ids["<|pad|>"]

    torch.manual_seed(seed)
    model = JanusForConditionalGeneration(config).eval()
    gen = model.generation_config
    gen.bos_token_id = ids["<|bos|>"]
    gen.eos_token_id = ids["<|eos|>"]
    gen.pad_token_id = ids["<|pad|>"]
    gen.generation_kwargs = {"boi_token_id": ids["<begin_of_image>"]}
    gen._from_model_config = False  # else loading rebuilds it from the model config

    image_processor = JanusImageProcessorPil(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        min_size=PATCH_SIZE,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    processor = JanusProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
        num_image_tokens=NUM_IMAGE_TOKENS,
        use_default_system_prompt=False,
    )
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir
