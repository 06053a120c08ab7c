"""``entprobe validate`` and ``entprobe bench``: the estimators' synthetic checks and speed.

Both only parse options and call :mod:`entprobe.validation` (imported inside the
commands, so ``--help`` stays fast).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from entprobe.cli._common import max_new_tokens_option, out_dir_option, threads_option

__all__ = ["bench", "validate"]


def _int_list(ctx: click.Context, param: click.Parameter, value: str) -> list[int]:
    try:
        items = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(
            f"expected comma-separated integers such as 100,300,500; got {value!r}"
        ) from None
    if not items or min(items) < 2:
        raise click.BadParameter(f"every length must be an integer >= 2; got {value!r}")
    return items


@click.command("validate", context_settings={"show_default": True})
@out_dir_option("Folder for the CSV, Markdown and PNG files.", default=Path("validate-output"))
@click.option("--seeds", type=click.IntRange(min=2), default=10, help="Seeds per experiment.")
@click.option(
    "--population",
    type=click.IntRange(min=10),
    default=200,
    help="Synthetic prompt/response pairs per seed (normalisation and sensitivity experiments).",
)
@click.option(
    "--population-noise",
    type=click.Choice(["same", "rotated"]),
    default="same",
    help="Independent part of a synthetic response: from the prompt's own distribution, or a rotated copy (new directions).",
)
@click.option("--base-seed", type=click.IntRange(min=0), default=0, help="Offset added to every seed.")
@click.option(
    "--only",
    "only",
    multiple=True,
    type=click.Choice(
        ["cluster_entropy", "dependence_proxy", "shannon_agreement", "normalization", "sensitivity"]
    ),
    help="Run only these experiments (repeatable).",
)
@threads_option(
    "torch threads while computing (the experiments are many small eigen-problems, for which more threads mostly wait).",
    default=1,
)
@click.option("--no-figures", is_flag=True, help="Skip the PNG figures.")
def validate(
    out_dir: Path,
    seeds: int,
    population: int,
    population_noise: str,
    base_seed: int,
    only: tuple[str, ...],
    threads: int,
    no_figures: bool,
) -> None:
    """Re-run the paper's synthetic validations of the estimators.

    Experiments: main text Fig. 3 (entropy vs number of clusters; the proxy for
    Y = X, noisy and independent Y) and supplement Tables 1-4 (proxy vs a KDE Shannon
    conditional entropy, agreement of the length normalisations, bandwidth and
    Renyi-order sensitivity). Prints whether each claim HOLDS here; a claim that does
    not hold is a finding, not an error (the exit status stays 0).
    """
    from entprobe.validation import ValidationConfig, run_validation, torch_threads, write_outputs

    config = ValidationConfig(
        seeds=seeds, population=population, base_seed=base_seed, population_noise=population_noise
    )

    def progress(result, seconds: float) -> None:
        click.echo(f"[{seconds:6.1f} s] {result.title}")
        for claim in result.claims:
            click.echo(f"    {claim.verdict:<13} {claim.statement}")
            click.echo(f"    {'':<13} criterion: {claim.criterion}; observed: {claim.evidence}")

    click.echo(f"entprobe validate: seeds={seeds}, population={population}, output in {out_dir}/")
    with torch_threads(threads):
        report = run_validation(config, experiments=list(only) or None, progress=progress)
    paths = write_outputs(report, out_dir, figures=not no_figures)
    held = sum(c.holds for c in report.claims)
    click.echo(
        f"{held} of {len(report.claims)} claims hold here ({report.seconds:.1f} s); {len(paths)} files written to {out_dir}/"
    )


@click.command("bench", context_settings={"show_default": True})
@click.option(
    "--device",
    type=click.Choice(["cpu", "cuda"]),
    default="cpu",
    help="Where the estimators run (the naive reference always runs on the CPU).",
)
@click.option("--layers", type=click.IntRange(min=1), default=29, help="Layers per input (leading axis).")
@click.option("--n", "ns", default="100,300,500", callback=_int_list, help="Prompt lengths, comma-separated.")
@click.option("--d", "d", type=click.IntRange(min=1), default=2048, help="State dimension.")
@click.option(
    "--repeats",
    type=click.IntRange(min=1),
    default=3,
    help="Timed runs per measurement (the fastest is reported), after one warm-up.",
)
@click.option(
    "--response-ratio",
    type=click.FloatRange(min=0, min_open=True),
    default=0.5,
    help="Response length as a fraction of the prompt length.",
)
@threads_option("torch threads for the estimators [default: torch's own choice].")
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the results to FILE.json or FILE.csv.",
)
@click.option(
    "--model-config",
    metavar="NAME",
    help="Instead: time a full probe (prompt, text-gen, image-gen) of a randomly initialised model of "
    "this size: janus-pro-1b, janus-pro-7b, or tiny-janus / tiny-emu3 / tiny-llama / tiny-chameleon / tiny-bert.",
)
@click.option("--batch-sizes", default="1,4", help="With --model-config: batch sizes, side by side.")
@click.option(
    "--prompts",
    "n_prompts",
    type=click.IntRange(1, 8),
    default=4,
    help="With --model-config: short built-in text prompts probed at each batch size.",
)
@max_new_tokens_option("With --model-config: text-gen length.")
@click.option(
    "--image-tokens",
    type=click.IntRange(min=1),
    help="With --model-config: image tokens generated (a square; default: the model's, 576 for Janus-Pro).",
)
@click.option(
    "--dtype",
    "dtype_name",
    type=click.Choice(["float32", "bfloat16", "float16"]),
    default="float32",
    help="With --model-config: model dtype.",
)
@click.option(
    "--long",
    "long_mode",
    is_flag=True,
    help="Long sequences instead: per layer, the 0.1.0 exact path vs the current one and --spectrum topk:K "
    "(time, interval width) and float32 eigenvalues (time, error), side by side; then the peak memory "
    "of 30 layers x --memory-n tokens under --max-memory. "
    "Suggested: --long --n 576,1152,2048,4096,8100 --layers 1 --memory-n 4096.",
)
@click.option("--topk", type=click.IntRange(min=1), default=128, help="K of the approximation (--long).")
@click.option(
    "--memory-n",
    type=click.IntRange(min=0),
    help="With --long: tokens per layer of the memory row (30 layers) [default: max(--n)]; 0 skips it.",
)
@click.option(
    "--load",
    "load_mode",
    is_flag=True,
    help="Thread policy instead: one workload (or --load-command) under torch's default threads, "
    "the CLI's policy and --threads 1, quiet and with a one-core background load started and stopped here.",
)
@click.option(
    "--load-command",
    help="With --load: a shell command to time instead (e.g. 'entprobe demo --out /tmp/d').",
)
def bench(
    device: str,
    layers: int,
    ns: list[int],
    d: int,
    repeats: int,
    response_ratio: float,
    threads: int | None,
    out_file: Path | None,
    model_config: str | None,
    batch_sizes: str,
    n_prompts: int,
    max_new_tokens: int,
    image_tokens: int | None,
    dtype_name: str,
    long_mode: bool,
    topk: int,
    memory_n: int | None,
    load_mode: bool,
    load_command: str | None,
) -> None:
    """Time the estimators against a naive per-layer NumPy/SciPy reference.

    Cases: the prompt entropy of (layers, n, d) states and the conditional entropy
    proxy ("trace" normalisation) with a response of response-ratio x n tokens, on
    float64 inputs of rank <= 32 plus 1e-6 noise (so both agree to ~1e-9). Prints, per
    case, the best-of-repeats seconds of the naive reference and of entprobe, the speed-up and
    the largest absolute difference in bits.
    """

    from entprobe.errors import EntprobeError
    from entprobe.validation import format_bench_table, run_benchmark, torch_threads

    if model_config is not None:
        _bench_model(
            model_config,
            device,
            batch_sizes,
            n_prompts,
            max_new_tokens,
            image_tokens,
            dtype_name,
            threads,
            out_file,
        )
        return
    if out_file is not None and out_file.suffix.lower() not in (".json", ".csv"):
        raise click.BadParameter(f"must end in .json or .csv; got {out_file.name!r}", param_hint="--out")
    inputs = {"ns": ns, "d": d, "layers": layers, "device": device}  # what the estimator timings run on
    if long_mode or load_mode:
        import shlex

        from entprobe.validation.estimator_bench import run_load_bench, run_long_bench

        if device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise click.ClickException(
                    "--device cuda: CUDA is not available to this torch; no timing was taken"
                )
        with torch_threads(threads):
            if long_mode:
                df = run_long_bench(
                    **inputs,
                    topk=topk,
                    memory_layers=30,
                    memory_n=max(ns) if memory_n is None else memory_n,
                    progress=lambda row: click.echo(f"  {row}"),
                )
            else:
                df = run_load_bench(command=None if load_command is None else shlex.split(load_command))
        click.echo(df.to_string(index=False))
        if out_file is not None:
            out_file.parent.mkdir(parents=True, exist_ok=True)
            df.to_csv(out_file, index=False) if out_file.suffix.lower() == ".csv" else out_file.write_text(
                df.to_json(orient="records", indent=2, double_precision=15), encoding="utf-8"
            )
            click.echo(f"written: {out_file}")
        return
    click.echo(
        f"entprobe bench: device={device}, layers={layers}, n={','.join(map(str, ns))}, d={d}, "
        f"response = {response_ratio:g} x n, repeats={repeats} (+1 warm-up)"
    )
    try:
        with torch_threads(threads):
            result = run_benchmark(
                **inputs,
                repeats=repeats,
                response_ratio=response_ratio,
                progress=lambda row: click.echo(
                    f"  measured {row['case']}, n={row['n']}: naive {row['naive_s']:.3f} s, entprobe {row['entprobe_s']:.3f} s"
                ),
            )
    except EntprobeError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"estimators on {result.device} ({result.device_name}), torch threads = {result.torch_threads}; naive reference on the CPU"
    )
    click.echo(format_bench_table(result))
    if result.max_rss_mib is not None:
        click.echo(f"peak resident memory of this process: {result.max_rss_mib:.0f} MiB")
    if not result.rows.agree.all():
        click.echo("warning: some cases differ by more than 1e-9 (marked '!')", err=True)
    if out_file is not None:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        if out_file.suffix.lower() == ".json":
            out_file.write_text(json.dumps(result.to_dict(), indent=2), encoding="utf-8")
        else:
            result.rows.to_csv(out_file, index=False)
        click.echo(f"written: {out_file}")


def _bench_model(
    name: str,
    device: str,
    batch_sizes: str,
    n_prompts: int,
    max_new_tokens: int,
    image_tokens: int | None,
    dtype_name: str,
    threads: int | None,
    out_file: Path | None,
) -> None:
    import torch

    from entprobe.errors import EntprobeError
    from entprobe.models.base import GenerationSettings
    from entprobe.pipeline.model_bench import run_model_bench
    from entprobe.validation import torch_threads

    try:
        sizes = [int(b) for b in batch_sizes.split(",") if b.strip()]
    except ValueError:
        raise click.BadParameter(
            f"expected comma-separated integers; got {batch_sizes!r}", param_hint="--batch-sizes"
        ) from None
    if not sizes or min(sizes) < 1:
        raise click.BadParameter(f"batch sizes must be >= 1; got {batch_sizes!r}", param_hint="--batch-sizes")
    click.echo(
        f"entprobe bench --model-config {name}: batch sizes {sizes}, {n_prompts} prompt(s), device={device}, "
        f"torch threads={threads or torch.get_num_threads()}"
    )
    try:
        with torch_threads(threads):
            result = run_model_bench(
                name,
                batch_sizes=sizes,
                n_prompts=n_prompts,
                image_tokens=image_tokens,
                generation=GenerationSettings(max_new_tokens=max_new_tokens),
                dtype=getattr(torch, dtype_name),
                device=device,
                log=click.echo,
            )
    except EntprobeError as exc:
        raise click.ClickException(str(exc)) from exc
    for note in result.notes:
        click.echo(f"  {note}")
    if len(result.rows) > 1:
        click.echo(
            "  speed-up over B="
            + str(result.rows[0]["batch_size"])
            + ": "
            + ", ".join(f"B={r['batch_size']} x{r['speedup_vs_first']:.2f}" for r in result.rows)
        )
    click.echo(
        "  Timings taken one after the other in this process; on a shared machine only the ratios mean much."
    )
    if out_file is not None:
        out_file.write_text(
            json.dumps({"model_config": name, "notes": result.notes, "rows": result.rows}, indent=2)
        )
