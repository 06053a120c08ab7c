"""``entprobe demo``: the whole pipeline on the embedded default."""

from __future__ import annotations

import click

from entprobe.cli._common import limit_option, max_new_tokens_option, out_dir_option, seed_option

_NOTICE = (
    "NOTE: these are tiny, randomly initialised models built offline. They exercise every\n"
    "code path (capture, generation, teacher-forced states, estimators, store, report);\n"
    "their numbers mean nothing. Real checkpoints give meaningful numbers, e.g.:\n\n"
)


@click.command(context_settings={"show_default": True})
@out_dir_option("Folder for the models, store, images and report.", default="demo-output", path_type=None)
@limit_option("Probe only the first N prompts of each bundled set.")
@max_new_tokens_option("Length of the generated text responses.")
@seed_option("Seed of the tiny models and of generation.")
@click.option("--no-report", is_flag=True, help="Skip writing the HTML report.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bars.")
def demo(
    out_dir: str, limit: int | None, max_new_tokens: int, seed: int, no_report: bool, no_progress: bool
) -> None:
    """Run the whole pipeline on tiny built-in models and the bundled sample prompts.

    Builds tiny, seeded, randomly initialised Janus and Emu3 models offline, probes
    them at every level (prompt, text-gen, image-gen) on `sample:t2i` and
    `sample:mmbench`, prints a summary table and writes the HTML report. Running it
    again resumes.
    """
    import pandas as pd

    from ..pipeline.demo import REAL_CHECKPOINT_EXAMPLE, run_demo

    click.echo(_NOTICE.replace("\n\n", "\n").rstrip())
    result = run_demo(
        out_dir,
        limit=limit,
        max_new_tokens=max_new_tokens,
        seed=seed,
        report=not no_report,
        progress=not no_progress,
        log=click.echo,
    )
    click.echo("\nSummary (bits; mean over samples at the first, middle and last layer):")
    with pd.option_context(
        "display.width", 120, "display.max_columns", 20, "display.float_format", "{:.3f}".format
    ):
        click.echo(result.summary.to_string(index=False))
    click.echo(f"\nresults store: {result.store}")
    if result.report is not None:
        click.echo(f"report:        {result.report}")
    click.echo("\n" + _NOTICE + REAL_CHECKPOINT_EXAMPLE)
