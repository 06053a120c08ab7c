"""The shared click options of entprobe.cli._common: flag, destination, type and default."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from entprobe.cli._common import (
    early_fraction_option,
    limit_option,
    max_new_tokens_option,
    n_boot_option,
    out_dir_option,
    progress_option,
    seed_option,
    store_option,
    stores_option,
    threads_option,
)


def _run(decorators, args):
    """Invoke a command carrying ``decorators`` with ``args``; return (result, kwargs seen)."""
    seen = {}

    def body(**kwargs):
        seen.update(kwargs)

    for dec in reversed(decorators):
        body = dec(body)
    result = CliRunner().invoke(click.command()(body), args)
    return result, seen


def test_defaults_when_not_given():
    result, seen = _run(
        [
            early_fraction_option("e"),
            n_boot_option("b"),
            seed_option("s"),
            limit_option("l"),
            max_new_tokens_option("m"),
            progress_option(),
            threads_option("t"),
            out_dir_option("o"),
        ],
        [],
    )
    assert result.exit_code == 0, result.output
    assert seen == {
        "early_fraction": 0.25,
        "n_boot": 2000,
        "seed": 0,
        "limit": None,
        "max_new_tokens": 16,
        "progress": True,
        "threads": None,
        "out_dir": None,
    }


def test_given_values_and_types(tmp_path):
    store = tmp_path / "s.duckdb"
    store.write_bytes(b"")
    result, seen = _run(
        [
            stores_option("st", required=True),
            out_dir_option("o", required=True),
            threads_option("t", default=1),
        ],
        ["--store", str(store), "--store", str(store), "--out", str(tmp_path / "out"), "--threads", "3"],
    )
    assert result.exit_code == 0, result.output
    assert seen["stores"] == (store, store) and isinstance(seen["stores"][0], Path)
    assert seen["out_dir"] == tmp_path / "out" and isinstance(seen["out_dir"], Path)
    assert seen["threads"] == 3


def test_out_dir_destination_and_plain_strings(tmp_path):
    result, seen = _run([out_dir_option("o", dest="out", path_type=None)], ["--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert seen == {"out": str(tmp_path)}


@pytest.mark.parametrize(
    "decorator, args",
    [
        (early_fraction_option("e"), ["--early-fraction", "0"]),
        (n_boot_option("b"), ["--n-boot", "0"]),
        (limit_option("l"), ["--limit", "0"]),
        (max_new_tokens_option("m"), ["--max-new-tokens", "0"]),
        (threads_option("t"), ["--threads", "0"]),
    ],
)
def test_out_of_range_is_a_usage_error(decorator, args):
    result, _ = _run([decorator], args)
    assert result.exit_code == 2


def test_store_option_is_required_and_may_have_to_exist(tmp_path):
    result, _ = _run([store_option("st")], [])
    assert result.exit_code == 2 and "--store" in result.output
    missing = str(tmp_path / "none.duckdb")
    assert _run([store_option("st")], ["--store", missing])[1] == {"store": missing}
    result, _ = _run([store_option("st", must_exist=True)], ["--store", missing])
    assert result.exit_code == 2


def test_help_shows_the_given_text_and_defaults():
    cmd = click.command()(early_fraction_option("Share of depth.")(lambda early_fraction: None))
    out = CliRunner().invoke(cmd, ["--help"]).output
    assert "Share of depth." in out and "[default: 0.25" in out
