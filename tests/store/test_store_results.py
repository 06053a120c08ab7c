"""The DuckDB results store: schema, transactions, locking, merge, export, Gram files."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from entprobe.errors import StoreError, StoreLockedError
from entprobe.store import (
    LAYER_METRICS_COLUMNS,
    RUNS_COLUMNS,
    SAMPLES_COLUMNS,
    ResultStore,
    gram_path,
    iter_gram_files,
    load_gram,
    read_gram_meta,
    save_gram,
)

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _sample(sample_id: str, level: str = "prompt", status: str = "ok", run_id: str = "r1", **extra):
    row = {
        "run_id": run_id,
        "dataset": "d",
        "sample_id": sample_id,
        "level": level,
        "modality": "text",
        "category": "Composition",
        "status": status,
        "prompt_text": f"text {sample_id}",
    }
    row.update(extra)
    return row


def _metrics(values, metric: str = "entropy"):
    return [
        {"model": "m", "adapter": "a", "layer": i, "n_layers": len(values) - 1, "metric": metric, "value": v}
        for i, v in enumerate(values)
    ]


def _fill(path: Path, ids, *, run_id: str = "r1", offset: float = 0.0, failed=()) -> None:
    with ResultStore(path) as store:
        store.start_run(run_id, "m", "a", {"alpha": 1.01})
        for sid in ids:
            if sid in failed:
                store.write_sample(_sample(sid, status="failed", error="boom", run_id=run_id))
            else:
                store.write_sample(_sample(sid, run_id=run_id), _metrics([1.0 + offset, 2.0, 3.0]))
        store.finish_run(run_id)


def test_tables_have_the_documented_columns(tmp_path):
    path = tmp_path / "s.duckdb"
    _fill(path, ["a"])
    with ResultStore(path, read_only=True) as store:
        assert tuple(store.runs().columns) == RUNS_COLUMNS
        assert tuple(store.samples().columns) == SAMPLES_COLUMNS
        lm = store.layer_metrics()
        assert tuple(lm.columns) == LAYER_METRICS_COLUMNS
        assert lm["layer"].tolist() == [0, 1, 2]
        assert lm["value"].tolist() == [1.0, 2.0, 3.0]
        # columns not set on the metric rows come from the sample row
        assert set(lm["category"]) == {"Composition"} and set(lm["modality"]) == {"text"}
        run = store.runs().iloc[0]
        assert run["config"] == {"alpha": 1.01}
        assert run["finished_at"] >= run["started_at"]


def test_write_sample_is_one_transaction(tmp_path):
    with ResultStore(tmp_path / "s.duckdb") as store:
        store.start_run("r1", "m", "a", {})
        with pytest.raises(StoreError, match="non-finite metric value.*layer.*\\[1\\]"):
            store.write_sample(_sample("x"), _metrics([1.0, float("nan"), 2.0]))
        # a failure inside the transaction leaves nothing behind
        bad = _metrics([1.0, 2.0])
        bad.append(dict(bad[0]))  # duplicate (layer 0, entropy): violates the primary key
        with pytest.raises(StoreError, match="cannot write.*'sample_id': 'y'"):
            store.write_sample(_sample("y"), bad)
        assert store.samples().empty and store.layer_metrics().empty
        with pytest.raises(StoreError, match="cannot have metric rows"):
            store.write_sample(_sample("z", status="failed"), _metrics([1.0, 2.0]))
        with pytest.raises(StoreError, match="unknown column"):
            store.write_sample({**_sample("z"), "colour": "red"})


def test_failed_rows_are_replaced_and_ok_rows_are_kept(tmp_path):
    with ResultStore(tmp_path / "s.duckdb") as store:
        store.start_run("r1", "m", "a", {})
        store.write_sample(_sample("x", status="failed", error="oom"))
        assert store.done_keys("r1") == {("d", "x", "prompt")}
        assert store.done_keys("r1", status="ok") == set()
        assert store.statuses("r1") == {("d", "x", "prompt"): "failed"}
        store.write_sample(_sample("x"), _metrics([1.0, 2.0]))
        samples = store.samples()
        assert len(samples) == 1 and samples["status"].iloc[0] == "ok"
        with pytest.raises(StoreError, match="already holds an ok result"):
            store.write_sample(_sample("x"), _metrics([5.0, 6.0]))
        assert store.layer_metrics()["value"].tolist() == [1.0, 2.0]


def test_read_filters(tmp_path):
    path = tmp_path / "s.duckdb"
    _fill(path, ["a", "b", "c"])
    with ResultStore(path, read_only=True) as store:
        assert set(store.layer_metrics(sample_id="b")["sample_id"]) == {"b"}
        assert len(store.layer_metrics(sample_id=["a", "c"], layer=[0, 2])) == 4
        assert store.layer_metrics(sample_id=[]).empty
        assert len(store.samples(subcategory=None)) == 3
        with pytest.raises(TypeError, match="unknown filter.*colour"):
            store.layer_metrics(colour="red")


def test_resuming_a_run_resets_its_times(tmp_path):
    path = tmp_path / "s.duckdb"
    _fill(path, ["a"])
    with ResultStore(path) as store:
        store.start_run("r1", "m", "a", {"alpha": 1.01})
        run = store.runs().iloc[0]
        assert pd.isna(run["finished_at"])
        assert len(store.runs()) == 1


def test_open_errors(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        ResultStore(tmp_path / "missing.duckdb", read_only=True)
    foreign = tmp_path / "foreign.duckdb"
    con = duckdb.connect(str(foreign))
    con.execute("CREATE TABLE t (a INTEGER)")
    con.close()
    with pytest.raises(StoreError, match="not an entprobe results store"):
        ResultStore(foreign, read_only=True)
    with pytest.raises(StoreError, match="open read-only"):
        _fill(tmp_path / "s.duckdb", ["a"])
        with ResultStore(tmp_path / "s.duckdb", read_only=True) as store:
            store.start_run("r2", "m", "a", {})


def test_second_writer_in_this_process_is_refused_and_a_reader_is_not(tmp_path):
    path = tmp_path / "s.duckdb"
    with ResultStore(path) as writer:
        assert not path.exists()  # created on the first write, not on opening
        with pytest.raises(StoreLockedError, match="already open for writing"):
            ResultStore(path)
        writer.start_run("r", "m", "a", {})
        with ResultStore(path, read_only=True) as reader:  # reads between transactions
            assert list(reader.runs().run_id) == ["r"]
        writer.finish_run("r")
    assert not (tmp_path / "s.duckdb.lock").exists()
    with ResultStore(path):  # released on close
        pass


def test_writer_that_writes_nothing_leaves_nothing(tmp_path):
    path = tmp_path / "sub" / "s.duckdb"
    with ResultStore(path):
        pass
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == []


def test_second_writer_in_another_process_gets_store_locked_error(tmp_path):
    path = tmp_path / "s.duckdb"
    _fill(path, ["a"])
    holder = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {SRC!r})
        from entprobe.store import ResultStore
        store = ResultStore({str(path)!r})
        print("open", flush=True)
        sys.stdin.readline()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "open"
        with pytest.raises(StoreLockedError, match=f"{path.name} is being written by process {proc.pid}"):
            ResultStore(path)
        with ResultStore(path, read_only=True) as reader:  # a reader copies it meanwhile
            assert len(reader.samples()) == 1
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    # once the other process is gone the store opens, intact
    with ResultStore(path, read_only=True) as store:
        assert len(store.layer_metrics()) == 3


def _table(path: Path, name: str) -> pd.DataFrame:
    with ResultStore(path, read_only=True) as store:
        df = getattr(store, name)()
    drop = [c for c in ("created_at", "started_at", "finished_at", "config") if c in df.columns]
    return df.drop(columns=drop).reset_index(drop=True)


def test_merge_unions_rows_and_skips_duplicates(tmp_path):
    one, two, whole = tmp_path / "1.duckdb", tmp_path / "2.duckdb", tmp_path / "all.duckdb"
    _fill(one, ["a", "b"], failed=("b",))
    _fill(two, ["b", "c", "d"])
    _fill(whole, ["a", "b", "c", "d"])
    merged = tmp_path / "m.duckdb"
    with ResultStore(merged) as store:
        summary = store.merge_from([one, two])
        assert (summary.samples_added, summary.samples_replaced, summary.runs_added) == (4, 1, 1)
        again = store.merge_from([two])
        assert (again.samples_added, again.duplicates, again.runs_added) == (0, 3, 0)
    for table in ("samples", "layer_metrics"):
        pd.testing.assert_frame_equal(_table(merged, table), _table(whole, table))
    with ResultStore(merged, read_only=True) as store:
        runs = store.runs()
        assert len(runs) == 1 and runs["finished_at"].notna().all()


def test_merge_conflicts(tmp_path):
    one, two = tmp_path / "1.duckdb", tmp_path / "2.duckdb"
    _fill(one, ["a", "b"])
    _fill(two, ["b", "c"], offset=0.5)
    target = tmp_path / "t.duckdb"
    with ResultStore(target) as store:
        store.merge_from([one])
        with pytest.raises(StoreError, match="1 sample.*different values.*r1/d/b/prompt"):
            store.merge_from([two])
        assert sorted(store.samples()["sample_id"]) == ["a", "b"]  # nothing from two
        summary = store.merge_from([two], on_conflict="keep")
        assert summary.conflicts == [("r1", "d", "b", "prompt")] and summary.samples_added == 1
        b = store.layer_metrics(sample_id="b")
        assert b["value"].tolist() == [1.0, 2.0, 3.0]  # the target's row was kept
        with pytest.raises(StoreError, match="into itself"):
            store.merge_from([target])


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export_writes_files_that_read_back(tmp_path, fmt):
    path = tmp_path / "s.duckdb"
    _fill(path, ["a", "b"], failed=("b",))
    out = tmp_path / "out"
    with ResultStore(path, read_only=True) as store:
        files = store.export(out, fmt)
        originals = {t: getattr(store, t)() for t in ("runs", "samples", "layer_metrics")}
    assert [f.name for f in files] == [f"runs.{fmt}", f"samples.{fmt}", f"layer_metrics.{fmt}"]
    reader = "read_parquet" if fmt == "parquet" else "read_csv_auto"
    for f in files:
        table = f.name.split(".")[0]
        back = duckdb.sql(f"SELECT * FROM {reader}('{f}')").df()
        assert list(back.columns) == list(originals[table].columns)
        assert len(back) == len(originals[table])
    lm = duckdb.sql(f"SELECT * FROM {reader}('{out / ('layer_metrics.' + fmt)}')").df()
    np.testing.assert_array_equal(lm["value"].to_numpy(), originals["layer_metrics"]["value"].to_numpy())
    if fmt == "csv":
        assert list(pd.read_csv(out / "samples.csv")["status"]) == ["ok", "failed"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_gram_files_round_trip(tmp_path):
    gram = np.random.default_rng(0).normal(size=(3, 5, 5))
    gram = gram @ gram.transpose(0, 2, 1)
    meta = {"gram_id": "g1", "dataset": "d/x", "sample_id": "a b/c?", "level": "text-gen", "model": "m"}
    path = save_gram(tmp_path, gram, meta=meta, n_prompt=3)
    assert path == gram_path(tmp_path, "g1", "d/x", "a b/c?", "text-gen")
    assert path.is_relative_to(tmp_path) and "?" not in str(path.relative_to(tmp_path))
    record = load_gram(path)
    np.testing.assert_array_equal(record.gram, gram)
    assert record.gram.dtype == np.float64 and record.n_prompt == 3
    assert record.meta["sample_id"] == "a b/c?" and read_gram_meta(path)["model"] == "m"
    # ids that differ only in unsafe characters get different files
    other = save_gram(tmp_path, gram, meta={**meta, "sample_id": "a b/c!"})
    assert other != path and load_gram(other).n_prompt is None
    assert list(iter_gram_files(tmp_path)) == sorted([path, other])
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]
    (tmp_path / "junk.safetensors").write_bytes(b"not a gram")
    with pytest.raises(StoreError, match="junk.safetensors"):
        load_gram(tmp_path / "junk.safetensors")
    with pytest.raises(StoreError, match="shape"):
        save_gram(tmp_path, np.zeros((4, 4)), meta=meta)
