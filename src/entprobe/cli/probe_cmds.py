"""``entprobe probe`` and ``entprobe models``.

Only parsing here; the work is in :mod:`entprobe.pipeline` (imported inside the
commands so that ``entprobe --help`` stays fast).
"""

from __future__ import annotations

import json
from typing import Any

import click

from entprobe.cli._options import given, group_options
from entprobe.errors import EntprobeError

__all__ = ["fail_if_nothing_done", "models", "probe"]


def _fail(exc: EntprobeError) -> click.ClickException:
    return click.ClickException(str(exc))


@click.command()
@click.option("--model", required=True, help="Hub id or local folder of the model.")
@click.option(
    "--adapter",
    default=None,
    help="Adapter name (see `entprobe models`). [default: detected from the config]",
)
@click.option(
    "--text-prompts",
    multiple=True,
    metavar="SPEC",
    help="Text prompt set (repeatable), e.g. t2i-corebench:DIR.",
)
@click.option(
    "--image-prompts",
    multiple=True,
    metavar="SPEC",
    help="Image prompt set (repeatable), e.g. mmbench:FILE.tsv.",
)
@click.option(
    "--levels",
    default=None,
    metavar="LIST",
    help="Comma list of prompt, text-gen, image-gen. [default: every level the adapter supports]",
)
@click.option(
    "--store",
    required=True,
    type=click.Path(dir_okay=False),
    help="Results store (DuckDB file); rerunning resumes it.",
)
@group_options("probe")
@group_options("load")
@group_options("estimator")
@group_options("generation")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
@click.option(
    "--backend",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="local: this process; ray: one shard per Ray worker, merged into --store (pip install 'entprobe[ray]').",
)
@click.option(
    "--address", default=None, help="Ray cluster (HOST:PORT, ray://HOST:PORT, auto). [default: a local Ray]"
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Ray workers (model replicas, one shard each). [default: GPUs / --gpus-per-worker, or CPUs]",
)
@click.option(
    "--gpus-per-worker",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="GPUs of each Ray worker.",
)
def probe(**kwargs: Any) -> None:
    """Probe a model layer by layer on prompt sets into a results store.

    Per sample and layer: the prompt's matrix entropy (level `prompt`), and the
    conditional entropy proxy of generated text (`text-gen`) and of generated image
    tokens (`image-gen`). Everything is checked before the model is loaded. Running
    the same command again resumes: finished samples are skipped. Samples that
    fail are recorded with their reason and the run goes on. Every option is
    described in docs/options.md.

    Example:

    \b
        entprobe probe --model deepseek-community/Janus-Pro-1B \\
            --text-prompts sample:t2i --image-prompts sample:mmbench \\
            --levels prompt,text-gen,image-gen --store results.duckdb
    """
    from entprobe.pipeline.probe import load_and_probe

    groups = {group: given(kwargs, group) for group in ("probe", "load", "estimator", "generation")}
    options = {
        "options": groups["probe"],
        "load": groups["load"],
        "estimator": groups["estimator"],
        "generation": groups["generation"],
    }
    try:
        backend = kwargs.pop("backend")
        ray_options = {k: kwargs.pop(k) for k in ("address", "workers", "gpus_per_worker")}
        if backend == "ray":
            from entprobe.pipeline.ray_backend import probe_on_ray

            flat = {
                k: v
                for group in groups.values()
                for k, v in group.items()
                if group is not groups["estimator"]
            }
            flat.update({"estimator_seed" if k == "seed" else k: v for k, v in groups["estimator"].items()})
            summary = probe_on_ray(**ray_options, **kwargs, **flat)
        elif any(v for v in ray_options.values()):
            raise EntprobeError("--address, --workers and --gpus-per-worker need --backend ray")
        else:
            summary = load_and_probe(kwargs.pop("model"), kwargs.pop("store"), **kwargs, **options)
    except EntprobeError as exc:
        raise _fail(exc) from exc
    click.echo(summary.report(), err=True)
    fail_if_nothing_done([summary])


def fail_if_nothing_done(summaries: list[Any]) -> None:
    """Exit non-zero when every (sample, level) this session tried failed."""
    ok = sum(s.n_ok for s in summaries)
    failed = sum(s.n_failed for s in summaries)
    if failed and not ok:
        raise click.ClickException(
            f"all {failed} (sample, level) pair(s) of this session failed; nothing was computed "
            f"(the reasons are above and in the store's samples table)"
        )


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def models(as_json: bool) -> None:
    """List the model adapters and what each supports.

    Capabilities: text-prompt and image-prompt (prompt level), text-gen (text
    generation, from text or, with image-prompt, from image + question), image-gen.
    Batches: whether `probe --batch-size B` runs B samples in one forward pass
    ("no": the adapter takes them one at a time; results are the same).
    """
    from entprobe.models.registry import list_adapters

    entries = list_adapters()
    for e in entries:
        if e.get("upstream"):
            e["description"] = f"{e['description']} [{e['upstream']}]"
    if as_json:
        click.echo(json.dumps(entries, indent=2))
        return
    rows = [
        (
            e["name"],
            ", ".join(e["capabilities"]) or "-",
            ", ".join(e["model_types"]) or "-",
            "yes" if e.get("batched") else "no (one at a time)",
            e["description"],
        )
        for e in entries
    ]
    headers = ("adapter", "capabilities", "model types", "batches", "description")
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(4)]
    for row in [headers, *rows]:
        click.echo("  ".join(str(row[i]).ljust(widths[i]) for i in range(4)) + "  " + str(row[4]))
