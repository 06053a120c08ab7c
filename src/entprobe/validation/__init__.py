"""The paper's synthetic validations (``entprobe validate``) and the speed benchmark
(``entprobe bench``).

- :func:`run_validation` runs the experiments of :data:`EXPERIMENTS` and returns a
  :class:`ValidationReport` (one :class:`ExperimentResult` each, with the
  :class:`Claim` s it tests); :func:`write_outputs` writes its CSV, Markdown and PNG files.
- :func:`run_benchmark` times :mod:`entprobe.estimators` against the plain per-layer
  reference in :mod:`entprobe.validation.naive`.

Figures live in :mod:`entprobe.validation.plots` (imported only when drawing).
"""

from ._types import Claim, ExperimentResult, ValidationConfig, ValidationReport
from .estimator_bench import BenchResult, bench_states, format_bench_table, run_benchmark
from .naive import naive_conditional_entropy, naive_matrix_entropy
from .outputs import markdown_table, write_outputs
from .shannon import kde_conditional_entropy, kde_entropy, shannon_conditional_entropy
from .synthetic import (
    EXPERIMENTS,
    PairPopulation,
    cluster_sequence,
    pair_population,
    run_cluster_entropy,
    run_dependence_proxy,
    run_normalization_agreement,
    run_sensitivity,
    run_shannon_agreement,
    run_validation,
    torch_threads,
)

__all__ = [
    "EXPERIMENTS",
    "BenchResult",
    "Claim",
    "ExperimentResult",
    "PairPopulation",
    "ValidationConfig",
    "ValidationReport",
    "bench_states",
    "cluster_sequence",
    "format_bench_table",
    "kde_conditional_entropy",
    "kde_entropy",
    "markdown_table",
    "naive_conditional_entropy",
    "naive_matrix_entropy",
    "pair_population",
    "run_benchmark",
    "run_cluster_entropy",
    "run_dependence_proxy",
    "run_normalization_agreement",
    "run_sensitivity",
    "run_shannon_agreement",
    "run_validation",
    "shannon_conditional_entropy",
    "torch_threads",
    "write_outputs",
]
