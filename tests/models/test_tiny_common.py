"""What the tiny model builders share (entprobe.models.tiny._common)."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from entprobe.models.tiny._common import keep_generation_config, save_tiny, seeded_model, tiny_text_sizes
from entprobe.models.tiny._tokenizer import TINY_CONTEXT


def test_tiny_text_sizes_defaults_and_overrides():
    assert tiny_text_sizes(100) == {
        "vocab_size": 100,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "max_position_embeddings": TINY_CONTEXT,
    }
    sizes = tiny_text_sizes(7, num_hidden_layers=2, num_key_value_heads=2, max_position_embeddings=512)
    assert (sizes["num_hidden_layers"], sizes["num_key_value_heads"], sizes["max_position_embeddings"]) == (
        2,
        2,
        512,
    )


def test_seeded_model_is_reproducible_and_in_eval_mode():
    first = seeded_model(lambda n: torch.nn.Linear(n, 2), 3, seed=5)
    second = seeded_model(lambda n: torch.nn.Linear(n, 2), 3, seed=5)
    assert not first.training
    assert torch.equal(first.weight, second.weight)


def test_keep_generation_config_sets_ids_and_keeps_it():
    model = SimpleNamespace(generation_config=SimpleNamespace(_from_model_config=True))
    gen = keep_generation_config(model, bos=1, eos=[2, 3], pad=0)
    assert gen is model.generation_config
    assert (gen.bos_token_id, gen.eos_token_id, gen.pad_token_id, gen._from_model_config) == (
        1,
        [2, 3],
        0,
        False,
    )


def test_save_tiny_saves_both_and_returns_the_folder(tmp_path):
    saved = []
    part = SimpleNamespace(save_pretrained=saved.append)
    assert save_tiny(tmp_path, part, part) == tmp_path
    assert saved == [tmp_path, tmp_path]
