"""MMBench as parquet, in each mirror's layout: Image-feature structs or base64
text, ``L2-category`` or ``l2-category``, ``index`` as text or int64, split
folders and the hub's ``<config>/<split>/0000.parquet``. The same rows give the
same records as the VLMEvalKit TSV. Fixtures are our own, written here."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from datasets_mmbench_columns import MMBENCH_COLUMNS

from entprobe.cli import main
from entprobe.datasets import load_prompts
from entprobe.errors import DatasetError

STRUCT = "STRUCT(bytes BLOB, path VARCHAR)"


def _columns(image_type: str, index_type: str = "BIGINT", l2: str = "l2-category") -> dict:
    cols = {c: "VARCHAR" for c in MMBENCH_COLUMNS}
    cols["index"] = index_type
    cols["image"] = image_type
    return {(l2 if c == "l2-category" else c): t for c, t in cols.items()}


def _row(mm_row, index, image, *, index_as=int, **fields) -> tuple:
    """One row in MMBENCH_COLUMNS order; empty text cells become NULL as in parquet."""
    row = mm_row(index, **fields)
    row["index"] = index_as(index)
    row["image"] = image
    return tuple(None if v == "" else v for v in (row[c] for c in MMBENCH_COLUMNS))


@pytest.fixture
def pngs(images):
    red = images.png((16, 16), (200, 30, 30))
    blue = images.png((24, 12), (30, 30, 200))
    return red, blue


def _struct(data):
    return {"bytes": data, "path": None}


def test_image_feature_mirror_with_capital_l2_and_string_index(
    tmp_path, mm_row, images, pngs, write_parquet, accounted
):
    red, blue = pngs
    rows = [
        _row(mm_row, 1, _struct(red), index_as=str, options=("Red", "Blue", "Green", "Grey")),
        _row(
            mm_row,
            2,
            _struct(blue),
            index_as=str,
            hint="Look closely.",
            l2="logic_reasoning",
            category="future_prediction",
        ),
        _row(mm_row, 1_000_001, _struct(red), index_as=str, answer="B"),  # circular copy
        _row(mm_row, 3, _struct(images.bomb()), index_as=str),  # decompression bomb
        _row(mm_row, 4, _struct(b"not an image"), index_as=str),
        _row(mm_row, 5, None, index_as=str),  # no image at all
        _row(mm_row, 6, {"bytes": None, "path": None}, index_as=str),  # empty struct
        _row(mm_row, 7, _struct(red), index_as=str, l2="mystery_reasoning"),
        _row(mm_row, 8, _struct(red), index_as=str, question=""),
        _row(mm_row, "x9", _struct(red), index_as=str),  # bad index
        _row(mm_row, 2, _struct(red), index_as=str),  # index used twice
    ]
    cols = _columns(STRUCT, "VARCHAR", l2="L2-category")
    root = tmp_path / "mirror"
    write_parquet(root / "en" / "dev-00000-of-00001.parquet", cols, rows)
    write_parquet(root / "cn" / "dev-00000-of-00001.parquet", cols, rows[:2])

    with pytest.raises(DatasetError, match=r"2 MMBench splits \(cn/dev, en/dev\).*\?split="):
        load_prompts(f"mmbench:{root}")
    ps = load_prompts(f"mmbench:{root}?split=en/dev")
    accounted(ps)
    assert [r.id for r in ps.records] == ["1", "2"]
    assert ps.n_rows == 11 and ps.n_collapsed == 1
    assert {s.id: s.kind for s in ps.skipped} == {
        "3": "image-too-large",
        "4": "bad-image",
        "5": "missing-image",
        "6": "missing-image",
        "7": "unknown-category",
        "8": "empty-prompt",
        "x9": "malformed",
        "2": "duplicate-id",
    }
    first, second = ps.records
    assert first.text == "Question: What is shown?\nOptions:\nA. Red\nB. Blue\nC. Green\nD. Grey"
    assert (first.category, first.subcategory, first.row) == ("Coarse", "image_scene", 1)
    assert first.meta["circular_copies"] == [1_000_001]
    assert second.text.startswith("Hint: Look closely.\nQuestion:")
    assert second.category == "Logical"
    assert first.load_image().getpixel((0, 0)) == (200, 30, 30)
    assert second.load_image().size == (24, 12)
    assert load_prompts(f"mmbench:{root}?split=cn/dev").n_rows == 2


def test_base64_mirror_with_references(tmp_path, mm_row, images, pngs, write_parquet, accounted):
    red, blue = pngs
    b64 = images.b64
    rows = [
        _row(mm_row, 10, b64(red)),
        _row(mm_row, 11, "10", l2="relation_reasoning", category="nature_relation"),  # reference
        _row(mm_row, 12, "99"),  # dangling reference
        _row(mm_row, 13, "!!not base64!!" * 6),
        _row(mm_row, 14, b64(blue), l2=None, category="ocr"),  # l2 from the leaf
    ]
    root = tmp_path / "b64"
    write_parquet(root / "data" / "validation-00000-of-00001.parquet", _columns("VARCHAR"), rows)
    write_parquet(root / "data" / "test-00000-of-00001.parquet", _columns("VARCHAR"), rows[:1])
    ps = load_prompts(f"mmbench:{root}?split=validation")
    accounted(ps)
    assert [r.id for r in ps.records] == ["10", "11", "14"]
    assert {s.id: s.kind for s in ps.skipped} == {"12": "dangling-reference", "13": "bad-image"}
    by_id = {r.id: r for r in ps.records}
    assert by_id["11"].meta["image_from_index"] == 10
    assert by_id["11"].load_image().getpixel((3, 3)) == (200, 30, 30)
    assert by_id["14"].category == "Single-instance"
    with pytest.raises(DatasetError, match="split 'dev' matches none"):
        load_prompts(f"mmbench:{root}?split=dev")


def test_hub_conversion_shards_collapse_across_files(tmp_path, mm_row, pngs, write_parquet):
    red, _ = pngs
    cols = _columns(STRUCT)
    root = tmp_path / "auto"
    write_parquet(root / "default" / "dev" / "0000.parquet", cols, [_row(mm_row, 1, _struct(red))])
    write_parquet(
        root / "default" / "dev" / "0001.parquet",
        cols,
        [_row(mm_row, 1_000_001, _struct(red)), _row(mm_row, 2, _struct(red))],
    )
    ps = load_prompts(f"mmbench:{root}")
    assert [r.id for r in ps.records] == ["1", "2"] and ps.n_collapsed == 1
    assert ps.records[1].source.endswith("0001.parquet") and ps.records[1].row == 2
    assert len(load_prompts(f"mmbench:{root}", dedup=False)) == 3
    assert len(load_prompts(f"mmbench:{root / 'default' / 'dev' / '0001.parquet'}")) == 2


def test_parquet_records_equal_tsv_records(tmp_path, mm_row, images, pngs, write_tsv, write_parquet):
    red, blue = pngs
    specs = [
        dict(index=1, png=red, options=("Red", "Blue", "Green", "Grey")),
        dict(index=2, png=blue, hint="Count first.", l2="attribute_reasoning", category="function_reasoning"),
        dict(index=1_000_001, png=red, options=("Blue", "Green", "Grey", "Red"), answer="D"),
        dict(index=3, png=red, question=""),
    ]

    def fields(spec):
        return {k: v for k, v in spec.items() if k not in ("index", "png")}

    tsv = write_tsv(
        tmp_path / "mm.tsv", [mm_row(s["index"], image=images.b64(s["png"]), **fields(s)) for s in specs]
    )
    pq = write_parquet(
        tmp_path / "mm.parquet",
        _columns(STRUCT),
        [_row(mm_row, s["index"], _struct(s["png"]), **fields(s)) for s in specs],
    )
    a, b = load_prompts(f"mmbench:{tsv}"), load_prompts(f"mmbench:{pq}")

    def shape(r):
        return (r.id, r.dataset, r.modality, r.text, r.category, r.subcategory, r.n_chars, r.meta)

    assert [shape(r) for r in a.records] == [shape(r) for r in b.records]
    assert [(s.id, s.kind, s.reason) for s in a.skipped] == [(s.id, s.kind, s.reason) for s in b.skipped]
    assert (a.n_rows, a.n_collapsed) == (b.n_rows, b.n_collapsed) == (4, 1)
    assert a.length_buckets() == b.length_buckets()
    for ra, rb in zip(a.records, b.records):
        assert ra.load_image().tobytes() == rb.load_image().tobytes()


def test_changed_file_is_noticed(tmp_path, mm_row, pngs, write_parquet):
    red, _ = pngs
    path = tmp_path / "mm.parquet"
    write_parquet(path, _columns(STRUCT), [_row(mm_row, 1, _struct(red))])
    record = load_prompts(f"mmbench:{path}").records[0]
    import pickle

    again = pickle.loads(pickle.dumps(record))  # records travel to worker processes
    assert again.load_image().getpixel((0, 0)) == (200, 30, 30)
    write_parquet(path, _columns(STRUCT), [_row(mm_row, 5, _struct(red))])
    with pytest.raises(DatasetError, match="changed since it was loaded"):
        record.load_image()


def test_not_mmbench_and_not_parquet(tmp_path, write_parquet, write_tsv, mm_row):
    other = write_parquet(tmp_path / "x.parquet", {"prompt": "VARCHAR"}, [("hi",)])
    with pytest.raises(DatasetError, match="not MMBench parquet: missing column.*index"):
        load_prompts(f"mmbench:{other}")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="not a readable parquet file"):
        load_prompts(f"mmbench:{broken}")
    with pytest.raises(DatasetError, match="no MMBench TSV or parquet"):
        load_prompts(f"mmbench:{(tmp_path / 'empty').mkdir() or tmp_path / 'empty'}")
    tsv = write_tsv(tmp_path / "a.tsv", [mm_row(1)])
    with pytest.raises(DatasetError, match="a TSV is one split"):
        load_prompts(f"mmbench:{tsv}?split=dev")


def test_datasets_inspect_reads_parquet(tmp_path, mm_row, pngs, write_parquet):
    red, _ = pngs
    path = write_parquet(
        tmp_path / "dev.parquet",
        _columns(STRUCT),
        [_row(mm_row, 1, _struct(red)), _row(mm_row, 1_000_001, _struct(red))],
    )
    result = CliRunner().invoke(main, ["datasets", "inspect", f"mmbench:{path}"])
    assert result.exit_code == 0, result.output
    assert "1 records from 2 rows" in result.output
    assert "1 circular-evaluation copies collapsed" in result.output
