"""The probe loop on a fake adapter: levels, failures, resume after a kill, shards,
merge, re-estimation, fail-fast checks and the commands."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image
from pipeline_fakes import TEXTS, FakeAdapter, _states, image_set, text_set

from entprobe.errors import DatasetError, ModelLoadError, ProbeInputError, UnsupportedError
from entprobe.estimators import conditional_entropy, matrix_entropy
from entprobe.models.base import GenerationSettings, LoadOptions
from entprobe.pipeline import (
    EstimatorOptions,
    ProbeOptions,
    parse_shard,
    probe_from_cli,
    reestimate,
    run_probe,
    shard_index,
)
from entprobe.store import ResultStore

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"
ALL = "prompt,text-gen,image-gen"
#: (sample, level) pairs of text_set() + image_set() with all levels.
N_PAIRS = len(TEXTS) * 3 + 4 * 2


def _probe(path, *, levels=ALL, sets=None, adapter=None, **options):
    with ResultStore(path) as store:
        return run_probe(
            adapter or FakeAdapter(),
            sets or [text_set(), image_set()],
            levels=levels,
            store=store,
            options=ProbeOptions(**options),
            progress=False,
        )


def _read(path, table="layer_metrics"):
    with ResultStore(path, read_only=True) as store:
        return getattr(store, table)()


def _stable(df: pd.DataFrame) -> pd.DataFrame:
    drop = [c for c in ("created_at", "model_seconds", "estimate_seconds") if c in df.columns]
    return df.drop(columns=drop).reset_index(drop=True)


def test_every_sample_and_level_is_written_from_the_right_tokens(tmp_path):
    summary = _probe(tmp_path / "s.duckdb")
    assert (summary.n_ok, summary.n_failed, summary.n_records) == (N_PAIRS, 0, len(TEXTS) + 4)
    samples = _read(tmp_path / "s.duckdb", "samples")
    assert len(samples) == N_PAIRS and set(samples["status"]) == {"ok"}
    lm = _read(tmp_path / "s.duckdb")
    assert len(lm) == N_PAIRS * 4 and set(lm["n_layers"]) == {3}
    assert set(lm.loc[lm.level == "prompt", "metric"]) == {"entropy"}
    assert set(lm.loc[lm.level != "prompt", "metric"]) == {"conditional_entropy"}

    # Independent reference: the estimators on the states the fake produced, with
    # special tokens (first and last position) dropped.
    text = TEXTS[0]
    n = len(text.split())
    prompt = _states("p:" + text, n + 2)[:, 1:-1].numpy()
    got = lm[(lm.sample_id == "t0") & (lm.level == "prompt")].sort_values("layer")["value"].to_numpy()
    np.testing.assert_allclose(got, matrix_entropy(prompt), rtol=1e-9, atol=1e-9)
    response = _states("r:generated_image" + text, 6).numpy()
    got = lm[(lm.sample_id == "t0") & (lm.level == "image-gen")].sort_values("layer")["value"].to_numpy()
    np.testing.assert_allclose(got, conditional_entropy(prompt, response), rtol=1e-8, atol=1e-9)

    t0 = samples[(samples.sample_id == "t0") & (samples.level == "text-gen")].iloc[0]
    assert (t0.n_prompt_tokens, t0.n_response_tokens) == (n, 4 + len(text) % 3)
    assert t0.generated_text.startswith("generated ") and t0.prompt_text == text
    # image prompts: prompt level over the image tokens only, text-gen over image + question
    i0 = samples[samples.sample_id == "i0"].set_index("level")
    assert i0.loc["prompt", "n_prompt_tokens"] == 5
    assert i0.loc["text-gen", "n_prompt_tokens"] == 5 + len("what is in picture 0?".split())
    assert summary.model_seconds >= 0 and summary.estimate_seconds > 0
    assert "estimation" in summary.report()


def test_prompt_level_reuses_the_teacher_forced_pass(tmp_path):
    adapter = FakeAdapter()
    _probe(tmp_path / "a.duckdb", levels="prompt,text-gen", adapter=adapter)
    assert adapter.calls == {"generate_text": len(TEXTS) + 4}
    adapter = FakeAdapter()
    _probe(tmp_path / "b.duckdb", levels="prompt", adapter=adapter)
    assert adapter.calls == {"encode_text": len(TEXTS), "encode_image": 4}
    # the fake's prompt states do not depend on the pass, so the numbers agree
    a = _read(tmp_path / "a.duckdb").query("level == 'prompt'")["value"].to_numpy()
    b = _read(tmp_path / "b.duckdb").query("level == 'prompt'")["value"].to_numpy()
    np.testing.assert_allclose(a, b, rtol=1e-12)


def test_include_special_keeps_template_tokens(tmp_path):
    _probe(tmp_path / "s.duckdb", levels="prompt", sets=[text_set()], include_special=True)
    samples = _read(tmp_path / "s.duckdb", "samples")
    assert samples.set_index("sample_id").loc["t0", "n_prompt_tokens"] == len(TEXTS[0].split()) + 2


def test_failures_are_recorded_and_the_run_goes_on(tmp_path):
    texts = ["RAISE now please", "EMPTY reply here", "NAN in states", "  ", "w " * 60, "fine prompt here"]
    summary = _probe(tmp_path / "s.duckdb", sets=[text_set(texts), image_set(2, broken=(1,))])
    samples = _read(tmp_path / "s.duckdb", "samples").set_index(["sample_id", "level"])
    status = samples["status"].to_dict()
    error = samples["error"].to_dict()
    assert status[("t0", "text-gen")] == "failed" and "the fake model refuses" in error[("t0", "text-gen")]
    assert status[("t0", "prompt")] == "ok"  # fell back to a prompt-only pass
    assert error[("t1", "text-gen")] == "generation yielded no response tokens"
    assert samples.loc[("t1", "text-gen"), "n_response_tokens"] == 0
    assert error[("t2", "prompt")] == "non-finite hidden states (prompt) at layer(s) [1]"
    assert {error[("t3", lv)] for lv in ("prompt", "text-gen", "image-gen")} == {"empty prompt"}
    assert error[("t4", "prompt")].startswith("prompt too long: 60 tokens")
    assert "unreadable image" in error[("i1", "prompt")] and status[("i1", "text-gen")] == "failed"
    assert {status[("t5", lv)] for lv in ("prompt", "text-gen", "image-gen")} == {"ok"}
    assert status[("i0", "text-gen")] == "ok"
    assert summary.n_failed == sum(s == "failed" for s in status.values()) == len(summary.failures)
    # failed samples have no metric rows
    lm = _read(tmp_path / "s.duckdb")
    failed = set(samples.index[samples.status == "failed"])
    assert not failed & set(zip(lm.sample_id, lm.level))


def test_rerun_resumes_and_retry_failed_redoes_failures(tmp_path):
    path = tmp_path / "s.duckdb"
    sets = [text_set(TEXTS[:3] + ["RAISE it"]), image_set(2)]
    first = _probe(path, sets=sets)
    before = _stable(_read(path))
    adapter = FakeAdapter()
    again = _probe(path, sets=sets, adapter=adapter)
    assert again.run_id == first.run_id and again.n_pending == 0 and adapter.calls == {}
    assert again.n_skipped == first.n_ok + first.n_failed
    pd.testing.assert_frame_equal(_stable(_read(path)), before)
    retry = _probe(path, sets=sets, retry_failed=True)
    assert retry.n_pending == 1 and retry.n_failed == 2  # t3: text-gen and image-gen, again
    samples = _read(path, "samples")
    assert not samples.duplicated(["run_id", "dataset", "sample_id", "level"]).any()
    with ResultStore(path, read_only=True) as store:
        assert len(store.runs()) == 1 and store.runs()["finished_at"].notna().all()


def test_run_id_follows_the_numbers_not_the_session(tmp_path):
    base = _probe(tmp_path / "a.duckdb", levels="prompt", sets=[text_set()]).run_id
    same = _probe(
        tmp_path / "b.duckdb",
        levels="prompt",
        sets=[text_set()],
        shard=(1, 2),
        retry_failed=True,
        save_grams=tmp_path / "g",
    ).run_id
    assert same == base
    alpha = _probe(
        tmp_path / "c.duckdb", levels="prompt", sets=[text_set()], estimator=EstimatorOptions(alpha=2)
    ).run_id
    special = _probe(tmp_path / "d.duckdb", levels="prompt", sets=[text_set()], include_special=True).run_id
    levels = _probe(tmp_path / "e.duckdb", levels="prompt,text-gen", sets=[text_set()]).run_id
    assert len({base, alpha, special, levels}) == 4
    # generation settings count once a response level runs
    gen = _probe(
        tmp_path / "f.duckdb",
        levels="prompt,text-gen",
        sets=[text_set()],
        generation=GenerationSettings(max_new_tokens=8),
    ).run_id
    assert gen != levels


def _run_killed(
    store: Path,
    kill_on: int,
    kill_in: str,
    grams: Path | None = None,
    batch_size: int = 1,
    overlap: bool = False,
) -> int:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(HERE)])}
    args = [
        sys.executable,
        str(HERE / "pipeline_kill_run.py"),
        str(store),
        ALL,
        str(kill_on),
        kill_in,
        str(batch_size),
        str(int(overlap)),
        str(grams or ""),
    ]
    return subprocess.run(args, env=env, capture_output=True, timeout=120).returncode


def _resume_and_compare(tmp_path, path, partial) -> None:
    resumed = _probe(path, save_grams=tmp_path / "g")
    assert resumed.n_skipped == len(partial) and resumed.n_ok == N_PAIRS - len(partial)
    samples, lm = _read(path, "samples"), _read(path)
    assert len(samples) == N_PAIRS and set(samples["status"]) == {"ok"}
    assert not lm.duplicated(["run_id", "dataset", "sample_id", "level", "layer", "metric"]).any()
    _probe(tmp_path / "clean.duckdb")
    pd.testing.assert_frame_equal(_stable(lm), _stable(_read(tmp_path / "clean.duckdb")))
    assert not [p for p in (tmp_path / "g").rglob("*") if p.name.startswith(".")]


@pytest.mark.parametrize("kill_in", ["generate_text", "generate_image"])
def test_a_killed_run_resumes_without_losing_or_duplicating(tmp_path, kill_in):
    path = tmp_path / "s.duckdb"
    assert _run_killed(path, 4, kill_in, tmp_path / "g") == -signal.SIGKILL
    partial = _read(path, "samples")
    done_records = set(partial["sample_id"])
    # without overlap: everything before the 4th prompt is there; with the kill in
    # image generation the 4th prompt's earlier levels are there too
    assert {"t0", "t1", "t2"} <= done_records and len(partial) in (9, 11)
    assert ("t3" in done_records) == (kill_in == "generate_image")
    with ResultStore(path, read_only=True) as store:
        assert store.runs()["finished_at"].isna().all()
    _resume_and_compare(tmp_path, path, partial)


@pytest.mark.parametrize("kill_in", ["generate_text", "generate_image"])
def test_a_killed_batched_overlapped_run_loses_at_most_the_batches_in_flight(tmp_path, kill_in):
    """Batch size 3 with estimation overlapped: killed in the third batch (t6, t7), the
    first batch (t0-t2) is fully written; only the second (whose estimation may still
    run) and the third (in the model) may be missing; nothing is duplicated."""
    path = tmp_path / "s.duckdb"
    assert _run_killed(path, 7, kill_in, tmp_path / "g", batch_size=3, overlap=True) == -signal.SIGKILL
    partial = _read(path, "samples")
    pairs = set(zip(partial["sample_id"], partial["level"]))
    assert {(f"t{i}", lv) for i in range(3) for lv in ALL.split(",")} <= pairs
    assert not pairs & {(f"t{i}", "image-gen") for i in (6, 7)}
    assert not partial.duplicated(["sample_id", "level"]).any()
    _resume_and_compare(tmp_path, path, partial)


@pytest.mark.parametrize("batch_size", [3, 8])
@pytest.mark.parametrize("overlap", [True, False])
def test_batched_run_equals_the_unbatched_run(tmp_path, batch_size, overlap):
    """Batching and overlap change when things run, not what is stored (same run id,
    same rows; failures too, retried one sample at a time)."""
    texts = [*TEXTS[:3], "RAISE this one", *TEXTS[3:6], "EMPTY reply", "NAN states here"]
    sets = [text_set(texts), image_set(broken=(2,))]
    single = _probe(tmp_path / "a.duckdb", sets=sets, overlap=False)
    batched = _probe(tmp_path / "b.duckdb", sets=sets, batch_size=batch_size, overlap=overlap)
    assert batched.run_id == single.run_id and batched.batch_size == batch_size
    assert (batched.n_ok, batched.n_failed) == (single.n_ok, single.n_failed)
    for table in ("samples", "layer_metrics"):
        a = (
            _stable(_read(tmp_path / "a.duckdb", table))
            .sort_values(list(_KEYS[table]))
            .reset_index(drop=True)
        )
        b = (
            _stable(_read(tmp_path / "b.duckdb", table))
            .sort_values(list(_KEYS[table]))
            .reset_index(drop=True)
        )
        pd.testing.assert_frame_equal(a, b)
    assert f"(batch size {batch_size})" in batched.report()


_KEYS = {
    "samples": ("dataset", "sample_id", "level"),
    "layer_metrics": ("dataset", "sample_id", "level", "layer"),
}


def test_shards_partition_the_samples_and_merge_to_the_single_run(tmp_path):
    sets = [text_set(), image_set()]
    ids = {(r.dataset, r.id) for ps in sets for r in ps.records}
    parts = []
    for k in (1, 2, 3):
        _probe(tmp_path / f"shard{k}.duckdb", sets=sets, shard=(k, 3))
        parts.append(
            set(zip(*[_read(tmp_path / f"shard{k}.duckdb", "samples")[c] for c in ("dataset", "sample_id")]))
        )
    assert set().union(*parts) == ids and sum(map(len, parts)) == len(ids)
    assert all(parts)  # the hash actually spreads these 12 samples
    # the shard of a sample does not depend on position or on the other samples
    assert [shard_index("fake-text", "t3", 3)] * 2 == [shard_index(*("fake-text", "t3"), 3) for _ in range(2)]
    merged = tmp_path / "merged.duckdb"
    with ResultStore(merged) as store:
        store.merge_from([tmp_path / f"shard{k}.duckdb" for k in (1, 2, 3)])
    _probe(tmp_path / "single.duckdb", sets=sets)
    for table in ("samples", "layer_metrics"):
        pd.testing.assert_frame_equal(
            _stable(_read(merged, table)), _stable(_read(tmp_path / "single.duckdb", table))
        )
    runs = _read(merged, "runs")
    assert len(runs) == 1


def test_parse_shard():
    assert parse_shard("2/4") == (2, 4) and parse_shard(None) is None
    for bad in ("0/4", "5/4", "x", "1/0"):
        with pytest.raises(ProbeInputError, match="K/N"):
            parse_shard(bad)


def test_reestimate_reproduces_the_store_and_sweeps_options(tmp_path):
    grams = tmp_path / "grams"
    original = _probe(
        tmp_path / "s.duckdb", sets=[text_set(TEXTS[:4] + ["EMPTY x"]), image_set(2)], save_grams=grams
    )
    files = list(grams.rglob("*.safetensors"))
    assert len(files) == original.n_ok
    with ResultStore(tmp_path / "s2.duckdb") as store:
        [same] = reestimate(grams, store, progress=False)
        assert same.run_id == original.run_id and same.n_ok == original.n_ok
        [other] = reestimate(grams, store, estimator={"alpha": 2.0}, progress=False)
        assert other.run_id != original.run_id
        assert reestimate(grams, store, progress=False)[0].n_skipped == original.n_ok  # resumes
    ok = _read(tmp_path / "s.duckdb", "samples").query("status == 'ok'")
    back = _read(tmp_path / "s2.duckdb", "samples")
    cols = [
        "dataset",
        "sample_id",
        "level",
        "modality",
        "category",
        "length_bucket",
        "n_prompt_tokens",
        "n_response_tokens",
        "prompt_text",
        "generated_text",
    ]
    pd.testing.assert_frame_equal(
        back.query("run_id == @same.run_id")[cols].reset_index(drop=True), ok[cols].reset_index(drop=True)
    )
    lm, lm2 = _read(tmp_path / "s.duckdb"), _read(tmp_path / "s2.duckdb")
    redone = lm2.query("run_id == @same.run_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(redone, lm)  # bit for bit
    swept = lm2.query("run_id == @other.run_id").reset_index(drop=True)
    assert len(swept) == len(lm) and not np.allclose(swept["value"], lm["value"])
    with ResultStore(tmp_path / "s2.duckdb", read_only=True) as store:
        assert store.run_config(other.run_id)["estimator"]["alpha"] == 2.0
    with ResultStore(tmp_path / "s3.duckdb") as store, pytest.raises(ProbeInputError, match="alpha"):
        reestimate(grams, store, estimator={"alpha": -1.0}, progress=False)


def test_saved_images(tmp_path):
    _probe(
        tmp_path / "s.duckdb", levels="image-gen", sets=[text_set(TEXTS[:2])], save_images=tmp_path / "img"
    )
    paths = _read(tmp_path / "s.duckdb", "samples")["image_path"].tolist()
    assert len(paths) == 2
    for p in paths:
        assert Path(p).is_file() and Image.open(p).format == "PNG"


def test_length_buckets(tmp_path):
    _probe(tmp_path / "s.duckdb", levels="prompt", sets=[text_set()], length_thresholds=(5, 7))
    samples = _read(tmp_path / "s.duckdb", "samples").set_index("sample_id")
    for i, text in enumerate(TEXTS):
        n = len(text.split())
        assert samples.loc[f"t{i}", "length_bucket"] == (
            "short" if n <= 5 else "middle" if n <= 7 else "long"
        )


def test_bad_plans_fail_before_any_model_work(tmp_path):
    class TextOnly(FakeAdapter):
        capabilities = frozenset({"text-prompt", "text-gen"})

    adapter = TextOnly()
    with pytest.raises(UnsupportedError, match="'image-gen'.*supports: text-gen, text-prompt"):
        _probe(tmp_path / "s.duckdb", adapter=adapter)
    with pytest.raises(UnsupportedError, match="'image-prompt'"):
        _probe(tmp_path / "s.duckdb", levels="prompt", adapter=adapter)
    with pytest.raises(ProbeInputError, match="'image-gen' needs text prompts"):
        _probe(tmp_path / "s.duckdb", levels="image-gen", sets=[image_set()])
    with pytest.raises(ProbeInputError, match="unknown level.*'video-gen'"):
        _probe(tmp_path / "s.duckdb", levels="prompt,video-gen")
    dup = text_set()
    dup.records.append(replace(dup.records[0], text="another"))
    with pytest.raises(ProbeInputError, match="share dataset 'fake-text' and id 't0'"):
        _probe(tmp_path / "s.duckdb", sets=[dup])
    assert adapter.calls == {}
    assert not (tmp_path / "s.duckdb").exists()  # nothing written: no store created


@pytest.fixture
def fake_registry(monkeypatch):
    """Make the registry hand out FakeAdapter as 'fake' and record loads."""
    import entprobe.models.registry as registry

    loads = []
    real_get = registry.get_adapter

    class Loaded(FakeAdapter):
        @classmethod
        def load_from(cls, source, options):
            loads.append((source, options))
            return cls(source=source)

    monkeypatch.setattr(registry, "get_adapter", lambda name: Loaded if name == "fake" else real_get(name))
    return loads


def test_probe_from_cli_checks_before_loading(tmp_path, fake_registry):
    store = tmp_path / "s.duckdb"
    common = dict(model="/no/such/model", store=store, text_prompts=["sample:t2i"])
    with pytest.raises(ModelLoadError, match="unknown adapter 'nope'"):
        probe_from_cli(adapter="nope", **common)
    with pytest.raises(UnsupportedError, match="'hf-encoder' does not support 'text-gen'"):
        probe_from_cli(adapter="hf-encoder", levels="prompt,text-gen", **common)
    with pytest.raises(DatasetError):
        probe_from_cli(
            adapter="fake", model="m", store=store, text_prompts=[f"jsonl:{tmp_path / 'missing.jsonl'}"]
        )
    with pytest.raises(ProbeInputError, match="--image-prompts 'sample:t2i' holds only \\['text'\\]"):
        probe_from_cli(adapter="fake", model="m", store=store, image_prompts=["sample:t2i"])
    with pytest.raises(ProbeInputError, match="alpha"):
        probe_from_cli(
            adapter="fake", model="m", store=store, text_prompts=["sample:t2i"], estimator={"alpha": 0}
        )
    with pytest.raises(ProbeInputError, match="no prompts"):
        probe_from_cli(adapter="fake", model="m", store=store)
    with pytest.raises(ProbeInputError, match="--image-steps, --image-size: adapter 'fake' does not take it"):
        probe_from_cli(adapter="fake", generation={"image_steps": 4, "image_size": 64}, **common)
    assert fake_registry == [] and not store.exists()


def test_probe_from_cli_runs_and_passes_loading_options(tmp_path, fake_registry):
    store = tmp_path / "s.duckdb"
    summary = probe_from_cli(
        adapter="fake",
        model="some/model",
        store=store,
        text_prompts=["sample:t2i"],
        image_prompts=["sample:mmbench"],
        limit=3,
        progress=False,
        log=lambda s: None,
    )
    assert fake_registry == [("some/model", LoadOptions(device="cpu", dtype="auto"))]
    assert summary.n_records == 6 and summary.n_ok + summary.n_failed == 3 * 3 + 3 * 2
    probe_from_cli(
        adapter="fake",
        model="some/model",
        store=store,
        text_prompts=["sample:t2i"],
        limit=3,
        levels="prompt",
        trust_remote_code=True,
        revision="v1",
        progress=False,
        log=lambda s: None,
    )
    assert fake_registry[-1][1] == LoadOptions(
        device="cpu", dtype="auto", trust_remote_code=True, revision="v1"
    )
    with ResultStore(store, read_only=True) as results:
        runs = results.runs().set_index("run_id")
        config = runs.loc[summary.run_id, "config"]
    assert config["datasets"] == ["text:sample:t2i", "image:sample:mmbench"]
    assert config["versions"]["duckdb"] and config["session"]["limit"] == 3


def test_commands(tmp_path, fake_registry):
    from entprobe.cli import main

    runner = CliRunner()
    base = [
        "probe",
        "--model",
        "m",
        "--adapter",
        "fake",
        "--text-prompts",
        "sample:t2i",
        "--limit",
        "4",
        "--levels",
        "prompt,text-gen",
        "--no-progress",
        "--alpha",
        "1.5",
        "--pca-dim",
        "none",
        "--max-new-tokens",
        "8",
        "--save-grams",
        str(tmp_path / "g"),
    ]
    for k in (1, 2):
        result = runner.invoke(main, base + ["--store", str(tmp_path / f"s{k}.duckdb"), "--shard", f"{k}/2"])
        assert result.exit_code == 0, result.output
        assert "time: model" in result.output
    result = runner.invoke(
        main,
        [
            "merge",
            "--out",
            str(tmp_path / "m.duckdb"),
            str(tmp_path / "s1.duckdb"),
            str(tmp_path / "s2.duckdb"),
        ],
    )
    assert result.exit_code == 0, result.output
    with ResultStore(tmp_path / "m.duckdb", read_only=True) as store:
        assert len(store.samples()) == 8
        config = store.runs()["config"].iloc[0]
    assert config["estimator"]["alpha"] == 1.5 and config["estimator"]["pca_dim"] is None
    assert config["generation"]["max_new_tokens"] == 8
    result = runner.invoke(
        main,
        ["export", "--store", str(tmp_path / "m.duckdb"), "--format", "csv", "--out", str(tmp_path / "csv")],
    )
    assert result.exit_code == 0, result.output
    n_ok = int((pd.read_csv(tmp_path / "csv" / "samples.csv")["status"] == "ok").sum())
    assert n_ok > 0 and len(pd.read_csv(tmp_path / "csv" / "layer_metrics.csv")) == n_ok * 4
    result = runner.invoke(
        main,
        [
            "reestimate",
            "--grams",
            str(tmp_path / "g"),
            "--store",
            str(tmp_path / "r.duckdb"),
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(_read(tmp_path / "r.duckdb"), _read(tmp_path / "m.duckdb"))
    result = runner.invoke(main, base + ["--store", str(tmp_path / "x.duckdb"), "--levels", "video-gen"])
    assert result.exit_code == 1 and "unknown level" in result.output
    result = runner.invoke(main, ["models"])
    assert result.exit_code == 0 and "janus" in result.output and "image-gen" in result.output


def test_tiny_emu3_end_to_end(tmp_path):
    """The real adapter path: a tiny random Emu3 (text and image in, text and image out)."""
    from entprobe.models.tiny import build_tiny

    model = build_tiny("emu3", tmp_path / "emu3")
    store = tmp_path / "s.duckdb"
    summary = probe_from_cli(
        model=str(model),
        store=store,
        text_prompts=["sample:t2i"],
        image_prompts=["sample:mmbench"],
        limit=1,
        save_grams=tmp_path / "g",
        save_images=tmp_path / "img",
        generation={"max_new_tokens": 4},
        progress=False,
        log=lambda s: None,
    )
    samples = _read(store, "samples")
    assert summary.n_failed == 0, summary.failures
    assert sorted(samples["level"]) == ["image-gen", "prompt", "prompt", "text-gen", "text-gen"]
    assert (samples["n_prompt_tokens"] > 1).all()
    assert Path(samples.query("level == 'image-gen'")["image_path"].iloc[0]).is_file()
    lm = _read(store)
    assert set(lm["n_layers"]) == {lm["layer"].max()} and lm["value"].notna().all()
    with ResultStore(tmp_path / "r.duckdb") as results:
        reestimate(tmp_path / "g", results, progress=False)
    pd.testing.assert_frame_equal(_read(tmp_path / "r.duckdb"), lm)


@pytest.mark.parametrize(
    ("device", "message"),
    [("cuda", "CUDA is not available"), ("warp9", "not a torch device")],
)
def test_unavailable_device_fails_before_loading(tmp_path, monkeypatch, device, message):
    import torch

    from entprobe.pipeline.probe import check_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ProbeInputError, match=message):
        check_device(device)
    check_device("cpu")
