"""End-to-end checks shared by the Harmon and JanusFlow integration tests.

``entprobe probe`` over the bundled sample sets (``sample:t2i``, ``sample:mmbench``)
at every level with every denoising step kept, the store it writes, ``entprobe
report`` over it, and a run SIGKILLed in the middle of a denoising loop
(``upstream_kill_run.py``) then resumed, which must equal the uninterrupted run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from entprobe.cli import main
from entprobe.store import ResultStore

HERE = Path(__file__).parent
SRC = HERE.parents[1] / "src"
LIMIT = 2
# two text prompts (prompt, text-gen, image-gen) + two image prompts (prompt, text-gen)
N_SAMPLES = LIMIT * 3 + LIMIT * 2


def probe_args(family: str, model: Path, checkout: Path, store: Path, image_steps: int) -> list[str]:
    return [
        "probe",
        "--adapter",
        family,
        "--model",
        str(model),
        "--upstream-src",
        str(checkout),
        "--text-prompts",
        "sample:t2i",
        "--image-prompts",
        "sample:mmbench",
        "--limit",
        str(LIMIT),
        "--levels",
        "prompt,text-gen,image-gen",
        "--store",
        str(store),
        "--max-new-tokens",
        "3",
        "--guidance-scale",
        "2",
        "--image-steps",
        str(image_steps),
        "--image-response-step",
        "all",
        "--no-progress",
    ]


def cli(args: list[str]) -> str:
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def read(store: Path, table: str) -> pd.DataFrame:
    with ResultStore(store, read_only=True) as s:
        return getattr(s, table)()


def stable(df: pd.DataFrame) -> pd.DataFrame:
    drop = [c for c in ("created_at", "model_seconds", "estimate_seconds") if c in df.columns]
    keys = [c for c in ("dataset", "sample_id", "level", "step", "layer", "metric") if c in df.columns]
    return df.drop(columns=drop).sort_values(keys).reset_index(drop=True)


def check_store(store: Path, *, n_layers: int, n_steps: int) -> None:
    """Every sample ok at every level; one step row set per denoising step."""
    samples = read(store, "samples")
    assert len(samples) == N_SAMPLES and set(samples["status"]) == {"ok"}, samples[["level", "error"]]
    assert sorted(samples["level"].value_counts().items()) == [
        ("image-gen", 2),
        ("prompt", 4),
        ("text-gen", 4),
    ]
    lm = read(store, "layer_metrics")
    assert set(lm["n_layers"]) == {n_layers} and set(lm["layer"]) == set(range(n_layers + 1))
    steps = read(store, "step_metrics")
    assert set(steps["level"]) == {"image-gen"} and set(steps["n_steps"]) == {n_steps}
    for _, rows in steps.groupby("sample_id"):
        assert sorted(set(rows["step"])) == list(range(1, n_steps + 1))
        assert rows.groupby("step").size().tolist() == [n_layers + 1] * n_steps
    runs = read(store, "runs")
    assert len(runs) == 1 and runs["finished_at"].notna().all()


def check_report(store: Path, out: Path, response: str) -> None:
    cli(["report", "--store", str(store), "--out", str(out), "--n-boot", "20"])
    html = (out / "report.html").read_text(encoding="utf-8")
    assert response in html


def killed_then_resumed(
    family: str, model: Path, checkout: Path, store: Path, image_steps: int, clean: Path
) -> None:
    """SIGKILL during the second image generation's step 2, resume, compare with ``clean``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(HERE), str(HERE / "standins")])}
    args = [
        sys.executable,
        str(HERE / "upstream_kill_run.py"),
        family,
        "2",
        *probe_args(family, model, checkout, store, image_steps)[1:],
    ]
    proc = subprocess.run(args, env=env, capture_output=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    partial = read(store, "samples")
    assert 0 < len(partial) < N_SAMPLES and "image-gen" in set(partial["level"])
    assert read(store, "runs")["finished_at"].isna().all()
    cli(probe_args(family, model, checkout, store, image_steps))
    for table in ("samples", "layer_metrics", "step_metrics"):
        got, want = stable(read(store, table)), stable(read(clean, table))
        pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-6)
