"""Builders for the dataset tests: small images (good, corrupt, bombs) and an
MMBench-style TSV with every edge case the loaders must survive."""

from __future__ import annotations

import base64
import csv
import io
import struct
import zlib
from pathlib import Path

import pytest
from datasets_mmbench_columns import MMBENCH_COLUMNS
from PIL import Image

FIXTURES = Path(__file__).parent / "fixtures"


class ImageFactory:
    """Encoded test images."""

    @staticmethod
    def png(size=(16, 16), color=(200, 30, 30)) -> bytes:
        buf = io.BytesIO()
        Image.new("RGB", size, color).save(buf, format="PNG")
        return buf.getvalue()

    @staticmethod
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    def bomb(self, width=30_000, height=30_000) -> bytes:
        """A tiny PNG whose header claims ``width x height`` pixels."""
        data = self.png((8, 8))
        i = data.index(b"IHDR")
        body = bytearray(data[i : i + 17])
        body[4:12] = struct.pack(">II", width, height)
        crc = struct.pack(">I", zlib.crc32(bytes(body)) & 0xFFFFFFFF)
        return data[:i] + bytes(body) + crc + data[i + 21 :]

    def truncated(self) -> bytes:
        """A PNG with a valid header whose chunks are cut short."""
        return self.png((32, 32), (10, 200, 10))[:-20]


@pytest.fixture
def images() -> ImageFactory:
    return ImageFactory()


def mm_row(
    index,
    *,
    question="What is shown?",
    hint="",
    options=("Red", "Blue", "", ""),
    answer="A",
    category="image_scene",
    image="",
    l2="coarse_perception",
) -> dict:
    opts = list(options) + [""] * (4 - len(options))
    return {
        "index": str(index),
        "question": question,
        "hint": hint,
        "A": opts[0],
        "B": opts[1],
        "C": opts[2],
        "D": opts[3],
        "answer": answer,
        "category": category,
        "image": image,
        "source": "test",
        "l2-category": l2,
        "comment": "",
        "split": "dev",
    }


@pytest.fixture(name="mm_row")
def mm_row_fixture():
    """``mm_row(index, **fields)``: one MMBench TSV row as a dict."""
    return mm_row


@pytest.fixture
def write_tsv():
    """``write_tsv(path, rows, columns=MMBENCH_COLUMNS, lineterminator="\\n")``; a row
    that is a list is written as is (to make malformed rows)."""

    def write(path: Path, rows, columns=MMBENCH_COLUMNS, lineterminator="\n") -> Path:
        with open(path, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, delimiter="\t", lineterminator=lineterminator)
            writer.writerow(columns)
            for row in rows:
                writer.writerow(row if isinstance(row, list) else [row[c] for c in columns])
        return path

    return write


@pytest.fixture
def edge_tsv(tmp_path, images, write_tsv) -> Path:
    """The MMBench TSV of every edge case; see ``test_datasets_mmbench`` for the
    expected outcome of each row."""
    red = images.b64(images.png((16, 16), (200, 30, 30)))
    blue = images.b64(images.png((24, 12), (30, 30, 200)))
    green = images.b64(images.png((20, 20), (30, 200, 30)))
    rows = [
        mm_row(1, image=red, options=("Red", "Blue", "Green", "Grey")),  # ok
        mm_row(
            2,
            hint="nan",
            image=blue,
            question="Which colour?\nPick one.",
            l2="finegrained_perception (instance-level)",
            category="attribute_recognition",
        ),  # ok, NaN hint, C/D empty
        mm_row(
            3, image="1", hint="Think first.", l2="logic_reasoning", category="future_prediction"
        ),  # ok, refers to 1
        mm_row(
            1_000_001, image="1", options=("Blue", "Green", "Grey", "Red"), answer="D"
        ),  # circular copy of 1
        mm_row(
            2_000_001, image="1", options=("Green", "Grey", "Red", "Blue"), answer="C"
        ),  # circular copy of 1
        mm_row(4, image="!!not base64!!" * 6),  # bad base64
        mm_row(5, image=images.b64(b"definitely not an image, just some bytes" * 2)),  # not an image
        mm_row(6, image=images.b64(images.truncated())),  # corrupt PNG
        mm_row(7, image="99"),  # dangling reference
        mm_row(8, image="4"),  # refers to a bad image
        mm_row(9, image=images.b64(images.bomb())),  # decompression bomb
        ["10", "too few fields"],  # malformed
        mm_row(11, image=green, l2="mystery_reasoning"),  # unknown category
        mm_row(12, image=green, question=""),  # empty question
        mm_row(
            13, image="12", l2="relation_reasoning", category="nature_relation"
        ),  # ok, image of a skipped row
        mm_row(14, image=green, l2="", category="ocr"),  # ok, l2 from leaf
        mm_row("abc", image=green),  # bad index
        mm_row(15, image=""),  # no image
    ]
    return write_tsv(tmp_path / "edge.tsv", rows)


def assert_accounted(prompt_set) -> None:
    """Every row read is a record, a skip, a collapsed copy or cut by the limit."""
    assert prompt_set.n_rows == (
        len(prompt_set.records) + prompt_set.n_skipped_rows + prompt_set.n_collapsed + prompt_set.n_limited
    )


@pytest.fixture
def accounted():
    return assert_accounted


def write_parquet(path: Path, columns: dict[str, str], rows: list[tuple]) -> Path:
    """Write ``rows`` to a parquet file with DuckDB; ``columns`` maps each column name
    to its DuckDB type, e.g. ``{"image": "STRUCT(bytes BLOB, path VARCHAR)"}``
    (a struct value is a dict, a list of structs a list of dicts)."""
    import duckdb

    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(":memory:")
    try:
        names = list(columns)
        con.execute("CREATE TABLE t (" + ", ".join(f'"{n}" {columns[n]}' for n in names) + ")")
        if rows:
            con.executemany(
                f"INSERT INTO t VALUES ({', '.join('?' for _ in names)})", [list(r) for r in rows]
            )
        con.execute(f"COPY t TO '{path}' (FORMAT parquet)")
    finally:
        con.close()
    return path


@pytest.fixture(name="write_parquet")
def write_parquet_fixture():
    """``write_parquet(path, {column: duckdb_type}, rows)``."""
    return write_parquet
