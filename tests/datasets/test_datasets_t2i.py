"""T2I-CoReBench loader: GitHub and hub layouts, bad rows and files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from entprobe.datasets import T2I_DIMENSIONS, load_prompts
from entprobe.errors import DatasetError

FIXTURES = Path(__file__).parent / "fixtures"


def test_github_layout_with_bad_rows_and_a_broken_file(accounted):
    ps = load_prompts(f"t2i-corebench:{FIXTURES / 't2i_github'}")
    accounted(ps)
    assert [r.id for r in ps.records] == ["C-MI-001", "R-LR-001", "R-GR-001", "R-GR-002"]
    assert [(r.category, r.subcategory) for r in ps.records] == [
        ("Composition", "C-MI"),
        ("Deductive", "R-LR"),
        ("Inductive", "R-GR"),
        ("Inductive", "R-GR"),
    ]
    assert ps.n_rows == 8
    skips = [(s.id, s.kind) for s in ps.skipped]
    assert skips == [
        ("C-MI-002", "missing-field"),
        ("C-MI-003", "empty-prompt"),
        ("R-LR-002", "unknown-category"),
        ("R-LR-003", "malformed"),
        (None, "unreadable-file"),
    ]
    broken = ps.skipped[-1]
    assert broken.row is None and broken.source.endswith("R-CR.json")
    assert "not valid JSON" in broken.reason and "line 3" in broken.reason
    assert "missing field 'Prompt'" in ps.skipped[0].reason
    assert "does not fit dimension R-LR" in ps.skipped[2].reason
    assert "notes.json" not in " ".join(ps.sources)
    assert "skipped 4 row(s) and 1 file(s)" in ps.report()


def test_record_fields():
    record = load_prompts(f"t2i-corebench:{FIXTURES / 't2i_github'}").records[0]
    assert record.modality == "text" and record.dataset == "t2i-corebench"
    assert record.text == "Two cats and one dog asleep on a green sofa."
    assert record.n_chars == len(record.text)
    assert record.source.endswith("C-MI.json") and record.row == 1
    assert record.meta["checklist"] == [{"question": "Are there exactly two cats?", "tags": ["count"]}]
    assert record.meta["main_class"] == "Composition" and record.meta["dimension"] == "Multi-Instance"
    with pytest.raises(DatasetError, match="has no image"):
        record.load_image()


def test_data_subfolder_is_found(tmp_path):
    shutil.copytree(FIXTURES / "t2i_github", tmp_path / "data")
    assert len(load_prompts(f"t2i-corebench:{tmp_path}")) == 4


def test_hub_layout_with_truncated_line(accounted):
    ps = load_prompts(f"t2i-corebench:{FIXTURES / 't2i_hub'}")
    accounted(ps)
    assert [r.id for r in ps.records] == ["C-TR-001", "C-TR-002", "R-AR-001"]
    assert [r.category for r in ps.records] == ["Composition", "Composition", "Inductive"]
    assert [(s.row, s.kind) for s in ps.skipped] == [
        (3, "malformed"),
        (3, "unknown-category"),
        (4, "unknown-category"),
    ]
    assert "not valid JSON" in ps.skipped[0].reason
    assert "'R-XX'" in ps.skipped[1].reason
    assert "conflicting" in ps.skipped[2].reason and "C-MI" in ps.skipped[2].reason


def test_single_jsonl_file_with_task_field(accounted):
    ps = load_prompts(f"t2i-corebench:{FIXTURES / 't2i_single.jsonl'}")
    accounted(ps)
    assert [r.subcategory for r in ps.records] == ["C-MA", "R-HR", "R-RR", "R-CR"]
    assert [r.category for r in ps.records] == [
        "Composition",
        "Deductive",
        "Abductive",
        "Abductive",
    ]
    assert [s.kind for s in ps.skipped] == ["unknown-category"]
    assert "Mystery Reasoning" in ps.skipped[0].reason


def test_single_json_file(tmp_path):
    ps = load_prompts(f"t2i-corebench:{FIXTURES / 't2i_github' / 'R-GR.json'}")
    assert [r.id for r in ps.records] == ["R-GR-001", "R-GR-002"]


def test_single_broken_json_file_raises(tmp_path):
    with pytest.raises(DatasetError, match=r"R-CR\.json: file is not valid JSON"):
        load_prompts(f"t2i-corebench:{FIXTURES / 't2i_github' / 'R-CR.json'}")


def test_folder_without_benchmark_files_raises(tmp_path):
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(DatasetError, match="no T2I-CoReBench files"):
        load_prompts(f"t2i-corebench:{tmp_path}")


def test_list_of_objects_and_wrong_top_level(tmp_path, accounted):
    rows = [{"ID": "C-MR-001", "Prompt": "A cup on a saucer."}, "not an object"]
    (tmp_path / "C-MR.json").write_text(json.dumps(rows))
    (tmp_path / "C-MA.json").write_text(json.dumps("just a string"))
    ps = load_prompts(f"t2i-corebench:{tmp_path}")
    accounted(ps)
    assert [r.id for r in ps.records] == ["C-MR-001"]
    assert sorted(s.kind for s in ps.skipped) == ["malformed", "unreadable-file"]


def test_table1_categories():
    groups = {}
    for code, (category, _) in T2I_DIMENSIONS.items():
        groups.setdefault(category, []).append(code)
    assert groups == {
        "Composition": ["C-MI", "C-MA", "C-MR", "C-TR"],
        "Deductive": ["R-LR", "R-BR", "R-HR", "R-PR"],
        "Inductive": ["R-GR", "R-AR"],
        "Abductive": ["R-CR", "R-RR"],
    }
