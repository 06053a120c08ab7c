"""``entprobe report`` and ``entprobe correlate``: parse options, call the library."""

from __future__ import annotations

from pathlib import Path

import click

from entprobe.cli._common import (
    early_fraction_option,
    n_boot_option,
    out_dir_option,
    seed_option,
    stores_option,
)
from entprobe.errors import EntprobeError

_CSV = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command("report")
@stores_option("Results store (.duckdb); repeat for several. Models are told apart by name.", required=True)
@out_dir_option("Output folder: report.html, figures/ (PNG, SVG), tables/ (CSV, Markdown).", required=True)
@early_fraction_option("Share of depth counted as early layers for the cross-modal asymmetry.")
@n_boot_option("Bootstrap resamples for the 95% confidence intervals.")
@seed_option("Bootstrap seed.")
@click.option("--title", default="entprobe report", show_default=True, help="Title of the HTML page.")
def report(
    stores: tuple[Path, ...], out_dir: Path, early_fraction: float, n_boot: int, seed: int, title: str
) -> None:
    """Write the HTML report, figures and tables from results stores.

    The report (Table 1, Figs. 4-5, §5.3, §6 / Table 5, provenance) opens offline:
    figures are embedded in report.html.
    """
    from entprobe.report import write_report

    try:
        path = write_report(
            list(stores), out_dir, early_fraction=early_fraction, n_boot=n_boot, seed=seed, title=title
        )
    except EntprobeError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Wrote {path} (figures in {out_dir / 'figures'}, tables in {out_dir / 'tables'})")
    from entprobe.pipeline.estimate import width_report
    from entprobe.store import ResultStore

    for store_path in stores:
        try:
            with ResultStore(store_path, read_only=True) as reader:
                widths = width_report(reader)
        except EntprobeError:
            continue  # write_report has read it already; nothing more to say
        if widths:
            click.echo(f"{store_path}: {widths}")


def _display(table):  # noqa: ANN001, ANN202 - pandas DataFrame in and out
    import pandas as pd

    from entprobe.analysis import PROBE_LABELS
    from entprobe.report._format import fmt_num

    def ci(r) -> str:  # noqa: ANN001
        return "—" if pd.isna(r.ci_low) else f"[{r.ci_low:+.3f}, {r.ci_high:+.3f}]"

    return pd.DataFrame(
        {
            "group": table["group"],
            "probe": [PROBE_LABELS.get(p, p) for p in table["probe"]],
            "benchmark": table["benchmark"],
            "n": table["n"],
            "rho": [("—" if pd.isna(v) else f"{v:+.3f}") for v in table["rho"]],
            "p": [fmt_num(v, 3) for v in table["p_value"]],
            "p method": table["p_method"],
            "p (t approx.)": [fmt_num(v, 3) for v in table["p_asymptotic"]],
            "95% bootstrap CI": [ci(r) for r in table.itertuples()],
            "note": table["note"],
        }
    )


@click.command("correlate")
@stores_option("Results store(s) to compute per-model probes from (optional with --probes).")
@click.option(
    "--scores",
    "scores_path",
    required=True,
    type=_CSV,
    help="CSV with columns model, benchmark, score (and optionally family or another group column).",
)
@click.option(
    "--probes",
    "probes_path",
    type=_CSV,
    help="CSV of per-model probe values: model plus columns image_gen_ce, text_gen_ce, asymmetry "
    "(or any numeric probe columns), or long form model, probe, value. Values here take "
    "precedence over those computed from --store.",
)
@click.option(
    "--group-by",
    help="Column (of the scores or probes CSV) whose groups get their own "
    "correlations besides 'all', e.g. family.",
)
@early_fraction_option("Early-layer share of depth for the asymmetry computed from --store.")
@n_boot_option("Bootstrap resamples for the confidence interval of rho.")
@click.option(
    "--n-perm",
    default=100_000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Random pairings for the permutation p-value when n > 9 (n <= 9: exact, all n! pairings).",
)
@seed_option("Seed of the bootstrap and permutations.")
@out_dir_option("Also write correlations.csv, correlations.md and the probes used (probes.csv) here.")
def correlate(
    stores: tuple[Path, ...],
    scores_path: Path,
    probes_path: Path | None,
    group_by: str | None,
    early_fraction: float,
    n_boot: int,
    n_perm: int,
    seed: int,
    out_dir: Path | None,
) -> None:
    """Spearman correlation of per-model probes with benchmark scores.

    Probes: image-generation and text-generation conditional entropy (Table 5
    means) and the cross-modal asymmetry, computed from --store and/or read from
    --probes. Prints rho, a permutation p-value (exact for n <= 9), SciPy's
    t-approximation p-value, a bootstrap 95% CI and n, over all models and within
    each --group-by group.
    """
    from entprobe import analysis as A
    from entprobe.report._format import to_markdown

    if not stores and probes_path is None:
        raise click.UsageError("give --store (to compute probes) or --probes (per-model values), or both")
    try:
        scores = A.read_scores(scores_path)
        probes = None
        if stores:
            lm, _, _ = A.load(list(stores))
            probes = A.model_probes(lm, early_fraction=early_fraction)
        if probes_path is not None:
            given = A.read_probes(probes_path)
            if probes is None:
                probes = given
            else:
                probes = given.set_index("model").combine_first(probes.set_index("model")).reset_index()
        table = A.correlate(probes, scores, group_by=group_by, n_boot=n_boot, n_perm=n_perm, seed=seed)
    except EntprobeError as exc:
        raise click.ClickException(str(exc)) from exc

    probe_models = set(probes["model"])
    score_models = set(scores["model"])
    only_scores = sorted(score_models - probe_models)
    only_probes = sorted(probe_models - score_models)
    if only_scores:
        click.echo(f"warning: no probe values for model(s) in the scores: {', '.join(only_scores)}", err=True)
    if only_probes:
        click.echo(f"warning: no scores for model(s) with probes: {', '.join(only_probes)}", err=True)

    md = to_markdown(_display(table))
    shown = table["n"] >= 3
    click.echo(to_markdown(_display(table.loc[shown])), nl=False)
    small = table.loc[~shown].drop_duplicates("group")
    if not small.empty:
        click.echo(
            "\nNot computed (fewer than 3 models pair up): "
            + "; ".join(f"{r.group} (n={r.n})" for r in small.itertuples())
            + "."
        )
    for g in table["group"].unique():
        sub = table.loc[table["group"] == g]
        models = sorted({m for ms in sub["models"] for m in ms.split(", ") if m})
        click.echo(f"\n{g}: {len(models)} model(s): {', '.join(models)}")
    click.echo(
        f"\np: two-sided permutation test (exact over all n! pairings when n <= 9, else {n_perm} "
        f"random pairings); p (t approx.): scipy.stats.spearmanr; CI: percentile bootstrap over "
        f"models, B = {n_boot}, seed {seed}."
    )
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        table.to_csv(out_dir / "correlations.csv", index=False)
        (out_dir / "correlations.md").write_text(md, encoding="utf-8")
        probes.to_csv(out_dir / "probes.csv", index=False)
        click.echo(
            f"Wrote {out_dir / 'correlations.csv'}, {out_dir / 'correlations.md'}, {out_dir / 'probes.csv'}"
        )
