"""Tables from results stores, as pure functions over DataFrames.

Read a store once with :func:`load`, then compute any table from the DataFrames::

    from entprobe.analysis import load, embedding_entropy_table, correlate, model_probes
    lm, samples, runs = load(["bagel.duckdb", "janus.duckdb"])
    table1 = embedding_entropy_table(lm)            # Table 1, with n and 95% CI
    probes = model_probes(lm)                        # image/text-gen proxy, asymmetry
    rho = correlate(probes, read_scores("scores.csv"), group_by="family")

Every function except :func:`load`, :func:`read_scores` and :func:`read_probes`
is pure: DataFrames with the columns of the store's tables in, a DataFrame out.
Entropies are in bits (the estimators' default ``base=2``).
"""

from entprobe.analysis._common import (
    DEFAULT_EARLY_FRACTION,
    DEFAULT_N_BOOT,
    IMAGE_CATEGORIES,
    LENGTH_BUCKETS,
    TEXT_CATEGORIES,
    bootstrap_mean_ci,
    normalize_category,
)
from entprobe.analysis._correlate import (
    DEFAULT_N_PERM,
    EXACT_MAX_N,
    SpearmanResult,
    correlate,
    read_probes,
    read_scores,
    spearman,
)
from entprobe.analysis._load import load
from entprobe.analysis._runs import (
    coverage_table,
    failed_samples,
    interval_width_table,
    run_summary,
    sample_counts,
)
from entprobe.analysis._tables import (
    PROBE_COLUMNS,
    PROBE_LABELS,
    cross_modal_asymmetry,
    embedding_entropy_table,
    layer_trajectories,
    length_trend,
    model_probes,
    prompt_length_points,
    response_proxy_table,
)

__all__ = [
    "DEFAULT_EARLY_FRACTION",
    "DEFAULT_N_BOOT",
    "DEFAULT_N_PERM",
    "EXACT_MAX_N",
    "IMAGE_CATEGORIES",
    "LENGTH_BUCKETS",
    "PROBE_COLUMNS",
    "PROBE_LABELS",
    "SpearmanResult",
    "TEXT_CATEGORIES",
    "bootstrap_mean_ci",
    "correlate",
    "coverage_table",
    "interval_width_table",
    "cross_modal_asymmetry",
    "embedding_entropy_table",
    "failed_samples",
    "layer_trajectories",
    "length_trend",
    "load",
    "model_probes",
    "normalize_category",
    "prompt_length_points",
    "read_probes",
    "read_scores",
    "response_proxy_table",
    "run_summary",
    "sample_counts",
    "spearman",
]
