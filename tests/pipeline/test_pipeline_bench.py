"""``entprobe bench --model-config``: the sized random model is built right and the
command reports each batch size side by side. Timings are printed, never asserted."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from entprobe.cli import main
from entprobe.errors import ProbeInputError
from entprobe.models.base import GenerationSettings
from entprobe.pipeline import model_bench

SMALL = {  # a Janus-Pro-shaped config small enough for a test
    "family": "janus",
    "text": {
        "hidden_size": 48,
        "intermediate_size": 96,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 512,
    },
    "vision": {
        "image_size": 32,
        "patch_size": 8,
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 4,
        "intermediate_size": 64,
        "num_image_tokens": 16,
        "projection_dim": 48,
    },
    "vq": {
        "embed_dim": 8,
        "num_embeddings": 64,
        "num_patches": 4,
        "projection_dim": 48,
        "image_token_embed_dim": 48,
    },
}


def test_meta_built_model_has_the_sizes_and_real_buffers(monkeypatch):
    import transformers

    monkeypatch.setitem(model_bench.MODEL_CONFIGS, "small-janus", SMALL)
    adapter = model_bench.build_sized_adapter("small-janus", image_tokens=9)
    model = adapter.model
    cfg = model.config
    assert (cfg.text_config.hidden_size, cfg.text_config.num_hidden_layers, cfg.text_config.vocab_size) == (
        48,
        2,
        512,
    )
    assert adapter.num_image_tokens == 9 and adapter.n_layers == 2
    assert not any(p.is_meta for p in model.parameters())
    # buffers equal those of an ordinary construction of the same config
    reference = transformers.JanusForConditionalGeneration(cfg)
    for name, buf in reference.named_buffers():
        torch.testing.assert_close(dict(model.named_buffers())[name], buf, rtol=0, atol=0)
    weights = model.model.language_model.layers[0].mlp.up_proj.weight
    assert abs(float(weights.detach().std()) - 0.02) < 0.005
    gen = adapter.generate_image("a red cube", settings=GenerationSettings(seed=1))
    assert gen.response_ids.shape == (9,) and torch.isfinite(gen.encoded.states).all()
    with pytest.raises(ProbeInputError, match="square"):
        model_bench.build_sized_adapter("small-janus", image_tokens=10)
    with pytest.raises(ProbeInputError, match="unknown --model-config 'nope'.*janus-pro-1b"):
        model_bench.build_sized_adapter("nope")


def test_bench_command_reports_batch_sizes_side_by_side(tmp_path):
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(
        main,
        [
            "bench",
            "--model-config",
            "tiny-llama",
            "--batch-sizes",
            "1,3",
            "--prompts",
            "3",
            "--max-new-tokens",
            "2",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "RANDOM WEIGHTS" in result.output and "B=1" in result.output and "B=3" in result.output
    rows = json.loads(out.read_text())["rows"]
    assert [r["batch_size"] for r in rows] == [1, 3]
    assert all(r["samples"] == 6 for r in rows)  # 3 prompts x (prompt, text-gen)
    assert all(r["wall_s"] > 0 and r["model_s"] > 0 for r in rows)
