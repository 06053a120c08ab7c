"""``entprobe merge``, ``entprobe export`` and ``entprobe reestimate``: work on
results stores (and saved Grams) without the model."""

from __future__ import annotations

from typing import Any

import click

from entprobe.cli._common import out_dir_option, progress_option, store_option
from entprobe.cli._options import given, group_options
from entprobe.cli.probe_cmds import fail_if_nothing_done
from entprobe.errors import EntprobeError

__all__ = ["export", "merge", "reestimate", "status"]


@click.command()
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--out",
    "target",
    required=True,
    type=click.Path(dir_okay=False),
    help="Store to merge into (created if missing; may already hold rows).",
)
@click.option(
    "--on-conflict",
    type=click.Choice(["error", "keep"]),
    default="error",
    show_default=True,
    help="A sample that is ok in both stores with different values: stop with an "
    "error (nothing merged from that source), or keep the target's row.",
)
def merge(sources: tuple[str, ...], target: str, on_conflict: str) -> None:
    """Combine the stores of sharded runs into one.

    Rows the target lacks are copied, failed rows are replaced by ok ones, identical
    rows are skipped. Example:

    \b
        entprobe merge --out results.duckdb shard-*.duckdb
    """
    from entprobe.store import ResultStore

    try:
        with ResultStore(target) as store:
            summary = store.merge_from(sources, on_conflict=on_conflict)
    except EntprobeError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(summary.report(), err=True)


@click.command()
@store_option("Results store.", must_exist=True)
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv"]), default="parquet", show_default=True)
@out_dir_option(
    "Folder for runs.FMT, samples.FMT and layer_metrics.FMT.", dest="out", required=True, path_type=None
)
def export(store: str, fmt: str, out: str) -> None:
    """Export a results store to Parquet or CSV (one file per table)."""
    from entprobe.store import ResultStore

    try:
        with ResultStore(store, read_only=True) as results:
            paths = results.export(out, fmt)
    except EntprobeError as exc:
        raise click.ClickException(str(exc)) from exc
    for path in paths:
        click.echo(str(path))


@click.command()
@click.option(
    "--grams",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="The --save-grams folder of a probe run.",
)
@store_option("Store to write into (a new run per changed configuration; resumable).")
@group_options("estimator", default_note="the original run's")
@click.option("--device", default="cpu", show_default=True, help="Where to estimate: cpu, cuda ...")
@group_options("probe", only=["retry_failed"])
@progress_option()
def reestimate(grams: str, store: str, device: str, progress: bool, **kwargs: Any) -> None:
    """Recompute metrics from saved Gram matrices, without the model.

    Options left out keep the values of the run that saved the Grams, so with none
    the original numbers are reproduced (under the original run id). Example, a
    sweep of alpha:

    \b
        for a in 0.5 2 4; do entprobe reestimate --grams grams/ --store sweep.duckdb --alpha $a; done
    """
    from entprobe.pipeline.reestimation import reestimate as run_reestimate
    from entprobe.store import ResultStore

    overrides = given(kwargs, "estimator")
    retry_failed = bool(given(kwargs, "probe").get("retry_failed", False))
    try:
        with ResultStore(store) as results:
            summaries = run_reestimate(
                grams,
                results,
                estimator=overrides,
                device=device,
                retry_failed=retry_failed,
                progress=progress,
            )
        widths = None
        if summaries:
            from entprobe.pipeline.estimate import width_report

            with ResultStore(store, read_only=True) as reader:
                widths = width_report(reader, [sm.run_id for sm in summaries])
    except EntprobeError as exc:
        raise click.ClickException(str(exc)) from exc
    for summary in summaries:
        click.echo(summary.report(), err=True)
    if widths:
        click.echo(widths, err=True)
    fail_if_nothing_done(summaries)


@click.command()
@store_option("Results store.")
def status(store: str) -> None:
    """Show the progress of the runs in a store, also while a probe writes to it.

    Reads a copy taken in a moment, so the running probe is neither stopped nor
    slowed. `entprobe report --store S` likewise builds a partial report meanwhile.
    """
    from entprobe.store import store_status

    try:
        found = store_status(store)
    except EntprobeError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(found.report())
