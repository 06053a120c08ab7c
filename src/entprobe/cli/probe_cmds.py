"""``entprobe probe`` and ``entprobe models``.

Only parsing here; the work is in :mod:`entprobe.pipeline` (imported inside the
commands so that ``entprobe --help`` stays fast).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from entprobe.errors import EntprobeError

__all__ = ["estimator_options", "models", "probe"]


def _sigma(value: str | None) -> str | float | None:
    if value is None or value.strip().lower() == "median":
        return None if value is None else "median"
    try:
        return float(value)
    except ValueError:
        raise click.BadParameter(f"expected 'median' or a positive number; got {value!r}") from None


_UNSET = object()


def _pca_dim(value: str | None) -> Any:
    if value is None:
        return _UNSET
    if value.strip().lower() == "none":
        return None
    try:
        out = int(value)
    except ValueError:
        out = 0
    if out < 1:
        raise click.BadParameter(
            f"expected a positive number of components, or 'none' for no PCA; got {value!r}",
            param_hint="'--pca-dim'",
        )
    return out


def _base(value: str | None) -> str | float | None:
    if value is None:
        return None
    if value.strip().lower() == "e":
        return "e"
    try:
        return float(value)
    except ValueError:
        raise click.BadParameter(f"expected a number or 'e'; got {value!r}") from None


def estimator_options(*, inherit: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The estimator options of ``probe`` (defaults shown) and ``reestimate``
    (``inherit=True``: unset options keep the original run's values)."""

    def note(default: str) -> str:
        return "[default: the original run's]" if inherit else f"[default: {default}]"

    specs = [
        click.option("--alpha", type=float, default=None, help=f"Renyi order alpha > 0. {note('1.01')}"),
        click.option(
            "--kernel",
            default=None,
            help=f"Kernel of the prompt-level entropy: gaussian or linear. {note('gaussian')}",
        ),
        click.option(
            "--sigma", default=None, help=f"Kernel bandwidth: 'median' or a number. {note('median')}"
        ),
        click.option(
            "--sigma-scale", type=float, default=None, help=f"Factor on the median bandwidth. {note('1.0')}"
        ),
        click.option(
            "--pca-dim",
            default=None,
            help=f"PCA components kept (a positive integer), or 'none' for no PCA. {note('64')}",
        ),
        click.option("--eps", type=float, default=None, help=f"Ridge on the kernel diagonal. {note('1e-6')}"),
        click.option("--base", default=None, help=f"Logarithm base: a number or 'e'. {note('2 (bits)')}"),
        click.option(
            "--normalization",
            default=None,
            help=f"Conditional-entropy normalization: trace, plain or subsample. {note('trace')}",
        ),
        click.option(
            "--n-draws",
            type=click.IntRange(min=1),
            default=None,
            help=f"Draws of the 'subsample' normalization. {note('10')}",
        ),
        click.option(
            "--estimator-seed", type=int, default=None, help=f"Seed of the 'subsample' draws. {note('0')}"
        ),
        click.option(
            "--prompt-bandwidth",
            type=click.Choice(["joint", "own"]),
            default=None,
            help="Bandwidth of H(prompt) inside the proxy: the median distance of the "
            "joint prompt+response set, shared with H(prompt+response) (joint), or "
            f"of the prompt's own tokens (own; needs --sigma median). {note('joint')}",
        ),
        click.option(
            "--spectrum",
            default=None,
            metavar="exact|float32|topk:K",
            help="exact: all eigenvalues in float64; float32: all eigenvalues in float32 "
            "(faster, measured error up to ~2e-6 bits, no bound); topk:K: K Ritz pairs and "
            "certified lower/upper bounds per layer (stored; the value is the interval's "
            f"midpoint). {note('exact')}",
        ),
    ]

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        for spec in reversed(specs):
            func = spec(func)
        return func

    return decorate


def estimator_overrides(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Pop the estimator options from a command's kwargs: ``{field: value}`` for the
    options given only (``--pca-dim none`` gives ``pca_dim=None``)."""
    given = {
        "alpha": kwargs.pop("alpha"),
        "kernel": kwargs.pop("kernel"),
        "sigma": _sigma(kwargs.pop("sigma")),
        "sigma_scale": kwargs.pop("sigma_scale"),
        "pca_dim": _pca_dim(kwargs.pop("pca_dim")),
        "eps": kwargs.pop("eps"),
        "base": _base(kwargs.pop("base")),
        "normalization": kwargs.pop("normalization"),
        "n_draws": kwargs.pop("n_draws"),
        "seed": kwargs.pop("estimator_seed"),
        "prompt_sigma": kwargs.pop("prompt_bandwidth"),
        "spectrum": kwargs.pop("spectrum"),
    }
    out = {k: v for k, v in given.items() if v is not None}
    if given["pca_dim"] is not _UNSET:
        out["pca_dim"] = given["pca_dim"]
    else:
        out.pop("pca_dim", None)
    return out


def _fail(exc: EntprobeError) -> click.ClickException:
    return click.ClickException(str(exc))


@click.command(context_settings={"show_default": True})
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
@click.option("--limit", type=click.IntRange(min=1), default=None, help="First N prompts of each prompt set.")
@click.option(
    "--shard",
    default=None,
    metavar="K/N",
    help="Process shard K of N (1-based), split by a stable hash of dataset and sample id.",
)
@click.option("--device", default="cpu", help="cpu, cuda, cuda:1 ...")
@click.option("--dtype", type=click.Choice(["auto", "float32", "float16", "bfloat16"]), default="auto")
@click.option(
    "--trust-remote-code",
    is_flag=True,
    help="Allow the model's own code (passed to loading only when given).",
)
@click.option("--revision", default=None, help="Hub revision (branch, tag or commit).")
@click.option(
    "--include-special", is_flag=True, help="Keep special and chat-template tokens in the prompt's states."
)
@click.option(
    "--save-images",
    type=click.Path(file_okay=False),
    default=None,
    help="Save generated images as PNG here (path in samples.image_path).",
)
@click.option(
    "--save-grams",
    type=click.Path(file_okay=False),
    default=None,
    help="Save per-layer Gram matrices here, for `entprobe reestimate`.",
)
@click.option("--retry-failed", is_flag=True, help="Recompute samples recorded as failed.")
@click.option(
    "--last-layer",
    type=click.Choice(["raw", "normed"]),
    default="raw",
    help="The last layer's states: before the final norm (raw), or after it, as "
    "transformers' output_hidden_states gives (normed). Part of the run id when normed.",
)
@click.option(
    "--allow-outside-paths",
    is_flag=True,
    help="Let image paths in a data file (images: CSV, RealUnify JSON) point outside its folder.",
)
@click.option(
    "--length-thresholds",
    default=None,
    metavar="A,B",
    help="Token counts splitting short/middle/long text prompts. [default: the set's terciles]",
)
@click.option(
    "--upstream-src",
    type=click.Path(file_okay=False),
    default=None,
    help="Checkout of the family's upstream code (families outside transformers, see "
    "`entprobe models`). [default: $ENTPROBE_<FAMILY>_SRC, else the installed package]",
)
@click.option(
    "--image-response-step",
    default="final",
    metavar="final|all|K[,K...]",
    help="Step-wise image generators: besides the default response (one teacher-forced pass "
    "of the clean final response), also probe the conditional branch at these "
    "denoising steps (1-based), stored per step.",
)
@estimator_options(inherit=False)
@click.option(
    "--max-new-tokens", type=click.IntRange(min=1), default=64, help="Longest text response, in tokens."
)
@click.option("--do-sample/--greedy", default=False, help="Sample the text response (default: greedy).")
@click.option(
    "--temperature",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    help="Text sampling temperature.",
)
@click.option(
    "--top-p", type=click.FloatRange(0, 1, min_open=True), default=1.0, help="Nucleus sampling mass (text)."
)
@click.option(
    "--image-do-sample/--image-greedy", default=True, help="Sample the image tokens (default: sample)."
)
@click.option(
    "--image-temperature",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    help="Image-token sampling temperature.",
)
@click.option(
    "--guidance-scale",
    type=click.FloatRange(min=0),
    default=5.0,
    help="Classifier-free guidance of image generation.",
)
@click.option(
    "--image-steps",
    type=click.IntRange(min=1),
    default=None,
    help="Step-wise image generators that take it: number of denoising steps. [default: the family's]",
)
@click.option(
    "--image-size",
    type=click.IntRange(min=1),
    default=None,
    metavar="PX",
    help="Step-wise image generators that take it: side of the generated image in pixels. "
    "[default: the family's]",
)
@click.option("--seed", type=int, default=0, help="Generation seed.")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=1,
    help="Samples of one modality and level run through the model together (left-padded "
    "generation, masked padding; same numbers as 1, see README).",
)
@click.option(
    "--overlap/--no-overlap",
    default=True,
    help="Estimate the previous batch on a worker thread while the model runs the next.",
)
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
@click.option(
    "--backend",
    type=click.Choice(["local", "ray"]),
    default="local",
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
@click.option("--gpus-per-worker", type=click.FloatRange(min=0), default=0.0, help="GPUs of each Ray worker.")
def probe(**kwargs: Any) -> None:
    """Probe a model layer by layer on prompt sets into a results store.

    Per sample and layer: the prompt's matrix entropy (level `prompt`), and the
    conditional entropy proxy of generated text (`text-gen`) and of generated image
    tokens (`image-gen`). Everything is checked before the model is loaded. Running
    the same command again resumes: finished samples are skipped. Samples that
    fail are recorded with their reason and the run goes on.

    Example:

    \b
        entprobe probe --model deepseek-community/Janus-Pro-1B \\
            --text-prompts sample:t2i --image-prompts sample:mmbench \\
            --levels prompt,text-gen,image-gen --store results.duckdb
    """
    from entprobe.pipeline import probe_from_cli

    estimator = estimator_overrides(kwargs)
    generation = {
        "max_new_tokens": kwargs.pop("max_new_tokens"),
        "do_sample": kwargs.pop("do_sample"),
        "temperature": kwargs.pop("temperature"),
        "top_p": kwargs.pop("top_p"),
        "image_do_sample": kwargs.pop("image_do_sample"),
        "image_temperature": kwargs.pop("image_temperature"),
        "guidance_scale": kwargs.pop("guidance_scale"),
        "seed": kwargs.pop("seed"),
        "image_steps": kwargs.pop("image_steps"),
        "image_size": kwargs.pop("image_size"),
    }
    try:
        backend = kwargs.pop("backend")
        ray_options = {k: kwargs.pop(k) for k in ("address", "workers", "gpus_per_worker")}
        if backend == "ray":
            from entprobe.pipeline.ray_backend import probe_on_ray

            summary = probe_on_ray(estimator=estimator, generation=generation, **ray_options, **kwargs)
        elif any(v for v in ray_options.values()):
            raise EntprobeError("--address, --workers and --gpus-per-worker need --backend ray")
        else:
            summary = probe_from_cli(estimator=estimator, generation=generation, **kwargs)
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
