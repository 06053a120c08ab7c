"""MMBench TSV loader: every edge case row of ``edge_tsv`` and lazy images."""

from __future__ import annotations

import pytest

from entprobe.datasets import load_prompts
from entprobe.datasets._images import TsvCellImage
from entprobe.errors import DatasetError

EXPECTED_SKIPS = {  # id -> kind
    "4": "bad-image",
    "5": "bad-image",
    "6": "bad-image",
    "7": "dangling-reference",
    "8": "dangling-reference",
    "9": "image-too-large",
    "10": "malformed",
    "11": "unknown-category",
    "12": "empty-prompt",
    "abc": "malformed",
    "15": "missing-image",
}


def test_edge_cases_counted_and_categorised(edge_tsv, accounted):
    ps = load_prompts(f"mmbench:{edge_tsv}")
    accounted(ps)
    assert [r.id for r in ps.records] == ["1", "2", "3", "13", "14"]
    assert ps.n_rows == 18
    assert ps.n_collapsed == 2
    assert {s.id: s.kind for s in ps.skipped} == EXPECTED_SKIPS
    assert all(s.row is not None for s in ps.skipped)
    by_id = {r.id: r for r in ps.records}
    assert by_id["1"].category == "Coarse" and by_id["1"].subcategory == "image_scene"
    assert by_id["2"].category == "Single-instance"
    assert by_id["3"].category == "Logical"
    assert by_id["13"].category == "Relation"
    assert by_id["14"].category == "Single-instance"  # from the leaf category "ocr"
    assert by_id["14"].meta["l2_category"] == "finegrained_perception (instance-level)"
    assert all(r.modality == "image" and r.dataset == "mmbench" for r in ps.records)


def test_skip_reasons_are_specific(edge_tsv):
    reasons = {s.id: s.reason for s in load_prompts(f"mmbench:{edge_tsv}").skipped}
    assert "not valid base64" in reasons["4"]
    assert "not a readable image" in reasons["5"]
    assert "corrupt PNG" in reasons["6"]
    assert "index 99" in reasons["7"] and "no row" in reasons["7"]
    assert "index 4" in reasons["8"] and "unusable" in reasons["8"]
    assert "decompression bomb" in reasons["9"]
    assert "2 fields; the header has 14" in reasons["10"]
    assert "mystery_reasoning" in reasons["11"]
    assert "'abc' is not an integer" in reasons["abc"]
    report = load_prompts(f"mmbench:{edge_tsv}").report()
    assert "skipped 11 row(s)" in report and "3 bad-image" in report
    assert "2 circular-evaluation copies collapsed" in report


def test_question_text_hint_and_options(edge_tsv):
    by_id = {r.id: r for r in load_prompts(f"mmbench:{edge_tsv}").records}
    first = by_id["1"]
    assert first.text == ("Question: What is shown?\nOptions:\nA. Red\nB. Blue\nC. Green\nD. Grey")
    assert first.n_chars == len(first.text)
    assert first.meta["hint"] is None  # empty hint
    assert first.meta["circular_copies"] == [1_000_001, 2_000_001]
    second = by_id["2"]
    assert second.meta["hint"] is None  # "nan" hint
    assert second.meta["options"] == {"A": "Red", "B": "Blue"}
    assert second.text.startswith("Question: Which colour?\nPick one.\nOptions:")
    assert by_id["3"].text.startswith("Hint: Think first.\nQuestion:")
    assert by_id["3"].meta["image_from_index"] == 1


def test_row_numbers_are_lines_despite_multiline_field(edge_tsv):
    rows = {r.id: r.row for r in load_prompts(f"mmbench:{edge_tsv}").records}
    # header on line 1, row "2" spans lines 3-4 (its question has a newline)
    assert rows["1"] == 2 and rows["2"] == 3 and rows["3"] == 5


def test_dedup_false_keeps_circular_copies(edge_tsv, accounted):
    ps = load_prompts(f"mmbench:{edge_tsv}", dedup=False)
    accounted(ps)
    assert ps.n_collapsed == 0
    assert [r.id for r in ps.records] == ["1", "2", "3", "1000001", "2000001", "13", "14"]
    copy = ps.records[3]
    assert copy.meta["answer"] == "D" and copy.meta["image_from_index"] == 1


def test_images_are_lazy_references_and_decode(edge_tsv):
    by_id = {r.id: r for r in load_prompts(f"mmbench:{edge_tsv}").records}
    for record in by_id.values():
        assert isinstance(record.image_ref, TsvCellImage)  # an offset, not pixels or base64
        assert all(len(repr(v)) < 200 for v in record.meta.values())
    red = by_id["1"].load_image()
    assert red.size == (16, 16) and red.mode == "RGB" and red.getpixel((0, 0)) == (200, 30, 30)
    assert by_id["2"].load_image().size == (24, 12)  # the row after a multi-line field
    assert by_id["3"].load_image().getpixel((3, 3)) == (200, 30, 30)  # referenced image
    assert by_id["13"].load_image().getpixel((0, 0)) == (30, 200, 30)
    assert by_id["1"].load_image(mode=None).mode == "RGB"


def test_load_image_notices_a_changed_file(edge_tsv, write_tsv, images, mm_row):
    record = load_prompts(f"mmbench:{edge_tsv}").records[1]
    write_tsv(edge_tsv, [mm_row(77, image=images.b64(images.png()))])
    with pytest.raises(DatasetError, match=r"record '2'.*changed since it was loaded"):
        record.load_image()


def test_max_pixels_skips_large_images(edge_tsv, accounted):
    ps = load_prompts(f"mmbench:{edge_tsv}", max_pixels=400)  # the largest image, 20x20, fits
    accounted(ps)
    assert {r.id for r in ps.records} == {"1", "2", "3", "13", "14"}
    ps = load_prompts(f"mmbench:{edge_tsv}", max_pixels=200)
    accounted(ps)
    assert ps.records == []
    kinds = {s.id: s.kind for s in ps.skipped}
    assert kinds["1"] == kinds["2"] == "image-too-large"
    assert kinds["3"] == "dangling-reference"
    assert "over the limit of 200" in next(s.reason for s in ps.skipped if s.id == "1")


def test_crlf_line_endings(tmp_path, images, write_tsv, mm_row):
    path = write_tsv(
        tmp_path / "crlf.tsv",
        [
            mm_row(1, image=images.b64(images.png()), question="two\r\nlines"),
            mm_row(2, image="1"),
        ],
        lineterminator="\r\n",
    )
    ps = load_prompts(f"mmbench:{path}")
    assert [r.id for r in ps.records] == ["1", "2"]
    assert ps.records[1].load_image().size == (16, 16)


def test_reference_may_point_forward(tmp_path, images, write_tsv, mm_row):
    path = write_tsv(
        tmp_path / "fwd.tsv",
        [
            mm_row(1_000_005, image="5"),
            mm_row(5, image=images.b64(images.png())),
        ],
    )
    ps = load_prompts(f"mmbench:{path}")
    assert [r.id for r in ps.records] == ["5"] and ps.n_collapsed == 1


def test_duplicate_index_is_skipped(tmp_path, images, write_tsv, accounted, mm_row):
    image = images.b64(images.png())
    path = write_tsv(tmp_path / "dup.tsv", [mm_row(1, image=image), mm_row(1, image=image)])
    for dedup in (True, False):
        ps = load_prompts(f"mmbench:{path}", dedup=dedup)
        accounted(ps)
        assert len(ps.records) == 1 and [s.kind for s in ps.skipped] == ["duplicate-id"]


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("", "is empty"),
        ("index\tquestion\thint\n1\tq\th\n", "missing column.*image"),
        ("index\tquestion\timage\n1\tq\tx\n", "l2-category or category"),
    ],
)
def test_unusable_files_raise_before_loading(tmp_path, content, match):
    path = tmp_path / "bad.tsv"
    path.write_text(content)
    with pytest.raises(DatasetError, match=match):
        load_prompts(f"mmbench:{path}")


def test_folder_without_parquet_is_not_mmbench(tmp_path):
    with pytest.raises(DatasetError, match="no MMBench TSV or parquet files"):
        load_prompts(f"mmbench:{tmp_path}")


def test_records_pickle_with_their_image_reference(edge_tsv):
    import pickle

    record = load_prompts(f"mmbench:{edge_tsv}").records[0]
    clone = pickle.loads(pickle.dumps(record))
    assert clone == record and clone.image_source == record.image_source
    assert clone.load_image().tobytes() == record.load_image().tobytes()
