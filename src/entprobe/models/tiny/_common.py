"""What the tiny model builders share: the text backbone's sizes, seeded construction,
a generation config that survives saving, and the save itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._tokenizer import TINY_CONTEXT

__all__ = ["TINY_HIDDEN", "keep_generation_config", "save_tiny", "seeded_model", "tiny_text_sizes"]

#: Hidden size of every tiny model's text backbone.
TINY_HIDDEN = 32


def tiny_text_sizes(
    vocab_size: int,
    *,
    num_hidden_layers: int = 3,
    num_key_value_heads: int = 4,
    max_position_embeddings: int = TINY_CONTEXT,
) -> dict[str, Any]:
    """Config keys of a tiny decoder text backbone: hidden 32, MLP 64, 4 attention heads."""
    return {
        "vocab_size": vocab_size,
        "hidden_size": TINY_HIDDEN,
        "intermediate_size": 64,
        "num_hidden_layers": num_hidden_layers,
        "num_attention_heads": 4,
        "num_key_value_heads": num_key_value_heads,
        "max_position_embeddings": max_position_embeddings,
    }


def seeded_model(model_class: Any, config: Any, seed: int) -> Any:
    """``model_class(config)`` in eval mode, its random weights drawn after
    ``torch.manual_seed(seed)``."""
    import torch

    torch.manual_seed(seed)
    return model_class(config).eval()


def keep_generation_config(model: Any, *, bos: int, eos: int | list[int], pad: int) -> Any:
    """Set the special token ids of ``model.generation_config`` and keep it as it is:
    without ``_from_model_config = False`` loading rebuilds it from the model config,
    dropping what a builder adds to it. Returns the generation config."""
    gen = model.generation_config
    gen.bos_token_id = bos
    gen.eos_token_id = eos
    gen.pad_token_id = pad
    gen._from_model_config = False
    return gen


def save_tiny(out_dir: Path, model: Any, processor: Any) -> Path:
    """Save ``model`` and its tokenizer or processor into ``out_dir``; returns ``out_dir``."""
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir
