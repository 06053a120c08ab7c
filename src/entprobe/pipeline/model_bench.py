"""``entprobe bench --model-config NAME``: time a full probe at a real model's size.

A model with a real checkpoint's dimensions (:data:`MODEL_CONFIGS`, written out by
us from the published configs) is built with random weights -- on the ``meta``
device first, then given memory and filled with N(0, 0.02) weights (norm weights 1,
biases 0) and its few buffers (RoPE frequencies, position ids) recomputed, which
skips transformers' slow per-module initialisation -- and probed at every level
(prompt, text-gen, image-gen) on the same prompts at each batch size, one after the
other in one process, so the figures are comparable side by side. Random weights
make the entropies meaningless; the timings are honest (the same operations run, on
tensors of the real shapes). The tokenizer is the tiny offline one, so prompts are
tokenised differently from the real model (token counts are printed).

``tiny-<family>`` names bench the tiny test models through their real ``load()``.
"""

from __future__ import annotations

import math
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import ProbeInputError
from ..models.base import GenerationSettings, ModelAdapter

__all__ = ["BENCH_PROMPTS", "MODEL_CONFIGS", "ModelBenchResult", "build_sized_adapter", "run_model_bench"]


#: Sizes of published checkpoints (Llama decoder, SigLIP-L/16-384 encoder, VQ-16
#: tokenizer with a 16384-entry codebook, 24 x 24 = 576 image tokens), from the
#: checkpoints' config.json as published on the Hugging Face hub
#: (deepseek-community/Janus-Pro-1B, -7B). Written down from those pages; this
#: machine has no network, so they were not re-read here.
def _janus_pro(hidden: int, intermediate: int, layers: int, heads: int) -> dict[str, Any]:
    """One Janus-Pro size: the 1B and 7B checkpoints differ only in the language model
    (and the projections into it); vision encoder and VQ tokenizer are the same."""
    return {
        "family": "janus",
        "text": {
            "hidden_size": hidden,
            "intermediate_size": intermediate,
            "num_hidden_layers": layers,
            "num_attention_heads": heads,
            "num_key_value_heads": heads,
            "vocab_size": 102400,
            "max_position_embeddings": 16384,
            "rms_norm_eps": 1e-6,
        },
        "vision": {
            "image_size": 384,
            "patch_size": 16,
            "hidden_size": 1024,
            "num_hidden_layers": 24,
            "num_attention_heads": 16,
            "intermediate_size": 4096,
            "num_image_tokens": 576,
            "projection_dim": hidden,
            "depth": 2,
        },
        "vq": {
            "embed_dim": 8,
            "num_embeddings": 16384,
            "latent_channels": 256,
            "base_channels": 128,
            "channel_multiplier": [1, 1, 2, 2, 4],
            "num_res_blocks": 2,
            "num_patches": 24,
            "projection_dim": hidden,
            "image_token_embed_dim": hidden,
        },
    }


MODEL_CONFIGS: dict[str, dict[str, Any]] = {
    "janus-pro-1b": _janus_pro(hidden=2048, intermediate=5632, layers=24, heads=16),
    "janus-pro-7b": _janus_pro(hidden=4096, intermediate=11008, layers=30, heads=32),
}
#: Tiny test models, built offline and loaded through the adapter's real ``load()``.
TINY = {
    "tiny-janus": ("janus", "janus"),
    "tiny-emu3": ("emu3", "emu3"),
    "tiny-llama": ("llama", "hf-causal-lm"),
    "tiny-chameleon": ("chameleon", "chameleon"),
    "tiny-bert": ("bert", "hf-encoder"),
}

#: Short text prompts of the T2I kind (the bundled sample prompts are 250-650 tokens long).
BENCH_PROMPTS = [
    "A red cube to the left of a blue sphere on a wooden table.",
    "Three cats sleeping on a green sofa next to a window.",
    "A lighthouse at dusk, fog rolling over the rocks.",
    "Two dogs chasing one yellow ball across a park.",
    "A glass of water and an apple on a marble counter.",
    "An old map with a brass compass lying on it.",
    "A bicycle leaning against a brick wall in the rain.",
    "Five oranges in a white bowl under soft light.",
]


def _fill_random(model: torch.nn.Module, seed: int) -> None:
    """Random weights without transformers' initialisation: N(0, 0.02), norms 1, biases 0;
    buffers recomputed (the ``meta`` construction left them without values)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1:
                p.fill_(1.0 if "norm" in name.rsplit(".", 2)[-2] else 0.0)
            else:
                p.normal_(0.0, 0.02, generator=gen)
        for mod_name, module in model.named_modules():
            for name, buf in list(module.named_buffers(recurse=False)):
                if name in ("inv_freq", "original_inv_freq") and hasattr(module, "config"):
                    fresh = type(module)(module.config)
                    buf.copy_(getattr(fresh, name))
                elif name == "position_ids":
                    buf.copy_(torch.arange(buf.shape[-1]).expand(buf.shape))
                else:
                    raise ProbeInputError(f"cannot initialise buffer {mod_name}.{name} of a meta-built model")


def build_sized_adapter(
    name: str,
    *,
    image_tokens: int | None = None,
    dtype: torch.dtype = torch.float32,
    device: str = "cpu",
    seed: int = 0,
) -> ModelAdapter:
    """The adapter of model config ``name`` with random weights.

    Args:
        image_tokens: generate this many image tokens (a square) instead of the
            model's 576, to keep CPU runs short; the per-token cost is unchanged.

    Raises:
        ProbeInputError: an unknown name, or ``image_tokens`` not a square.
    """
    from ..models.registry import get_adapter
    from ..models.tiny import build_tiny

    known = sorted([*MODEL_CONFIGS, *TINY])
    if name not in MODEL_CONFIGS and name not in TINY:
        raise ProbeInputError(f"unknown --model-config {name!r}; known: {', '.join(known)}")
    folder = Path(tempfile.mkdtemp(prefix="entprobe-bench-"))
    if name in TINY:
        family, adapter_name = TINY[name]
        adapter = get_adapter(adapter_name).load(str(build_tiny(family, folder)), device=device)
        adapter.model.to(dtype)
        return adapter

    import transformers

    spec = MODEL_CONFIGS[name]
    tiny = build_tiny(spec["family"], folder)  # tokenizer, processor and special-token ids
    config = transformers.AutoConfig.from_pretrained(tiny)
    vision, vq = dict(spec["vision"]), dict(spec["vq"])
    if image_tokens is not None:
        side = math.isqrt(image_tokens)
        if side * side != image_tokens or side < 1:
            raise ProbeInputError(f"--image-tokens must be a square number; got {image_tokens}")
        vision["num_image_tokens"], vq["num_patches"] = image_tokens, side
    for sub, values in (
        (config.text_config, spec["text"]),
        (config.vision_config, vision),
        (config.vq_config, vq),
    ):
        for key, value in values.items():
            setattr(sub, key, value)
    with torch.device("meta"):
        model = transformers.JanusForConditionalGeneration(config)
    model.to_empty(device=device)
    _fill_random(model, seed)
    model.to(dtype).eval()
    model.generation_config = transformers.GenerationConfig.from_pretrained(tiny)
    processor = transformers.AutoProcessor.from_pretrained(tiny)
    adapter_cls = get_adapter(spec["family"])
    return adapter_cls(model=model, processor=processor, source=f"model-config:{name} (random weights)")


@dataclass
class ModelBenchResult:
    """Timings of one ``bench --model-config`` run: one row per batch size."""

    name: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _peak_rss_mib() -> float:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024 if sys.platform != "darwin" else kib / 2**20


def run_model_bench(
    name: str,
    *,
    batch_sizes: Sequence[int] = (1, 4),
    n_prompts: int = 4,
    levels: str = "prompt,text-gen,image-gen",
    generation: GenerationSettings = GenerationSettings(max_new_tokens=16),
    image_tokens: int | None = None,
    dtype: torch.dtype = torch.float32,
    device: str = "cpu",
    log: Any = print,
) -> ModelBenchResult:
    """Probe ``n_prompts`` prompts at each batch size (after one untimed warm-up
    prompt) and time model, estimation and waiting apart.

    Returns:
        A :class:`ModelBenchResult`; ``rows`` hold ``batch_size, prompts, samples,
        wall_s, model_s, estimate_s, model_idle_s, s_per_prompt, samples_per_s,
        peak_mib`` (CUDA: peak allocated for that batch size; CPU: the process's peak
        resident memory so far, which only grows).
    """
    from ..datasets import PromptRecord, PromptSet
    from ..store import ResultStore
    from .options import ProbeOptions
    from .probe import run_probe

    if n_prompts < 1 or n_prompts > len(BENCH_PROMPTS):
        raise ProbeInputError(f"--prompts must be between 1 and {len(BENCH_PROMPTS)}; got {n_prompts}")
    start = time.perf_counter()
    adapter = build_sized_adapter(name, image_tokens=image_tokens, dtype=dtype, device=device)
    result = ModelBenchResult(name=name)
    result.notes.append(
        f"built {name} in {time.perf_counter() - start:.1f} s: {adapter.identity()['n_parameters'] / 1e9:.3f} B "
        f"parameters, {adapter.n_layers} layers, {dtype}, on {device}; RANDOM WEIGHTS: the entropies are "
        "meaningless, the timings are not"
    )
    need = {"prompt": "text-prompt", "text-gen": "text-gen", "image-gen": "image-gen"}
    levels = ",".join(lv for lv in levels.split(",") if lv in need and adapter.supports(need[lv]))

    def prompts(tag: str, n: int) -> PromptSet:
        records = [
            PromptRecord(id=f"p{i}", dataset=tag, modality="text", text=t)
            for i, t in enumerate(BENCH_PROMPTS[:n])
        ]
        return PromptSet(name=tag, spec=tag, records=records)

    counts = [adapter.count_tokens(t) for t in BENCH_PROMPTS[:n_prompts]]
    result.notes.append(
        f"levels {levels}; prompt lengths {min(counts)}-{max(counts)} tokens (tiny tokenizer); "
        f"generation {generation.to_dict()}"
    )
    with tempfile.TemporaryDirectory(prefix="entprobe-bench-store-") as tmp:
        for b in ["warm-up", *batch_sizes]:
            if device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            bs = 1 if b == "warm-up" else int(b)
            with ResultStore(Path(tmp) / f"{b}.duckdb") as store:
                summary = run_probe(
                    adapter,
                    [prompts(f"bench-{b}", 1 if b == "warm-up" else n_prompts)],
                    levels=levels,
                    store=store,
                    options=ProbeOptions(generation=generation, batch_size=bs),
                    progress=False,
                )
            if summary.n_failed:
                raise RuntimeError(f"bench run failed: {summary.failures[:3]}")
            if b == "warm-up":
                continue
            peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else _peak_rss_mib()
            row = {
                "batch_size": bs,
                "prompts": n_prompts,
                "samples": summary.n_ok,
                "wall_s": summary.wall_seconds,
                "model_s": summary.model_seconds,
                "estimate_s": summary.estimate_seconds,
                "model_idle_s": summary.wait_seconds,
                "s_per_prompt": summary.wall_seconds / n_prompts,
                "samples_per_s": summary.n_ok / summary.wall_seconds,
                "peak_mib": peak,
            }
            result.rows.append(row)
            log(format_row(row))
    base = result.rows[0]["wall_s"] if result.rows else None
    for row in result.rows:
        row["speedup_vs_first"] = base / row["wall_s"] if base else float("nan")
    return result


def format_row(row: dict[str, Any]) -> str:
    return (
        f"  B={row['batch_size']:<3d} {row['s_per_prompt']:8.2f} s/prompt  {row['samples_per_s']:7.3f} samples/s  "
        f"(model {row['model_s']:.1f} s, estimation {row['estimate_s']:.1f} s, model idle {row['model_idle_s']:.1f} s, "
        f"wall {row['wall_s']:.1f} s; peak {row['peak_mib']:.0f} MiB)"
    )
