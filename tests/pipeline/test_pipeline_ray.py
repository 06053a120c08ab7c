"""``probe --backend ray`` on a local Ray started here (2 CPUs, tiny model): the merged
store equals the single-process store; a worker killed mid-run is retried by Ray and
the result is complete and duplicate-free; clear errors without Ray or a cluster."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys

import pandas as pd
import pytest
from click.testing import CliRunner

from entprobe.cli import main
from entprobe.errors import BackendError, MissingDependencyError, ProbeInputError
from entprobe.store import ResultStore

WORDS = ["cube", "sphere", "lamp", "tree", "boat", "kite", "chair", "apple", "river", "clock", "door", "moon"]
# long enough responses that a shard takes a while, so the test can kill it part-way
NEW_TOKENS = 24
COMMON = ["--levels", "prompt,text-gen", "--max-new-tokens", str(NEW_TOKENS), "--no-progress"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from entprobe.models.tiny import build_tiny

    return build_tiny("llama", tmp_path_factory.mktemp("ray-tiny-llama"))


@pytest.fixture(scope="module")
def prompts(tmp_path_factory):
    path = tmp_path_factory.mktemp("ray-prompts") / "p.jsonl"
    with open(path, "w") as fh:
        for i, w in enumerate(WORDS):
            fh.write(json.dumps({"id": f"p{i}", "text": f"a {w} next to a red {WORDS[-1 - i]}"}) + "\n")
    return f"jsonl:{path}"


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray", reason="Ray is installed by `make test` (extra entprobe[ray])")
    src = os.path.dirname(os.path.dirname(__import__("entprobe").__file__))
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={
            "env_vars": {
                "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1",
                "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
            }
        },
    )
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def single_store(tiny, prompts, tmp_path_factory):
    path = tmp_path_factory.mktemp("ray-single") / "single.duckdb"
    result = CliRunner().invoke(
        main, ["probe", "--model", str(tiny), "--text-prompts", prompts, "--store", str(path), *COMMON]
    )
    assert result.exit_code == 0, result.output
    return path


def _tables(path):
    with ResultStore(path, read_only=True) as s:
        lm, samples, runs = s.layer_metrics(), s.samples(), s.runs()
    drop = ["created_at", "model_seconds", "estimate_seconds"]
    return (
        lm.reset_index(drop=True),
        samples.drop(columns=[c for c in drop if c in samples.columns]).reset_index(drop=True),
        runs,
    )


def _assert_same_results(path, reference):
    lm, samples, runs = _tables(path)
    ref_lm, ref_samples, ref_runs = _tables(reference)
    assert runs["run_id"].tolist() == ref_runs["run_id"].tolist()
    pd.testing.assert_frame_equal(samples, ref_samples)
    pd.testing.assert_frame_equal(lm, ref_lm)
    assert not samples.duplicated(["run_id", "dataset", "sample_id", "level"]).any()
    assert len(samples) == 2 * len(WORDS) and set(samples["status"]) == {"ok"}


def test_killed_worker_is_retried_and_resumes(
    ray_session, tiny, prompts, single_store, tmp_path, monkeypatch
):
    from entprobe.pipeline import ray_backend
    from entprobe.pipeline.ray_backend import probe_on_ray, shard_store_path

    monkeypatch.setattr(ray_backend, "_POLL_SECONDS", 0.01)  # a tiny model's shard is quick

    store = tmp_path / "killed.duckdb"
    killed = {}

    def kill_shard_1_mid_run(snap):
        done, total = snap["done"].get(1, 0), snap["total"].get(1)
        if not killed and total and 1 <= done < total:
            killed.update(pid=snap["pids"][1], done=done, total=total)
            os.kill(snap["pids"][1], signal.SIGKILL)

    summary = probe_on_ray(
        model=str(tiny),
        store=store,
        workers=2,
        text_prompts=[prompts],
        levels="prompt,text-gen",
        generation={"max_new_tokens": NEW_TOKENS},
        progress=False,
        on_progress=kill_shard_1_mid_run,
        log=lambda _: None,
    )
    assert killed, "the test never saw shard 1 part-way through"
    assert summary.attempts[1] == 2 and summary.attempts[2] == 1
    # the second attempt resumed: what the first had written was skipped, not redone
    assert summary.n_skipped >= killed["done"] >= 1
    assert "retried by Ray: shard 1 x1" in summary.report()
    _assert_same_results(store, single_store)
    with ResultStore(shard_store_path(store, 1, 2), read_only=True) as s:
        assert not s.samples().duplicated(["sample_id", "level"]).any()


def test_merged_store_equals_single_process_store(ray_session, tiny, prompts, single_store, tmp_path):
    store = tmp_path / "ray.duckdb"
    result = CliRunner().invoke(
        main,
        [
            "probe",
            "--model",
            str(tiny),
            "--text-prompts",
            prompts,
            "--store",
            str(store),
            *COMMON,
            "--backend",
            "ray",
            "--workers",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "ray: 2 worker(s)" in result.output
    _assert_same_results(store, single_store)
    assert sorted(p.name for p in (tmp_path / "ray.duckdb.ray").iterdir() if p.suffix == ".duckdb") == [
        "shard-1-of-2.duckdb",
        "shard-2-of-2.duckdb",
    ]


def test_notebook_api_on_ray_matches_local(ray_session, tiny):
    import entprobe

    # inline prompts travel to the workers as pickled records
    texts = ["a red cube", "two cats on a sofa", "a lamp by the door", "a tree in the rain"]
    on_ray = entprobe.probe(tiny, texts, levels="prompt", backend="ray", workers=2)
    local = entprobe.probe(tiny, texts, levels="prompt")
    assert on_ray.run_id == local.run_id and on_ray.summary.workers == 2
    pd.testing.assert_frame_equal(on_ray.prompt_entropies(wide=True), local.prompt_entropies(wide=True))


def test_missing_ray_is_a_clear_error(monkeypatch, tmp_path):
    from entprobe.pipeline.ray_backend import probe_on_ray

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'entprobe\[ray\]'"):
        probe_on_ray(model="m", store=tmp_path / "s.duckdb", text_prompts=["sample:t2i"])
    result = CliRunner().invoke(
        main,
        [
            "probe",
            "--model",
            "m",
            "--text-prompts",
            "sample:t2i",
            "--store",
            str(tmp_path / "s.duckdb"),
            "--backend",
            "ray",
        ],
    )
    assert result.exit_code != 0 and "entprobe[ray]" in result.output


def test_unreachable_address_and_bad_options(tmp_path):
    pytest.importorskip("ray")
    from entprobe.pipeline.ray_backend import probe_on_ray

    with socket.socket() as s:  # a port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = CliRunner().invoke(
        main,
        [
            "probe",
            "--model",
            "m",
            "--text-prompts",
            "sample:t2i",
            "--store",
            str(tmp_path / "s.duckdb"),
            "--backend",
            "ray",
            "--address",
            f"127.0.0.1:{port}",
        ],
    )
    assert result.exit_code != 0
    assert f"cannot reach the Ray cluster at 127.0.0.1:{port}" in result.output
    with pytest.raises(BackendError, match="cannot reach"):
        probe_on_ray(
            model="m",
            store=tmp_path / "s.duckdb",
            text_prompts=["sample:t2i"],
            address=f"ray://127.0.0.1:{port}",
        )
    with pytest.raises(ProbeInputError, match="--shard and --backend ray"):
        probe_on_ray(model="m", store=tmp_path / "s.duckdb", text_prompts=["sample:t2i"], shard="1/2")
    with pytest.raises(ProbeInputError, match="needs --gpus-per-worker"):
        probe_on_ray(model="m", store=tmp_path / "s.duckdb", text_prompts=["sample:t2i"], device="cuda")
    result = CliRunner().invoke(
        main,
        [
            "probe",
            "--model",
            "m",
            "--text-prompts",
            "sample:t2i",
            "--store",
            str(tmp_path / "s.duckdb"),
            "--workers",
            "2",
        ],
    )
    assert result.exit_code != 0 and "need --backend ray" in result.output
