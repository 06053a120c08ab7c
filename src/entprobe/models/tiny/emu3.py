"""A tiny, seeded, randomly initialised Emu3 (``Emu3ForConditionalGeneration``).

Text model with 3 layers (hidden 32); a small VQ model with spatial factor 8, so a
32 px image is a 4 x 4 grid of visual tokens (plus one end-of-line token per row:
20 ``<image>`` placeholders) and a generated 4 x 4 grid decodes to a 32 px image.
The tokenizer has the special tokens Emu3's processor and ``vocabulary_map`` need.
It runs every mode on a CPU in well under a second; its numbers mean nothing.
"""

from __future__ import annotations

from pathlib import Path

from ._common import keep_generation_config, save_tiny, seeded_model, tiny_text_sizes
from ._tokenizer import build_tokenizer

__all__ = ["save_tiny_emu3"]

#: Shaped like Emu3-Chat's template: "USER: <image>text ASSISTANT:".
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ message['role'] | upper }}: "
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}<image>{% endif %}{% endfor %}"
    "{% for content in message['content'] %}{% if content['type'] == 'text' %}"
    "{{ content['text'] }} {% endif %}{% endfor %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)

IMAGE_SIZE = 32
CODEBOOK_SIZE = 32


def save_tiny_emu3(out_dir: Path, *, seed: int = 0) -> Path:
    """The tiny Emu3 model, tokenizer and processor, for ``Emu3Adapter.load(out_dir)``
    (a builder of :data:`~entprobe.models.tiny.TINY_BUILDERS`)."""
    from transformers import Emu3Config, Emu3ForConditionalGeneration, Emu3ImageProcessor, Emu3Processor

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    named = {
        "bos_token": "<|extra_203|>",
        "eos_token": "<|extra_204|>",
        "pad_token": "<|endoftext|>",
    }
    extra = {
        "image_token": "<image>",
        "boi_token": "<|image start|>",
        "eoi_token": "<|image end|>",
        "image_wrapper_token": "<|image token|>",
        "eof_token": "<|extra_201|>",
        "eol_token": "<|extra_200|>",
    }
    visual = [f"<|visual token {i:06d}|>" for i in range(CODEBOOK_SIZE)]
    tokenizer = build_tokenizer(
        vocab_size=360,
        special_tokens=(*named.values(), *extra.values(), *visual),
        extra_special_tokens=extra,
        **named,
    )
    vocab = tokenizer.get_vocab()
    ids = {k: vocab[v] for k, v in {**named, **extra}.items()}

    config = Emu3Config(
        vq_config={
            "codebook_size": CODEBOOK_SIZE,
            "embed_dim": 4,
            "latent_channels": 4,
            "base_channels": 32,  # GroupNorm uses 32 groups
            "channel_multiplier": [1, 1, 1, 1],  # spatial factor 8, as Emu3Processor assumes
            "num_res_blocks": 1,
            "attn_resolutions": [],
            "temporal_downsample_factor": 2,
            "hidden_size": 32,
            "num_attention_heads": 1,
        },
        text_config={
            **tiny_text_sizes(len(tokenizer)),
            "bos_token_id": ids["bos_token"],
            "eos_token_id": ids["eos_token"],
            "pad_token_id": ids["pad_token"],
            "attention_dropout": 0.0,
        },
        vocabulary_map=vocab,
    )

    model = seeded_model(Emu3ForConditionalGeneration, config, seed)
    gen = keep_generation_config(model, bos=ids["bos_token"], eos=ids["eos_token"], pad=ids["pad_token"])
    # Read by Emu3Adapter: generate a 4 x 4 grid (32 px), not Emu3's 90 x 90 default.
    gen.image_area = IMAGE_SIZE * IMAGE_SIZE

    image_processor = Emu3ImageProcessor(
        min_pixels=IMAGE_SIZE * IMAGE_SIZE,
        max_pixels=IMAGE_SIZE * IMAGE_SIZE,
        spatial_factor=8,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    processor = Emu3Processor(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=CHAT_TEMPLATE
    )
    return save_tiny(out_dir, model, processor)
