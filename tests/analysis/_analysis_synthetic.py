"""Synthetic results in the store's table layout, for the analysis and report tests.

``synthetic_results`` returns the rows that a probe run would write: one ``samples``
row per (sample, level) and its ``layer_metrics`` rows, grouped per run so tests can
write them through the store API, plus the same rows as DataFrames.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

TEXT_CATS = ["Composition", "Abductive", "Inductive", "Deductive"]
# mixed spellings on purpose: the analysis maps them onto the paper's names
IMAGE_CATS = ["Attribute", "Logical", "Relation", "Coarse", "Single-instance", "Cross-instance"]


@dataclass
class Run:
    run_id: str
    model: str
    adapter: str
    config: dict
    samples: list[dict] = field(default_factory=list)  # samples rows
    metrics: list[list[dict]] = field(default_factory=list)  # layer_metrics rows per sample row


@dataclass
class Results:
    runs: list[Run]

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        lm = pd.DataFrame([m for r in self.runs for ms in r.metrics for m in ms])
        sam = pd.DataFrame([s for r in self.runs for s in r.samples])
        runs = pd.DataFrame(
            [
                {"run_id": r.run_id, "model": r.model, "adapter": r.adapter, "config": json.dumps(r.config)}
                for r in self.runs
            ]
        )
        return lm, sam, runs


def synthetic_results(
    models: dict[str, int] | None = None,
    *,
    modalities: tuple[str, ...] = ("text", "image"),
    levels: tuple[str, ...] = ("prompt", "text-gen", "image-gen"),
    per_category: int = 3,
    text_categories: list[str] | None = None,
    image_categories: list[str] | None = None,
    n_failed: int = 2,
    seed: int = 0,
) -> Results:
    """Results for ``models`` (name -> number of decoder layers)."""
    models = models or {"tiny-a": 4, "tiny-b": 8, "tiny-c": 6}
    text_categories = TEXT_CATS if text_categories is None else text_categories
    image_categories = IMAGE_CATS if image_categories is None else image_categories
    rng = np.random.default_rng(seed)
    runs = []
    for mi, (model, n_layers) in enumerate(models.items()):
        run = Run(
            run_id=f"run-{model}",
            model=model,
            adapter="tiny",
            config={
                "model": model,
                "estimator": {"alpha": 1.01, "sigma": "median", "pca_dim": 64},
                "generation": {"max_new_tokens": 8, "seed": 0},
            },
        )
        specs = []
        if "text" in modalities:
            specs += [("text", c) for c in text_categories]
        if "image" in modalities:
            specs += [("image", c) for c in image_categories]
        k = 0
        for modality, cat in specs:
            for _ in range(per_category):
                k += 1
                sid = f"{modality[:3]}-{k:03d}"
                dataset = "sample-t2i" if modality == "text" else "sample-mmbench"
                n_chars = int(rng.integers(20, 1500)) if modality == "text" else int(rng.integers(10, 80))
                bucket = (
                    ("short" if n_chars < 300 else "middle" if n_chars < 800 else "long")
                    if modality == "text"
                    else None
                )
                sample_levels = ["prompt"]
                if modality == "text":
                    sample_levels += [lv for lv in ("text-gen", "image-gen")]
                for level in sample_levels:
                    if level not in levels:
                        continue
                    metric = "entropy" if level == "prompt" else "conditional_entropy"
                    n_prompt = int(5 + n_chars // 20)
                    n_resp = 0 if level == "prompt" else 8
                    base = (
                        3.0
                        + mi
                        + (0.5 if modality == "image" else 0.0)
                        + 0.002 * n_chars
                        + (1.0 if level == "text-gen" else 0.0)
                    )
                    vals = (
                        base + 0.3 * np.sin(np.arange(n_layers + 1) + mi) + rng.normal(0, 0.2, n_layers + 1)
                    )
                    run.samples.append(
                        {
                            "run_id": run.run_id,
                            "dataset": dataset,
                            "sample_id": sid,
                            "level": level,
                            "modality": modality,
                            "category": cat,
                            "subcategory": None,
                            "length_bucket": bucket,
                            "n_chars": n_chars,
                            "status": "ok",
                            "error": None,
                            "prompt_text": f"prompt {sid}",
                            "generated_text": None if level == "prompt" else "out",
                            "image_path": None,
                            "n_prompt_tokens": n_prompt,
                            "n_response_tokens": n_resp,
                            "model_seconds": 0.01,
                            "estimate_seconds": 0.01,
                        }
                    )
                    run.metrics.append(
                        [
                            {
                                "run_id": run.run_id,
                                "model": model,
                                "adapter": "tiny",
                                "dataset": dataset,
                                "sample_id": sid,
                                "modality": modality,
                                "category": cat,
                                "subcategory": None,
                                "length_bucket": bucket,
                                "level": level,
                                "layer": layer,
                                "n_layers": n_layers,
                                "metric": metric,
                                "value": float(vals[layer]),
                                "n_prompt_tokens": n_prompt,
                                "n_response_tokens": n_resp,
                            }
                            for layer in range(n_layers + 1)
                        ]
                    )
        for f in range(n_failed):
            run.samples.append(
                {
                    "run_id": run.run_id,
                    "dataset": "sample-t2i",
                    "sample_id": f"bad-{f}",
                    "level": "prompt",
                    "modality": "text",
                    "category": "Composition",
                    "subcategory": None,
                    "length_bucket": "short",
                    "n_chars": 12,
                    "status": "failed",
                    "error": f"ValueError: prompt bad-{f} has 1 token; need 2",
                    "prompt_text": "x",
                    "generated_text": None,
                    "image_path": None,
                    "n_prompt_tokens": 1,
                    "n_response_tokens": 0,
                    "model_seconds": 0.0,
                    "estimate_seconds": 0.0,
                }
            )
            run.metrics.append([])
        runs.append(run)
    return Results(runs)


def write_store(path, results: Results, runs: list[str] | None = None) -> None:
    """Write ``results`` (or only the runs named in ``runs``) through the store API."""
    from entprobe.store import ResultStore

    with ResultStore(path) as store:
        for run in results.runs:
            if runs is not None and run.run_id not in runs:
                continue
            store.start_run(run_id=run.run_id, model=run.model, adapter=run.adapter, config=run.config)
            for sample, metrics in zip(run.samples, run.metrics):
                store.write_sample(sample, metrics)
            store.finish_run(run.run_id)
