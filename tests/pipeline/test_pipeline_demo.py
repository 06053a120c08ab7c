"""`entprobe demo` runs the whole pipeline on tiny models, resumes, and writes the report."""

from __future__ import annotations

import duckdb
from click.testing import CliRunner

from entprobe.cli import main


def test_demo_end_to_end_and_resume(tmp_path):
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--limit", "2", "--max-new-tokens", "4", "--no-progress"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "tiny, randomly initialised" in first.output
    assert "entprobe probe --model" in first.output  # how to run a real checkpoint
    assert (out / "report" / "report.html").is_file()

    con = duckdb.connect(str(out / "results.duckdb"), read_only=True)
    rows = con.execute(
        "SELECT model, level, modality, count(DISTINCT sample_id), count(*) FROM layer_metrics "
        "GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    n_metric_rows = con.execute("SELECT count(*) FROM layer_metrics").fetchone()[0]
    statuses = con.execute("SELECT DISTINCT status FROM samples").fetchall()
    con.close()
    # Two tiny models x (text: prompt, text-gen, image-gen; image: prompt, text-gen),
    # 2 prompts each, 4 rows per sample (embeddings + 3 layers).
    assert len(rows) == 10
    assert all(r[3] == 2 and r[4] == 2 * 4 for r in rows)
    assert statuses == [("ok",)]

    again = CliRunner().invoke(main, [*args, "--no-report"])
    assert again.exit_code == 0, again.output
    assert "already done" in again.output
    con = duckdb.connect(str(out / "results.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM layer_metrics").fetchone()[0] == n_metric_rows
    con.close()
