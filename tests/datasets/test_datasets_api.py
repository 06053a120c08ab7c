"""Public API: records, length buckets, SPEC parsing, the bundled samples, the CLI
and the sample generator script."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import types
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

import entprobe.datasets as ds
from entprobe.datasets import (
    PromptRecord,
    PromptSet,
    SkippedRow,
    count_tokens,
    length_buckets,
    list_formats,
    load_prompts,
    parse_spec,
)
from entprobe.errors import DatasetError, ProbeInputError

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[2]


def test_public_names():
    for name in (
        "PromptRecord",
        "PromptSet",
        "SkippedRow",
        "load_prompts",
        "length_buckets",
        "list_formats",
    ):
        assert name in ds.__all__ and hasattr(ds, name)


# ------------------------------------------------------------------ records


def test_record_defaults_and_validation():
    record = PromptRecord(id="x", dataset="jsonl", modality="text", text="héllo")
    assert record.n_chars == 5 and record.meta == {} and record.row is None
    assert record == PromptRecord(id="x", dataset="jsonl", modality="text", text="héllo")
    assert hash(record) == hash(PromptRecord(id="x", dataset="jsonl", modality="text", text="héllo"))
    with pytest.raises(DatasetError, match="modality must be one of"):
        PromptRecord(id="x", dataset="jsonl", modality="video", text="")


def test_prompt_set_report_lists_skips():
    ps = PromptSet(
        name="demo",
        spec="jsonl:x",
        n_rows=3,
        sources=["x"],
        records=[PromptRecord(id="a", dataset="demo", modality="text", text="t")],
        skipped=[
            SkippedRow("x", 2, "empty prompt", "empty-prompt", "b"),
            SkippedRow("x", 3, "line is not valid JSON", "malformed"),
        ],
    )
    report = ps.report(max_skipped=1)
    assert report.splitlines()[0] == "demo: 1 records from 3 rows in 1 file(s); skipped 2 row(s)"
    assert "1 empty-prompt, 1 malformed" in report
    assert "x:2 [b]: empty prompt" in report and "... and 1 more" in report


# ------------------------------------------------------------------ buckets


def test_count_tokens():
    assert count_tokens("A red cube, left of 2 spheres.") == 9
    assert count_tokens("") == 0
    assert count_tokens("don't") == 3
    assert count_tokens("猫が好き") == 4


def test_terciles_split_distinct_lengths_evenly():
    lengths = {f"p{i}": n for i, n in enumerate([5, 1, 9, 3, 12, 7, 2, 8, 4])}
    buckets = length_buckets(lengths)
    assert Counter(buckets.values()) == {"short": 3, "middle": 3, "long": 3}
    assert {k for k, b in buckets.items() if b == "short"} == {"p1", "p6", "p3"}  # 1, 2, 3
    assert {k for k, b in buckets.items() if b == "long"} == {"p7", "p2", "p4"}  # 8, 9, 12


def test_ties_share_a_bucket_and_fixed_thresholds():
    assert set(length_buckets({"a": 4, "b": 4, "c": 4}).values()) == {"short"}
    assert length_buckets({"a": 1, "b": 2}) == {"a": "short", "b": "middle"}
    fixed = length_buckets({"a": 10, "b": 11, "c": 50, "d": 51}, thresholds=(10, 50))
    assert fixed == {"a": "short", "b": "middle", "c": "middle", "d": "long"}
    assert length_buckets({}) == {}


@pytest.mark.parametrize(
    ("lengths", "thresholds", "match"),
    [
        ({"a": -1}, None, r"lengths\['a'\] must be a non-negative integer"),
        ({"a": 2.5}, None, "non-negative integer"),
        ({"a": 1}, (5, 2), "0 <= t1 <= t2"),
        ({"a": 1}, (1,), "two integers"),
        ([1, 2], None, "mapping"),
    ],
)
def test_length_bucket_errors(lengths, thresholds, match):
    with pytest.raises(ProbeInputError, match=match):
        length_buckets(lengths, thresholds)


def test_numpy_integers_are_lengths():
    np = pytest.importorskip("numpy")
    assert length_buckets({"a": np.int64(3)}, thresholds=(3, 4)) == {"a": "short"}


# ------------------------------------------------------------------ SPEC strings


def test_parse_spec_options_and_paths(tmp_path):
    assert parse_spec("csv:a.csv?text=prompt&category=my%20group") == (
        "csv",
        "a.csv",
        {"text": "prompt", "category": "my group"},
    )
    assert parse_spec("MMBench:  x.tsv ") == ("mmbench", "x.tsv", {})
    odd = tmp_path / "what?text=x"
    odd.write_text("text\nhi\n")
    assert parse_spec(f"csv:{odd}") == ("csv", str(odd), {})


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("prompts.jsonl", "has no format; write FORMAT:PATH"),
        ("foo:bar", "unknown prompt-set format 'foo'.*t2i-corebench"),
        ("mmbench:", "names no path"),
        ("mmbench:/no/such/file.tsv", r"mmbench: /no/such/file.tsv does not exist"),
        ("sample:nope", "unknown sample set 'nope'.*sample:t2i"),
        (f"csv:{FIXTURES / 'prompts.csv'}?bogus=1", "unknown option.*bogus.*known: text"),
        (f"mmbench:{FIXTURES / 'prompts.csv'}?text=x", "unknown option.*text.*known: split"),
    ],
)
def test_bad_specs_raise_naming_the_problem(spec, match):
    with pytest.raises(DatasetError, match=match):
        load_prompts(spec)


@pytest.mark.parametrize("kwargs", [{"limit": 0}, {"max_pixels": -5}, {"limit": True}])
def test_bad_arguments(kwargs):
    with pytest.raises(ProbeInputError):
        load_prompts("sample:t2i", **kwargs)


def test_limit_is_counted(accounted):
    ps = load_prompts("sample:t2i", limit=5)
    accounted(ps)
    assert len(ps) == 5 and ps.n_limited == 31
    assert "31 records dropped by the limit" in ps.report()


def test_list_formats():
    formats = list_formats()
    assert [f.name for f in formats] == [
        "t2i-corebench",
        "mmbench",
        "realunify",
        "jsonl",
        "csv",
        "images",
        "sample",
    ]
    for name, example, description in formats:
        assert example.startswith(f"{name}:") and description


# ------------------------------------------------------------------ bundled samples


def test_sample_t2i_covers_all_dimensions(accounted):
    ps = load_prompts("sample:t2i")
    accounted(ps)
    assert ps.skipped == [] and ps.name == "sample-t2i"
    per_dim = Counter(r.subcategory for r in ps.records)
    assert set(per_dim) == set(ds.T2I_DIMENSIONS) and min(per_dim.values()) >= 3
    assert ps.counts("category") == {
        "Composition": 12,
        "Deductive": 12,
        "Inductive": 6,
        "Abductive": 6,
    }
    lengths = [r.n_chars for r in ps.records]
    assert min(lengths) < 100 and 1300 <= max(lengths) <= 1600
    assert Counter(ps.length_buckets().values()) == {"short": 12, "middle": 12, "long": 12}
    assert all(r.meta["checklist"] for r in ps.records)


def test_sample_mmbench_covers_six_image_types(accounted):
    ps = load_prompts("sample:mmbench")
    accounted(ps)
    assert ps.skipped == [] and ps.n_collapsed >= 1
    per_type = Counter(r.category for r in ps.records)
    assert set(per_type) == set(ds.MMBENCH_L2_CATEGORIES.values()) and min(per_type.values()) >= 4
    assert any(r.meta["image_from_index"] is not None for r in ps.records)
    assert any(r.meta["hint"] is None for r in ps.records)
    assert any(r.meta["hint"] for r in ps.records)
    for record in ps.records:
        image = record.load_image()
        assert 64 <= image.width <= 128 and 64 <= image.height <= 128
        assert record.meta["answer"] in record.meta["options"]
    assert len(load_prompts("sample:mmbench", dedup=False)) == len(ps) + ps.n_collapsed


def test_sample_files_match_the_generator(tmp_path):
    script = REPO / "scripts" / "make_sample_sets.py"
    subprocess.run([sys.executable, str(script), "--out", str(tmp_path)], check=True, capture_output=True)
    shipped = ds._bundled.samples_dir()
    for made in sorted((tmp_path / "t2i-corebench").iterdir()):
        assert json.loads(made.read_text()) == json.loads((shipped / "t2i-corebench" / made.name).read_text())
    # compare the TSV cell by cell, images by pixels (PNG bytes may vary with zlib)
    new, old = (_tsv_rows(p / "mmbench-sample.tsv") for p in (tmp_path, shipped))
    assert len(new) == len(old)
    for a, b in zip(new, old, strict=True):
        assert {k: v for k, v in a.items() if k != "image"} == {k: v for k, v in b.items() if k != "image"}
    made = load_prompts(f"mmbench:{tmp_path / 'mmbench-sample.tsv'}").records
    for x, y in zip(made, load_prompts("sample:mmbench").records, strict=True):
        assert x.load_image().tobytes() == y.load_image().tobytes()


def _tsv_rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


# ------------------------------------------------------------------ CLI


def _cli(*args: str):
    from entprobe.cli import main

    return CliRunner().invoke(main, ["datasets", *args])


def test_cli_lists_formats():
    result = _cli()
    assert result.exit_code == 0, result.output
    for f in list_formats():
        assert f.name in result.output and f.example in result.output


def test_cli_inspect_sample_t2i():
    result = _cli("inspect", "sample:t2i")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "36 records from 36 rows in 12 file(s); nothing skipped" in out
    assert "Composition       12" in out and "R-RR               3" in out
    assert "terciles" in out and "short           12" in out
    assert "skipped rows: none" in out


def test_cli_inspect_lists_skipped_rows(edge_tsv):
    result = _cli("inspect", f"mmbench:{edge_tsv}", "--thresholds", "5,10", "--show-skipped", "2")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "skipped 11 row(s)" in out and "fixed: short <= 5 < middle <= 10 < long" in out
    assert "skipped by kind: 3 bad-image, 2 dangling-reference" in out
    assert "not valid base64" in out and "... and 9 more" in out
    no_dedup = _cli("inspect", f"mmbench:{edge_tsv}", "--no-dedup")
    assert "7 records from 18 rows" in no_dedup.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["inspect", "nope:x"], "unknown prompt-set format"),
        (["inspect", "sample:t2i", "--thresholds", "9"], "expected two integers"),
        (["inspect", "sample:t2i", "--thresholds", "9,2"], "0 <= T1 <= T2"),
    ],
)
def test_cli_errors(args, message):
    result = _cli(*args)
    assert result.exit_code != 0 and message in result.output


class _FakeAutoTokenizer:
    """Stands in for transformers.AutoTokenizer: one token per character."""

    @staticmethod
    def from_pretrained(path):
        if "missing" in str(path):
            raise OSError(f"no tokenizer files in {path}")
        return lambda text, add_special_tokens=True: {"input_ids": list(text)}


def test_cli_tokenizer(monkeypatch):
    fake = types.ModuleType("transformers")
    fake.AutoTokenizer = _FakeAutoTokenizer
    monkeypatch.setitem(sys.modules, "transformers", fake)
    result = _cli("inspect", "sample:t2i", "--tokenizer", "tok-dir")
    assert result.exit_code == 0, result.output
    assert "tokens: tokenizer tok-dir" in result.output
    assert "1475 tokens" in result.output  # one per character: the longest prompt
    failed = _cli("inspect", "sample:t2i", "--tokenizer", "missing-dir")
    assert failed.exit_code == 1 and "cannot load a tokenizer from 'missing-dir'" in failed.output


@given(st.dictionaries(st.text(min_size=1, max_size=4), st.integers(0, 500), max_size=40))
def test_buckets_never_rank_a_longer_prompt_shorter(lengths):
    buckets = length_buckets(lengths)
    order = {"short": 0, "middle": 1, "long": 2}
    for a in lengths:
        for b in lengths:
            if lengths[a] <= lengths[b]:
                assert order[buckets[a]] <= order[buckets[b]]
    if len(set(lengths.values())) == len(lengths) and lengths:
        counts = Counter(buckets.values())
        assert max(counts.values()) - min(counts.get(b, 0) for b in order) <= 1
