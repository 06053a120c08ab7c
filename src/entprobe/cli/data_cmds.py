"""``entprobe datasets``: list the prompt-set formats, or inspect one prompt set."""

from __future__ import annotations

import textwrap
from collections import Counter
from collections.abc import Callable

import click

from entprobe.cli._common import limit_option
from entprobe.datasets import (
    DEFAULT_MAX_PIXELS,
    PromptSet,
    length_buckets,
    list_formats,
    load_prompts,
    tercile_thresholds,
)
from entprobe.errors import EntprobeError

__all__ = ["datasets"]


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def datasets(ctx: click.Context) -> None:
    """List prompt-set formats, or inspect one prompt set.

    A prompt set is named by a SPEC, FORMAT:PATH, with format options after a
    '?' (e.g. csv:prompts.csv?text=prompt&category=group). Without a command,
    list the formats with an example SPEC each.
    """
    if ctx.invoked_subcommand is None:
        click.echo(format_list())


def format_list() -> str:
    """The formats table printed by bare ``entprobe datasets``."""
    formats = list_formats()
    width = max(len(f.name) for f in formats) + 2
    lines = ["Prompt-set formats (inspect one with: entprobe datasets inspect SPEC)", ""]
    for f in formats:
        lines.append(f"  {f.name:<{width}}{f.example}")
        lines.extend(
            textwrap.wrap(
                f.description,
                79,
                initial_indent=" " * (width + 2),
                subsequent_indent=" " * (width + 2),
            )
        )
    lines += ["", "Format options follow the path: csv:prompts.csv?text=prompt&category=group"]
    return "\n".join(lines)


@datasets.command("inspect", context_settings={"show_default": True})
@click.argument("spec")
@limit_option("Keep only the first N usable records.")
@click.option(
    "--dedup/--no-dedup",
    default=True,
    help="Collapse MMBench circular-evaluation copies to one prompt per question.",
)
@click.option(
    "--max-pixels",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_PIXELS,
    help="Skip images with more pixels (decompression-bomb guard).",
)
@click.option(
    "--tokenizer",
    metavar="PATH",
    help="Count tokens with this transformers tokenizer (folder or hub name) "
    "instead of the built-in word/punctuation count.",
)
@click.option(
    "--thresholds",
    metavar="T1,T2",
    help="Fixed length-bucket thresholds in tokens: short <= T1 < middle <= T2 < long. "
    "Default: terciles of the prompt set.",
)
@click.option(
    "--show-skipped",
    type=click.IntRange(min=0),
    default=20,
    help="List at most N skipped rows (0: all of them).",
)
@click.option(
    "--allow-outside-paths", is_flag=True, help="Let image paths in a data file point outside its folder."
)
def inspect(
    spec: str,
    limit: int | None,
    dedup: bool,
    max_pixels: int,
    tokenizer: str | None,
    thresholds: str | None,
    show_skipped: int,
    allow_outside_paths: bool,
) -> None:
    """Counts per category, subcategory and length bucket; skipped rows.

    Loads the prompt set SPEC and prints its records per category, subcategory
    and length bucket, then every row that was skipped, with its reason.

    Token counts for the length buckets come from a simple word/punctuation
    count (a run of letters or digits is one token, every other non-space
    character is one, each CJK character is one) unless --tokenizer is given.
    """
    fixed = _parse_thresholds(thresholds)
    try:
        prompts = load_prompts(
            spec, limit=limit, dedup=dedup, max_pixels=max_pixels, allow_outside_paths=allow_outside_paths
        )
    except EntprobeError as err:
        raise click.ClickException(str(err)) from None
    count, how = (
        (_tokenizer_count(tokenizer), f"tokenizer {tokenizer}")
        if tokenizer
        else (None, "words and punctuation")
    )
    click.echo(
        inspect_report(
            prompts,
            count=count,
            how=how,
            thresholds=fixed,
            max_skipped=None if show_skipped == 0 else show_skipped,
        )
    )


def inspect_report(
    prompts: PromptSet,
    *,
    count: Callable[[str], int] | None = None,
    how: str = "words and punctuation",
    thresholds: tuple[int, int] | None = None,
    max_skipped: int | None = 20,
) -> str:
    """The text ``entprobe datasets inspect`` prints."""
    lines = [f"{prompts.spec}  (dataset {prompts.name})", prompts.summary()]
    if prompts.records:
        lines += _record_tables(prompts, count, how, thresholds)
    skipped = prompts.skipped_lines(max_skipped)
    lines += ["", "skipped rows:", *skipped] if skipped else ["", "skipped rows: none"]
    return "\n".join(lines)


def _record_tables(
    prompts: PromptSet,
    count: Callable[[str], int] | None,
    how: str,
    thresholds: tuple[int, int] | None,
) -> list[str]:
    lines = ["modality: " + ", ".join(f"{k} {n}" for k, n in prompts.counts("modality").items())]
    lines += ["", *_table("category", prompts.counts("category"))]
    lines += ["", *_table("subcategory", prompts.counts("subcategory"))]

    tokens = prompts.token_counts(count)
    cuts = thresholds or tercile_thresholds(tokens)
    buckets = length_buckets(tokens, cuts)
    per_bucket = Counter(buckets.values())
    source = "fixed" if thresholds else "terciles"
    lines += [
        "",
        f"length bucket (tokens: {how}; {source}: short <= {cuts[0]} < middle <= {cuts[1]} < long)",
    ]
    for bucket in ("short", "middle", "long"):
        sizes = [tokens[i] for i, b in buckets.items() if b == bucket]
        span = f"{min(sizes)}-{max(sizes)} tokens" if sizes else "-"
        lines.append(f"  {bucket:<12}{per_bucket.get(bucket, 0):>6}   {span}")
    chars = [r.n_chars for r in prompts.records]
    lines.append(
        f"characters per prompt: min {min(chars)}, median {sorted(chars)[len(chars) // 2]}, max {max(chars)}"
    )
    return lines


def _table(title: str, counts: dict[str, int]) -> list[str]:
    width = max(12, *(len(k) for k in counts)) + 2
    return [f"{title:<{width + 2}}{'records':>6}"] + [f"  {key:<{width}}{n:>6}" for key, n in counts.items()]


def _parse_thresholds(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        t1, t2 = (int(part) for part in text.split(","))
    except ValueError:
        raise click.BadParameter(
            f"expected two integers T1,T2, got {text!r}", param_hint="--thresholds"
        ) from None
    if not 0 <= t1 <= t2:
        raise click.BadParameter(f"need 0 <= T1 <= T2, got {text!r}", param_hint="--thresholds")
    return t1, t2


def _tokenizer_count(path: str) -> Callable[[str], int]:
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise click.ClickException(
            "--tokenizer needs transformers: pip install 'transformers>=5.0'"
        ) from None
    try:
        tok = AutoTokenizer.from_pretrained(path)
    except Exception as err:  # transformers raises OSError, ValueError, ... for bad paths
        raise click.ClickException(f"cannot load a tokenizer from {path!r}: {err}") from None
    return lambda text: len(tok(text, add_special_tokens=False)["input_ids"])
