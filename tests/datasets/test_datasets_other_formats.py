"""RealUnify, JSONL, CSV and image-folder loaders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from entprobe.datasets import load_prompts
from entprobe.datasets._images import Base64Image, FileImage
from entprobe.errors import DatasetError

FIXTURES = Path(__file__).parent / "fixtures"


# ------------------------------------------------------------------ RealUnify


@pytest.fixture
def realunify_dir(tmp_path, images) -> Path:
    root = tmp_path / "RealUnify"
    (root / "images").mkdir(parents=True)
    (root / "images" / "geu_1.png").write_bytes(images.png((20, 10), (10, 10, 250)))
    (root / "images" / "geu_bad.png").write_bytes(images.truncated())
    ueg_direct = [
        {
            "id": 1,
            "prompt": "Draw the tallest mountain on Earth at sunrise.",
            "task_type": "world_knowledge",
            "question_list": [{"question": "Is it Everest?", "answer": "yes"}],
        },
        {
            "id": 2,
            "prompt": "Render the output of a loop printing three stars.",
            "task_type": "code_to_image",
            "question_list": [],
        },
        {"id": 3, "prompt": "An unknown task type.", "task_type": "astrology"},
        {"id": 4, "task_type": "logical_reasoning"},
    ]
    ueg_step = [
        {
            "id": 1,
            "prompt": "original",
            "new_prompt": "Mount Everest at sunrise, pink light.",
            "task_type": "world_knowledge",
        },
    ]
    geu_direct = [
        {
            "id": "g1",
            "question": "What colour is the shape?",
            "options": ["Blue", "Red"],
            "answer": "A",
            "task_type": "mental_tracking",
            "image": "images/geu_1.png",
        },
        {
            "id": "g2",
            "question": "Where did it go?",
            "A": "Left",
            "B": "Right",
            "answer": "B",
            "task_type": "mental_tracking",
            "image": "images/missing.png",
        },
        {
            "id": "g3",
            "question": "Corrupt image.",
            "answer": "A",
            "task_type": "attentional_focusing",
            "image": "images/geu_bad.png",
        },
        {
            "id": "g4",
            "question": "Embedded base64.",
            "answer": "A",
            "task_type": "attentional_focusing",
            "image": images.b64(images.png((40, 40), (0, 0, 0))),
        },
        {"id": "g5", "question": "No image at all.", "answer": "A", "task_type": "mental_tracking"},
    ]
    (root / "UEG_direct.json").write_text(json.dumps(ueg_direct))
    (root / "UEG_step.json").write_text(json.dumps(ueg_step))
    (root / "GEU_direct.json").write_text(json.dumps(geu_direct))
    (root / "GEU_step.json").write_text('[{"id": "s1", "question": "trunc')
    return root


def test_realunify_folder(realunify_dir, accounted):
    ps = load_prompts(f"realunify:{realunify_dir}")
    accounted(ps)
    assert [r.id for r in ps.records] == [
        "GEU_direct:g1",
        "GEU_direct:g4",
        "UEG_direct:1",
        "UEG_direct:2",
        "UEG_step:1",
    ]
    kinds = {s.id: s.kind for s in ps.skipped}
    assert kinds == {
        "GEU_direct:g2": "missing-image",
        "GEU_direct:g3": "bad-image",
        "GEU_direct:g5": "missing-image",
        None: "unreadable-file",
        "UEG_direct:3": "unknown-category",
        "UEG_direct:4": "missing-field",
    }
    by_id = {r.id: r for r in ps.records}
    ueg = by_id["UEG_direct:1"]
    assert (ueg.modality, ueg.category, ueg.subcategory) == (
        "text",
        "world_knowledge",
        "UEG_direct",
    )
    assert ueg.meta["question_list"][0]["answer"] == "yes"
    assert by_id["UEG_step:1"].text == "Mount Everest at sunrise, pink light."
    assert by_id["UEG_step:1"].meta["prompt"] == "original"
    geu = by_id["GEU_direct:g1"]
    assert geu.modality == "image" and geu.category == "mental_tracking"
    assert geu.text == "What colour is the shape?\nOptions:\nA. Blue\nB. Red"
    assert isinstance(geu.image_ref, FileImage)
    assert geu.load_image().size == (20, 10)
    assert isinstance(by_id["GEU_direct:g4"].image_ref, Base64Image)
    assert by_id["GEU_direct:g4"].load_image().size == (40, 40)


def test_realunify_single_file(realunify_dir):
    ps = load_prompts(f"realunify:{realunify_dir / 'UEG_direct.json'}")
    assert len(ps.records) == 2 and len(ps.skipped) == 2


def test_realunify_folder_without_files(tmp_path):
    with pytest.raises(DatasetError, match="no RealUnify files"):
        load_prompts(f"realunify:{tmp_path}")


# ------------------------------------------------------------------ JSONL / CSV


def test_jsonl_with_bad_lines(accounted):
    ps = load_prompts(f"jsonl:{FIXTURES / 'prompts.jsonl'}?category=topic")
    accounted(ps)
    assert [(r.id, r.category) for r in ps.records] == [("a1", "outdoors"), ("a2", "indoors")]
    assert ps.records[0].meta == {"level": "easy"}
    assert [(s.row, s.kind) for s in ps.skipped] == [
        (3, "empty-prompt"),
        (4, "malformed"),
        (6, "duplicate-id"),
        (7, "missing-field"),
        (8, "malformed"),
    ]
    assert ps.n_rows == 7  # the blank line is not a row


def test_jsonl_text_field_must_exist(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"body": "x"}\n')
    with pytest.raises(DatasetError, match=r"no text field; found body.*\?text=FIELD"):
        load_prompts(f"jsonl:{path}")
    assert load_prompts(f"jsonl:{path}?text=body").records[0].text == "x"
    assert load_prompts(f"jsonl:{path}", options={"text": "body"}).records[0].id == "p-1"


def test_csv_with_bad_rows(accounted):
    ps = load_prompts(f"csv:{FIXTURES / 'prompts.csv'}")
    accounted(ps)
    assert [(r.id, r.category, r.subcategory, r.row) for r in ps.records] == [
        ("c1", "scene", "coast", 2),
        ("c2", "text", "poetry", 3),
        ("c5", "object", None, 7),
    ]
    assert ps.records[1].text == "A poem on two lines:\nroses and rain"
    assert [(s.row, s.kind) for s in ps.skipped] == [(5, "empty-prompt"), (6, "malformed")]


def test_csv_named_column_must_exist():
    with pytest.raises(DatasetError, match=r"no column 'prompt' \(\?text=\)"):
        load_prompts(f"csv:{FIXTURES / 'prompts.csv'}?text=prompt")


def test_csv_semicolon_delimiter(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("prompt;group\nA fox;animals\n")
    ps = load_prompts(f"csv:{path}?delimiter=semicolon&category=group")
    assert [(r.text, r.category) for r in ps.records] == [("A fox", "animals")]


# ------------------------------------------------------------------ image folders


@pytest.fixture
def image_dir(tmp_path, images) -> Path:
    root = tmp_path / "pics"
    (root / "animals").mkdir(parents=True)
    (root / "a.png").write_bytes(images.png((8, 8)))
    (root / "animals" / "b.png").write_bytes(images.png((12, 8)))
    (root / "animals" / "c.jpg").write_bytes(b"not a jpeg")
    (root / "huge.png").write_bytes(images.bomb(20_000, 20_000))
    (root / "notes.txt").write_text("not an image, not a row")
    return root


def test_image_folder_without_csv(image_dir, accounted):
    ps = load_prompts(f"images:{image_dir}")
    accounted(ps)
    assert [(r.id, r.category, r.text) for r in ps.records] == [
        ("a.png", None, ""),
        ("animals/b.png", "animals", ""),
    ]
    assert {s.id: s.kind for s in ps.skipped} == {
        "animals/c.jpg": "bad-image",
        "huge.png": "image-too-large",
    }
    assert ps.records[1].load_image().size == (12, 8)


def test_image_folder_with_csv(image_dir, accounted):
    (image_dir / "labels.csv").write_text(
        "file,question,category\n"
        "a.png,What colour is it?,colour\n"
        "missing.png,Gone?,colour\n"
        "animals/b.png,,animals\n"
        ",no file,colour\n"
    )
    ps = load_prompts(f"images:{image_dir}")
    accounted(ps)
    assert [(r.id, r.text, r.category) for r in ps.records] == [
        ("a.png", "What colour is it?", "colour"),
        ("animals/b.png", "", "animals"),
    ]
    assert [(s.row, s.kind) for s in ps.skipped if s.row is not None] == [
        (3, "missing-image"),
        (5, "missing-image"),
    ]
    not_listed = sorted(Path(s.source).name for s in ps.skipped if s.kind == "not-listed")
    assert not_listed == ["c.jpg", "huge.png"]
    assert "does not exist" in ps.skipped[0].reason


def test_image_folder_needs_csv_choice(image_dir):
    (image_dir / "one.csv").write_text("file\na.png\n")
    (image_dir / "two.csv").write_text("file\na.png\n")
    with pytest.raises(DatasetError, match=r"2 CSV files.*\?csv=FILE"):
        load_prompts(f"images:{image_dir}")
    assert len(load_prompts(f"images:{image_dir}?csv=one.csv")) == 1
