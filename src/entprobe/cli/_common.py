"""Click options that several commands declare alike, each declared once here.

A command passes its own help text where its use differs (what the store is for,
what goes into the output folder); flag, type, destination and default live here.
Nothing heavy is imported, so ``entprobe --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

__all__ = [
    "STORE_FILE",
    "early_fraction_option",
    "limit_option",
    "max_new_tokens_option",
    "n_boot_option",
    "out_dir_option",
    "progress_option",
    "seed_option",
    "store_option",
    "stores_option",
    "threads_option",
]

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

#: An existing results store (DuckDB file), as a :class:`~pathlib.Path`.
STORE_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def store_option(help: str, *, must_exist: bool = False) -> Decorator:
    """``--store FILE``: the one results store a command works on (required)."""
    return click.option(
        "--store", required=True, type=click.Path(exists=must_exist, dir_okay=False), help=help
    )


def stores_option(help: str, *, required: bool = False) -> Decorator:
    """``--store FILE``, repeatable, into ``stores``: existing results stores to read."""
    return click.option("--store", "stores", multiple=True, required=required, type=STORE_FILE, help=help)


def out_dir_option(
    help: str,
    *,
    dest: str = "out_dir",
    required: bool = False,
    default: str | Path | None = None,
    path_type: type | None = Path,
) -> Decorator:
    """``--out DIR``: the folder a command writes its files into (as ``path_type``)."""
    return click.option(
        "--out",
        dest,
        required=required,
        default=default,
        show_default=default is not None,
        type=click.Path(file_okay=False, path_type=path_type),
        help=help,
    )


def limit_option(help: str) -> Decorator:
    """``--limit N``: only the first N prompts (default: all of them)."""
    return click.option("--limit", type=click.IntRange(min=1), help=help)


def max_new_tokens_option(help: str) -> Decorator:
    """``--max-new-tokens``: the longest generated text response, 16 tokens by default."""
    return click.option(
        "--max-new-tokens", type=click.IntRange(min=1), default=16, show_default=True, help=help
    )


def progress_option(help: str | None = None) -> Decorator:
    """``--progress/--no-progress``: progress bars, on by default."""
    return click.option("--progress/--no-progress", default=True, show_default=True, help=help)


def early_fraction_option(help: str) -> Decorator:
    """``--early-fraction``: the share of depth whose layers count as early (asymmetry)."""
    return click.option(
        "--early-fraction",
        default=0.25,
        show_default=True,
        type=click.FloatRange(0, 1, min_open=True),
        help=help,
    )


def n_boot_option(help: str) -> Decorator:
    """``--n-boot``: bootstrap resamples of a confidence interval."""
    return click.option("--n-boot", default=2000, show_default=True, type=click.IntRange(min=1), help=help)


def seed_option(help: str) -> Decorator:
    """``--seed``: an integer seed, 0 by default."""
    return click.option("--seed", default=0, show_default=True, type=int, help=help)


def threads_option(help: str, *, default: int | None = None) -> Decorator:
    """``--threads N``: CPU threads for torch (None: left to the policy or to torch)."""
    return click.option("--threads", type=click.IntRange(min=1), default=default, help=help)
