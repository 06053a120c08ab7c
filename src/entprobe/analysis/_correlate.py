"""Spearman rank correlation of per-model probes with benchmark scores (supplement §6)."""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from os import PathLike

import numpy as np
import pandas as pd
from scipy import stats

from entprobe.analysis._common import DEFAULT_N_BOOT, cell_rng, check_n_boot, require_columns
from entprobe.analysis._tables import PROBE_COLUMNS
from entprobe.errors import ProbeInputError

__all__ = [
    "SpearmanResult",
    "spearman",
    "correlate",
    "read_scores",
    "read_probes",
    "EXACT_MAX_N",
    "DEFAULT_N_PERM",
]

#: Up to this many pairs the p-value enumerates all n! pairings (9! = 362,880).
EXACT_MAX_N = 9
#: Random pairings drawn for the permutation p-value above :data:`EXACT_MAX_N`.
DEFAULT_N_PERM = 100_000


@dataclass(frozen=True)
class SpearmanResult:
    """A Spearman rank correlation with its uncertainty.

    Attributes:
        rho: Spearman's rank correlation (Pearson correlation of average ranks).
        p_value: two-sided p-value of the permutation test of no association,
            ``min(1, 2 * min(P(R <= rho), P(R >= rho)))`` under random pairings
            (SciPy's ``permutation_test`` convention).
        p_method: ``"exact"`` (all ``n!`` pairings) or ``"permutation"``
            (``n_perm`` random pairings, ``p = (k + 1) / (n_perm + 1)``).
        p_asymptotic: SciPy ``spearmanr``'s p-value (Student t with n - 2 degrees of
            freedom), the convention most papers report.
        ci_low, ci_high: percentile bootstrap interval of rho over resampled pairs.
        n: number of pairs.
        n_boot_valid: bootstrap resamples with a defined rho (a resample whose x or
            y is constant has none and is dropped).
    """

    rho: float
    p_value: float
    p_method: str
    p_asymptotic: float
    ci_low: float
    ci_high: float
    n: int
    n_boot_valid: int


def _rank_rows(a: np.ndarray) -> np.ndarray:
    return stats.rankdata(a, axis=-1)


def _rho_rows(rx: np.ndarray, ry: np.ndarray) -> np.ndarray:
    """Row-wise Pearson correlation of rank arrays (NaN where a row is constant)."""
    dx = rx - rx.mean(axis=-1, keepdims=True)
    dy = ry - ry.mean(axis=-1, keepdims=True)
    num = (dx * dy).sum(axis=-1)
    den = np.sqrt((dx * dx).sum(axis=-1) * (dy * dy).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = num / den
    r[den == 0] = np.nan
    return r


def _null_rhos(
    rx: np.ndarray,
    ry: np.ndarray,
    *,
    exact: bool,
    n_perm: int,
    rng: np.random.Generator,
) -> np.ndarray:
    n = rx.size
    out = []
    if exact:
        perms = itertools.permutations(range(n))
        while True:
            block = np.array(list(itertools.islice(perms, 200_000)), dtype=np.int64)
            if block.size == 0:
                break
            out.append(_rho_rows(rx[block], np.broadcast_to(ry, block.shape)))
    else:
        for start in range(0, n_perm, 50_000):
            m = min(50_000, n_perm - start)
            block = rng.permuted(np.broadcast_to(np.arange(n), (m, n)), axis=1)
            out.append(_rho_rows(rx[block], np.broadcast_to(ry, block.shape)))
    return np.concatenate(out)


def spearman(
    x: np.ndarray | list[float],
    y: np.ndarray | list[float],
    *,
    n_boot: int = DEFAULT_N_BOOT,
    n_perm: int = DEFAULT_N_PERM,
    exact_max_n: int = EXACT_MAX_N,
    confidence: float = 0.95,
    seed: int = 0,
    key: tuple[object, ...] = (),
) -> SpearmanResult:
    """Spearman's rho with a permutation p-value and a bootstrap interval.

    .. math:: \\rho = \\operatorname{corr}(\\operatorname{rank}(x), \\operatorname{rank}(y))

    Ties get average ranks. The p-value is exact (all ``n!`` pairings) for
    ``n <= exact_max_n``, otherwise from ``n_perm`` seeded random pairings. The
    interval resamples the ``n`` pairs with replacement ``n_boot`` times (seeded by
    ``seed`` and ``key``) and takes percentiles of the defined rhos.

    Args:
        x, y: paired observations, shape ``(n,)``, no NaN.

    Raises:
        ProbeInputError: shapes differ, NaN present, fewer than 3 pairs, or x or y
            constant.

    Example:
        >>> r = spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5], n_boot=200)
        >>> round(r.rho, 3), r.p_method
        (0.8, 'exact')
    """
    xa = np.asarray(x, dtype=np.float64).ravel()
    ya = np.asarray(y, dtype=np.float64).ravel()
    n_boot = check_n_boot(n_boot)
    if xa.shape != ya.shape:
        raise ProbeInputError(f"x and y must have the same length; got {xa.size} and {ya.size}")
    if np.isnan(xa).any() or np.isnan(ya).any():
        raise ProbeInputError("x and y must not contain NaN; drop the unpaired models first")
    n = xa.size
    if n < 3:
        raise ProbeInputError(f"Spearman correlation needs at least 3 pairs; got {n}")
    if np.ptp(xa) == 0 or np.ptp(ya) == 0:
        raise ProbeInputError(f"x or y is constant over its {n} values; rank correlation is undefined")
    rx, ry = _rank_rows(xa), _rank_rows(ya)
    rho = float(_rho_rows(rx[None], ry[None])[0])
    res = stats.spearmanr(xa, ya)
    p_asym = float(res.pvalue)

    exact = n <= exact_max_n
    rng = cell_rng(seed, ("perm", *key))
    null = _null_rhos(rx, ry, exact=exact, n_perm=n_perm, rng=rng)
    # same relative tolerance as SciPy, so ties with the observed value count
    gamma = abs(1e-14 * rho) if rho != 0 else 1e-14
    adj = 0 if exact else 1
    p_less = ((null <= rho + gamma).sum() + adj) / (null.size + adj)
    p_greater = ((null >= rho - gamma).sum() + adj) / (null.size + adj)
    p_value = float(min(1.0, 2.0 * min(p_less, p_greater)))

    brng = cell_rng(seed, ("boot", *key))
    idx = brng.integers(0, n, size=(n_boot, n))
    boot = _rho_rows(_rank_rows(xa[idx]), _rank_rows(ya[idx]))
    boot = boot[~np.isnan(boot)]
    tail = (1.0 - confidence) / 2.0
    if boot.size:
        lo, hi = (float(v) for v in np.quantile(boot, [tail, 1.0 - tail]))
    else:
        lo = hi = float("nan")
    return SpearmanResult(
        rho=rho,
        p_value=p_value,
        p_method="exact" if exact else "permutation",
        p_asymptotic=p_asym,
        ci_low=lo,
        ci_high=hi,
        n=n,
        n_boot_valid=int(boot.size),
    )


def read_scores(path: str | PathLike[str]) -> pd.DataFrame:
    """Read a benchmark-score CSV with columns ``model, benchmark, score`` (+ optional
    ``family`` or any grouping column).

    Raises:
        ProbeInputError: a column is missing, a score is not a number, or a
            ``(model, benchmark)`` pair repeats.
    """
    df = pd.read_csv(path, comment="#", skipinitialspace=True)
    df.columns = [c.strip() for c in df.columns]
    require_columns(df, ["model", "benchmark", "score"], name=f"scores file {path}")
    df["model"] = df["model"].astype(str).str.strip()
    df["benchmark"] = df["benchmark"].astype(str).str.strip()
    bad = pd.to_numeric(df["score"], errors="coerce").isna() & df["score"].notna()
    if bad.any():
        raise ProbeInputError(
            f"scores file {path}: non-numeric score in row(s) "
            f"{(df.index[bad] + 2).tolist()}: {df.loc[bad, 'score'].tolist()}"
        )
    df["score"] = pd.to_numeric(df["score"], errors="coerce")
    dup = df.duplicated(["model", "benchmark"], keep=False)
    if dup.any():
        raise ProbeInputError(
            f"scores file {path}: (model, benchmark) repeats: "
            f"{sorted(set(map(tuple, df.loc[dup, ['model', 'benchmark']].values)))}"
        )
    return df


def read_probes(path: str | PathLike[str]) -> pd.DataFrame:
    """Read per-model probe values.

    Accepts a wide CSV (``model`` plus one numeric column per probe, e.g.
    ``image_gen_ce, text_gen_ce, asymmetry``; other text columns such as ``family``
    are kept) or a long CSV (``model, probe, value``).

    Raises:
        ProbeInputError: no ``model`` column, or a model appears twice.
    """
    df = pd.read_csv(path, comment="#", skipinitialspace=True)
    df.columns = [c.strip() for c in df.columns]
    require_columns(df, ["model"], name=f"probes file {path}")
    df["model"] = df["model"].astype(str).str.strip()
    if {"probe", "value"} <= set(df.columns):
        extra = [c for c in df.columns if c not in ("model", "probe", "value")]
        wide = df.pivot_table(index="model", columns="probe", values="value", aggfunc="first")
        wide.columns.name = None
        wide = wide.reset_index()
        if extra:
            wide = wide.merge(df[["model", *extra]].drop_duplicates("model"), on="model", how="left")
        return wide
    if df["model"].duplicated().any():
        raise ProbeInputError(
            f"probes file {path}: model(s) listed twice: {sorted(df.loc[df['model'].duplicated(), 'model'])}"
        )
    return df


def _probe_columns(probes: pd.DataFrame, group_by: str | None) -> list[str]:
    known = [c for c in PROBE_COLUMNS if c in probes.columns]
    others = [
        c
        for c in probes.columns
        if c not in ("model", group_by, *PROBE_COLUMNS) and pd.api.types.is_numeric_dtype(probes[c])
    ]
    return known + others


def correlate(
    probes: pd.DataFrame,
    scores: pd.DataFrame,
    *,
    group_by: str | None = None,
    n_boot: int = DEFAULT_N_BOOT,
    n_perm: int = DEFAULT_N_PERM,
    exact_max_n: int = EXACT_MAX_N,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Spearman correlation of every probe with every benchmark, over all models and
    within each group.

    Models are matched by the exact ``model`` string. For each probe and benchmark
    the models having both values are used; ``n`` says how many.

    Args:
        probes: ``model`` plus one numeric column per probe (e.g. from
            :func:`~entprobe.analysis.model_probes` or :func:`read_probes`).
        scores: long table ``model, benchmark, score`` (see :func:`read_scores`).
        group_by: a column of ``scores`` or ``probes`` (e.g. ``family``); each of its
            values gets its own rows besides ``group == "all"``.

    Returns:
        One row per ``(group, probe, benchmark)``: ``n, rho, p_value, p_method,
        p_asymptotic, ci_low, ci_high, n_boot_valid, models, note``. Where fewer than
        three models pair up, or one side is constant, the statistics are NaN and
        ``note`` says why.

    Raises:
        ProbeInputError: a column is missing, ``group_by`` is in neither table, a
            model has two different groups, or there is no probe column.
    """
    require_columns(probes, ["model"], name="probes")
    require_columns(scores, ["model", "benchmark", "score"], name="scores")
    probe_cols = _probe_columns(probes, group_by)
    if not probe_cols:
        raise ProbeInputError(f"probes has no numeric probe column; it has {list(probes.columns)}")
    groups: pd.Series | None = None
    if group_by is not None:
        if group_by in scores.columns:
            src = scores[["model", group_by]]
        elif group_by in probes.columns:
            src = probes[["model", group_by]]
        else:
            raise ProbeInputError(
                f"group_by column {group_by!r} is in neither the scores "
                f"({list(scores.columns)}) nor the probes ({list(probes.columns)})"
            )
        src = src.dropna().drop_duplicates()
        clash = src["model"][src["model"].duplicated()]
        if not clash.empty:
            raise ProbeInputError(f"group_by {group_by!r}: model(s) {sorted(set(clash))} have several values")
        groups = src.set_index("model")[group_by]

    group_names = ["all"] + ([] if groups is None else sorted(groups.astype(str).unique()))
    benchmarks = list(dict.fromkeys(scores["benchmark"]))
    rows = []
    for group in group_names:
        for probe in probe_cols:
            for bench in benchmarks:
                s = scores.loc[scores["benchmark"] == bench, ["model", "score"]]
                pair = probes[["model", probe]].merge(s, on="model").dropna()
                if group != "all":
                    pair = pair.loc[pair["model"].map(groups).astype(str) == group]
                pair = pair.sort_values("model")
                row = {
                    "group": group,
                    "probe": probe,
                    "benchmark": bench,
                    "n": len(pair),
                    "models": ", ".join(pair["model"]),
                    "note": "",
                }
                try:
                    res = spearman(
                        pair[probe],
                        pair["score"],
                        n_boot=n_boot,
                        n_perm=n_perm,
                        exact_max_n=exact_max_n,
                        confidence=confidence,
                        seed=seed,
                        key=(group, probe, bench),
                    )
                    row.update({k: v for k, v in asdict(res).items() if k != "n"})
                except ProbeInputError as exc:
                    row.update(
                        {
                            "rho": math.nan,
                            "p_value": math.nan,
                            "p_method": "",
                            "p_asymptotic": math.nan,
                            "ci_low": math.nan,
                            "ci_high": math.nan,
                            "n_boot_valid": 0,
                            "note": str(exc),
                        }
                    )
                rows.append(row)
    cols = [
        "group",
        "probe",
        "benchmark",
        "n",
        "rho",
        "p_value",
        "p_method",
        "p_asymptotic",
        "ci_low",
        "ci_high",
        "n_boot_valid",
        "models",
        "note",
    ]
    return pd.DataFrame(rows, columns=cols)
