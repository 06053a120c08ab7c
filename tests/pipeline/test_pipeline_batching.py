"""``--batch-size`` on the tiny model of every adapter: a batched, overlapped run stores
what a batch-size-1 run stores.

Models in float64: every stored value at every level agrees to 1e-10, generated text,
token counts and generated images (seeded sampling, per-row generators) are
identical. The adapter-level comparisons (states, float32 differences) are in
``tests/models/test_batching.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from entprobe.datasets import PromptRecord, PromptSet, load_prompts
from entprobe.models.base import GenerationSettings
from entprobe.models.registry import get_adapter
from entprobe.models.tiny import build_tiny
from entprobe.pipeline import ProbeOptions, run_probe
from entprobe.store import ResultStore

CASES = {  # tiny family -> (adapter, levels)
    "bert": ("hf-encoder", "prompt"),
    "llama": ("hf-causal-lm", "prompt,text-gen"),
    "chameleon": ("chameleon", "prompt,text-gen"),
    "janus": ("janus", "prompt,text-gen,image-gen"),
    "emu3": ("emu3", "prompt,text-gen,image-gen"),
}
KEY = ["dataset", "sample_id", "level"]


@pytest.mark.parametrize("family", list(CASES))
def test_batched_run_stores_the_batch_size_one_numbers(tmp_path, family):
    name, levels = CASES[family]
    adapter = get_adapter(name).load(str(build_tiny(family, tmp_path / family)))
    adapter.model.to(torch.float64)
    texts = [
        "A red cube.",
        "Three cats on a green sofa near a window.",
        "Fog at dusk.",
        "Two dogs, one ball.",
    ]
    records = [
        PromptRecord(id=f"t{i}", dataset="short", modality="text", text=t) for i, t in enumerate(texts)
    ]
    sets = [PromptSet(name="short", spec="short", records=records)]
    if adapter.supports("image-prompt"):
        sets.append(load_prompts("sample:mmbench", limit=3))
    gen = GenerationSettings(max_new_tokens=4, do_sample=True, temperature=0.8, seed=5)

    def run(tag: str, **options) -> tuple[pd.DataFrame, pd.DataFrame]:
        with ResultStore(tmp_path / f"{tag}.duckdb") as store:
            summary = run_probe(
                adapter,
                sets,
                levels=levels,
                store=store,
                progress=False,
                options=ProbeOptions(generation=gen, save_images=tmp_path / tag, **options),
            )
        assert summary.n_failed == 0, summary.failures
        assert summary.n_batch_retries == 0  # the batches really ran as batches
        with ResultStore(tmp_path / f"{tag}.duckdb", read_only=True) as store:
            return store.samples().sort_values(KEY).reset_index(drop=True), store.layer_metrics()

    one_samples, one = run("b1", batch_size=1, overlap=False)
    many_samples, many = run("b3", batch_size=3, overlap=True)
    cols = ["generated_text", "n_prompt_tokens", "n_response_tokens", "status"]
    pd.testing.assert_frame_equal(one_samples[KEY + cols], many_samples[KEY + cols])
    merged = one.merge(many, on=KEY + ["layer", "metric"], suffixes=("_1", "_3"), validate="one_to_one")
    assert len(merged) == len(one) == len(many) and len(one) > 0
    np.testing.assert_allclose(merged["value_3"], merged["value_1"], rtol=0, atol=1e-10)
    for a, b in zip(one_samples["image_path"].dropna(), many_samples["image_path"].dropna(), strict=True):
        assert Path(a).name == Path(b).name
        assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))
