"""A tiny, seeded, randomly initialised Janus (``JanusForConditionalGeneration``).

Llama text model (3 layers, hidden 32), SigLIP-style vision encoder on 32 px images
with 8 px patches (16 image tokens), and a small VQ model whose 4 x 4 code grid
decodes to an 8 px image. It runs text prompts, image prompts, text generation and
image generation on a CPU in well under a second; its numbers mean nothing.
"""

from __future__ import annotations

from pathlib import Path

from ._common import keep_generation_config, save_tiny, seeded_model, tiny_text_sizes
from ._tokenizer import build_tokenizer

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
    """The tiny Janus model, tokenizer and processor, for ``JanusAdapter.load(out_dir)``
    (a builder of :data:`~entprobe.models.tiny.TINY_BUILDERS`)."""
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
            **tiny_text_sizes(len(tokenizer)),
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

    model = seeded_model(JanusForConditionalGeneration, config, seed)
    gen = keep_generation_config(model, bos=ids["<|bos|>"], eos=ids["<|eos|>"], pad=ids["<|pad|>"])
    gen.generation_kwargs = {"boi_token_id": ids["<begin_of_image>"]}

    image_processor = JanusImageProcessorPil(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        min_size=PATCH_SIZE,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    return save_tiny(
        out_dir,
        model,
        JanusProcessor(
            image_processor=image_processor,
            tokenizer=tokenizer,
            chat_template=CHAT_TEMPLATE,
            num_image_tokens=NUM_IMAGE_TOKENS,
            use_default_system_prompt=False,
        ),
    )
