"""T2I-CoReBench as its hub publishes it: parquet splits (``splits/*.parquet``, the
hub's automatic ``<config>/<split>/0000.parquet``, one file with a ``task`` field),
read into the same records as the JSON and JSONL layouts. Fixtures are written
here with our own prompts."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from entprobe.cli import main
from entprobe.datasets import load_prompts
from entprobe.errors import DatasetError

T2I_COLUMNS = {
    "ID": "VARCHAR",
    "Main Class": "VARCHAR",
    "Sub Class": "VARCHAR",
    "Prompt": "VARCHAR",
    "Checklist": "STRUCT(question VARCHAR, tags VARCHAR[])[]",
    "Remark": "VARCHAR",
}
CHECK = [{"question": "Is the kettle blue?", "tags": ["colour"]}]

ROWS = {
    "C-MI": [
        ("C-MI-001", "Composition", "Multi-Instance", "Three kites over a beach.", CHECK, None),
        ("C-MI-002", "Composition", "Multi-Instance", "", [], None),  # empty prompt
    ],
    "R-LR": [
        (
            "R-LR-001",
            "Reasoning",
            "Logical Reasoning",
            "If every lamp is lit, draw the lamp that is lit.",
            [],
            "why",
        ),
        ("C-MA-009", "Reasoning", "Logical Reasoning", "A cat.", [], None),  # ID contradicts file
        ("R-LR-003", "Composition", "Logical Reasoning", "A tree.", [], None),  # bad Main Class
    ],
}
GOOD = ["C-MI-001", "R-LR-001"]


def _write_splits(root, write_parquet, name="{code}.parquet"):
    for code, rows in ROWS.items():
        write_parquet(root / name.format(code=code, hub=code.replace("-", "_")), T2I_COLUMNS, rows)
    return root


def _jsonl(root):
    root.mkdir(parents=True)
    for code, rows in ROWS.items():
        with open(root / f"{code}.jsonl", "w") as fh:
            for row in rows:
                item = dict(zip(T2I_COLUMNS, row))
                fh.write(json.dumps(item) + "\n")
    return root


def test_splits_parquet_with_bad_rows(tmp_path, write_parquet, accounted):
    _write_splits(tmp_path / "splits", write_parquet)
    ps = load_prompts(f"t2i-corebench:{tmp_path}")
    accounted(ps)
    assert [r.id for r in ps.records] == GOOD
    assert ps.n_rows == 5
    assert [(s.id, s.row, s.kind) for s in ps.skipped] == [
        ("C-MI-002", 2, "empty-prompt"),
        ("C-MA-009", 2, "unknown-category"),
        ("R-LR-003", 3, "unknown-category"),
    ]
    assert "conflicting" in ps.skipped[1].reason
    first = ps.records[0]
    assert (first.category, first.subcategory, first.row) == ("Composition", "C-MI", 1)
    assert first.meta["checklist"] == CHECK
    assert first.source.endswith("C-MI.parquet")


def test_parquet_records_equal_jsonl_records(tmp_path, write_parquet):
    """Same rows as parquet and as JSONL: same records, skips and length buckets."""
    pq = load_prompts(f"t2i-corebench:{_write_splits(tmp_path / 'pq' / 'splits', write_parquet)}")
    js = load_prompts(f"t2i-corebench:{_jsonl(tmp_path / 'js' / 'splits')}")

    def shape(r):
        return (r.id, r.dataset, r.modality, r.text, r.category, r.subcategory, r.n_chars, r.row, r.meta)

    assert [shape(r) for r in pq.records] == [shape(r) for r in js.records]
    assert [(s.id, s.row, s.kind, s.reason) for s in pq.skipped] == [
        (s.id, s.row, s.kind, s.reason) for s in js.skipped
    ]
    assert (pq.n_rows, pq.n_limited, pq.n_collapsed) == (js.n_rows, js.n_limited, js.n_collapsed)
    assert pq.length_buckets() == js.length_buckets()


def test_hub_conversion_layout_names_dimension_by_folder(tmp_path, write_parquet, accounted):
    # <config>/<split>/0000.parquet; hub split names spell C-MI as C_MI
    root = tmp_path / "hub"
    _write_splits(root, write_parquet, name="default/{hub}/0000.parquet")
    # a row with neither ID nor Sub Class: the split folder says the dimension
    write_parquet(
        root / "default" / "R_GR" / "0000.parquet",
        {"Prompt": "VARCHAR", "Main Class": "VARCHAR"},
        [("A sequence of shapes, continued.", "Reasoning")],
    )
    ps = load_prompts(f"t2i-corebench:{root}", limit=2)
    accounted(ps)
    assert [r.id for r in ps.records] == GOOD
    assert ps.n_limited == 1
    everything = load_prompts(f"t2i-corebench:{root}")
    last = everything.records[-1]
    assert (last.id, last.subcategory, last.category) == ("R-GR-001", "R-GR", "Inductive")


def test_single_split_file_with_task_field(tmp_path, write_parquet, accounted):
    path = write_parquet(
        tmp_path / "default" / "train" / "0000.parquet",
        {"ID": "BIGINT", "task": "VARCHAR", "Prompt": "VARCHAR"},
        [
            (1, "C-MR", "A spoon inside a cup."),
            (2, "R_HR", "Had the bridge been paper, draw it in rain."),
            (3, "X-YY", "Unknown dimension."),
            (4, None, None),  # no prompt
        ],
    )
    for spec in (f"t2i-corebench:{path}", f"t2i-corebench:{tmp_path}"):
        ps = load_prompts(spec)
        accounted(ps)
        assert [(r.id, r.subcategory) for r in ps.records] == [("1", "C-MR"), ("2", "R-HR")]
        assert [s.kind for s in ps.skipped] == ["unknown-category", "empty-prompt"]
        assert "'X-YY'" in ps.skipped[0].reason


def test_unreadable_parquet_in_a_folder_is_counted(tmp_path, write_parquet, accounted):
    _write_splits(tmp_path / "splits", write_parquet)
    (tmp_path / "splits" / "R-CR.parquet").write_bytes(b"PAR1 but not really parquet")
    ps = load_prompts(f"t2i-corebench:{tmp_path}")
    accounted(ps)
    assert [r.id for r in ps.records] == GOOD
    broken = [s for s in ps.skipped if s.row is None]
    assert len(broken) == 1 and broken[0].kind == "unreadable-file"
    assert broken[0].source.endswith("R-CR.parquet") and "parquet" in broken[0].reason


def test_named_broken_parquet_file_raises(tmp_path):
    bad = tmp_path / "C-MI.parquet"
    bad.write_bytes(b"nope")
    with pytest.raises(DatasetError, match=r"C-MI\.parquet: not a readable parquet file"):
        load_prompts(f"t2i-corebench:{bad}")


def test_jsonl_wins_over_parquet_copy(tmp_path, write_parquet):
    _jsonl(tmp_path / "splits")
    _write_splits(tmp_path / "splits", write_parquet)
    ps = load_prompts(f"t2i-corebench:{tmp_path}")
    assert all(s.endswith(".jsonl") for s in ps.sources) and len(ps.records) == 2


def test_datasets_inspect_reads_the_hub_layout(tmp_path, write_parquet):
    _write_splits(tmp_path / "splits", write_parquet)
    result = CliRunner().invoke(main, ["datasets", "inspect", f"t2i-corebench:{tmp_path}"])
    assert result.exit_code == 0, result.output
    assert "2 records from 5 rows in 2 file(s)" in result.output
    assert "Composition" in result.output and "empty-prompt" in result.output
