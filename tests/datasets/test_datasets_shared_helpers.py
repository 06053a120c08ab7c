"""Helpers the loaders share: a delimited row as a dict, the MMBench column check, and
base64 image payloads read on opening."""

from __future__ import annotations

from pathlib import Path

import pytest

from entprobe.datasets._images import Base64Image
from entprobe.datasets._mmbench import l2_column
from entprobe.datasets._rows import DelimitedRow, RowProblem
from entprobe.errors import DatasetError


def test_delimited_row_as_dict():
    row = DelimitedRow(line=2, end_line=2, offset=10, fields=["a", "b"])
    assert row.as_dict(["x", "y"]) == {"x": "a", "y": "b"}


def test_delimited_row_with_a_field_count_other_than_the_header():
    row = DelimitedRow(line=2, end_line=2, offset=10, fields=["a"])
    with pytest.raises(RowProblem, match="row has 1 fields; the header has 2"):
        row.as_dict(["x", "y"])


def test_delimited_row_raises_its_own_problem():
    problem = RowProblem("unbalanced quote")
    row = DelimitedRow(line=2, end_line=3, offset=10, fields=None, problem=problem)
    with pytest.raises(RowProblem) as caught:
        row.as_dict(["x"])
    assert caught.value is problem


@pytest.mark.parametrize(
    "lower, expected",
    [
        ({"index": 0, "question": 1, "image": 2, "l2-category": 3, "category": 4}, 3),
        ({"index": 0, "question": 1, "image": 2, "l2_category": 5}, 5),
        ({"index": "i", "question": "q", "image": "m", "category": "c"}, None),
    ],
)
def test_l2_column_found(lower, expected):
    assert l2_column(lower, list(lower), Path("t.tsv"), "an MMBench TSV") == expected


def test_l2_column_names_every_missing_column():
    lower = {"question": 1}
    with pytest.raises(DatasetError) as caught:
        l2_column(lower, ["Question"], Path("t.tsv"), "an MMBench TSV")
    assert str(caught.value) == (
        "t.tsv is not an MMBench TSV: missing column(s) index, image, l2-category or category; found Question"
    )


def test_bad_base64_on_opening_is_a_dataset_error():
    with pytest.raises(DatasetError, match="not valid base64"):
        Base64Image("not base64 !!").open()
