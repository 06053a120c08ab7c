"""A store is readable while a probe writes it (status, reads, a partial report), and a
kill between a Gram file and its store rows leaves neither an orphan Gram nor a half
sample. Both with a real second process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from entprobe.store import ResultStore, iter_gram_files, read_gram_meta, store_status

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(HERE)])}

WRITER = textwrap.dedent("""
    import sys, time
    from pipeline_fakes import FakeAdapter, text_set
    from entprobe.pipeline import ProbeOptions, run_probe
    from entprobe.store import ResultStore

    class Slow(FakeAdapter):
        def encode_text(self, text):
            time.sleep(float(sys.argv[2]))
            return super().encode_text(text)

    with ResultStore(sys.argv[1]) as store:
        s = run_probe(Slow(), [text_set()], levels="prompt", store=store, options=ProbeOptions(), progress=False)
    print("done", s.n_ok, s.n_failed, flush=True)
""")


def test_status_reads_and_a_partial_report_while_a_probe_writes(tmp_path):
    from click.testing import CliRunner

    from entprobe.cli import main
    from entprobe.report import write_report

    store = tmp_path / "live.duckdb"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(store), "0.4"],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[int] = []
    report = None
    try:
        deadline = time.monotonic() + 120
        while writer.poll() is None and time.monotonic() < deadline:
            if store.exists():
                found = store_status(store, wait=30)
                if found.runs:
                    run = found.runs[0]
                    seen.append(run.ok)
                    # (once the run has finished the writer lets go of its lock before it exits)
                    assert found.writer_pid == writer.pid or run.finished_at is not None
                    assert run.planned is not None and run.ok <= run.planned
                    with ResultStore(store, read_only=True, wait=30) as reader:  # whole samples only
                        lm, samples = reader.layer_metrics(), reader.samples()
                        assert len(lm) == sum(1 + n for n in lm.groupby("sample_id")["n_layers"].first())
                        assert set(lm["sample_id"]) == set(samples["sample_id"])
                    if report is None and 0 < run.ok < run.planned:
                        cli = CliRunner().invoke(main, ["status", "--store", str(store)])
                        assert cli.exit_code == 0 and f"being written by process {writer.pid}" in cli.output
                        report = write_report([store], tmp_path / "report", n_boot=10)
            time.sleep(0.2)
        out, err = writer.communicate(timeout=60)
    finally:
        if writer.poll() is None:
            writer.kill()
    assert writer.returncode == 0, err
    n = int(out.split()[1])
    assert out.split()[2] == "0" and n > 2
    assert report is not None and report.exists(), f"never caught the probe mid-run: {seen}"
    assert seen == sorted(seen) and any(0 < k < n for k in seen)
    final = store_status(store)
    assert final.writer_pid is None and final.runs[0].ok == n and final.runs[0].finished_at is not None
    assert not (tmp_path / "live.duckdb.lock").exists()


KILLER = textwrap.dedent("""
    import os, signal, sys
    from pipeline_fakes import FakeAdapter, text_set
    import entprobe.pipeline.writer as probe  # the sample writer publishes the Grams
    from entprobe.pipeline import ProbeOptions, run_probe
    from entprobe.store import ResultStore

    point, n = sys.argv[3], int(sys.argv[4])
    calls = {"write": 0, "publish": 0}
    real_write, real_publish = ResultStore.write_sample, probe.publish_gram

    def write(self, row, *a, **k):  # SIGKILL with the n-th Gram written, its rows not yet
        calls["write"] += 1
        if point == "before-commit" and calls["write"] == n:
            os.kill(os.getpid(), signal.SIGKILL)
        return real_write(self, row, *a, **k)

    def publish(pending):  # SIGKILL with the n-th sample's rows committed, its Gram not renamed
        calls["publish"] += 1
        if point == "before-rename" and calls["publish"] == n:
            os.kill(os.getpid(), signal.SIGKILL)
        return real_publish(pending)

    ResultStore.write_sample = write
    probe.publish_gram = publish
    with ResultStore(sys.argv[1]) as store:
        run_probe(FakeAdapter(), [text_set()], levels="prompt", store=store,
                  options=ProbeOptions(save_grams=sys.argv[2]), progress=False)
""")


def _grams_and_rows(store: Path, grams: Path) -> tuple[set, set, list]:
    final = {
        (m["dataset"], m["sample_id"], m["level"])
        for m in (read_gram_meta(p) for p in iter_gram_files(grams))
    }
    with ResultStore(store, read_only=True) as s:
        rows = s.samples(status="ok")
    ok = set(zip(rows["dataset"], rows["sample_id"], rows["level"]))
    pending = [p for p in grams.rglob(".*") if p.is_file()]
    return final, ok, pending


@pytest.mark.parametrize("point", ["before-commit", "before-rename"])
def test_a_kill_between_gram_and_rows_leaves_no_orphan_and_resume_settles_it(tmp_path, point):
    from pipeline_fakes import FakeAdapter, text_set

    from entprobe.pipeline import ProbeOptions, run_probe

    store, grams = tmp_path / "s.duckdb", tmp_path / "g"
    proc = subprocess.run(
        [sys.executable, "-c", KILLER, str(store), str(grams), point, "3"],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    final, ok, pending = _grams_and_rows(store, grams)
    assert final <= ok and len(final) == 2  # never a published Gram without its rows
    assert len(ok) == (2 if point == "before-commit" else 3)  # rows are whole samples or absent
    assert len(pending) == 1  # the sample in flight: its Gram left under its pending name

    with ResultStore(store) as s:
        summary = run_probe(
            FakeAdapter(),
            [text_set()],
            levels="prompt",
            store=s,
            options=ProbeOptions(save_grams=grams),
            progress=False,
        )
    final, ok, pending = _grams_and_rows(store, grams)
    assert pending == [] and final == ok and len(ok) == summary.n_records
    assert summary.n_skipped == (2 if point == "before-commit" else 3)
