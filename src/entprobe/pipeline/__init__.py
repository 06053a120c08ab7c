"""The probe loop: prompt records x levels -> model adapter -> estimators -> store.

- :func:`run_probe` probes an already-loaded adapter (tests pass fakes or tiny models).
- :func:`probe_from_cli` checks levels, capabilities, prompt sets, estimator options
  and the store before loading the model, then calls :func:`run_probe`.
- :func:`reestimate` recomputes metrics from saved Gram files, without the model.
"""

from .options import (
    MODALITY_LEVELS,
    EstimatorOptions,
    ProbeOptions,
    parse_levels,
    parse_shard,
    parse_thresholds,
    shard_index,
)
from .probe import RunSummary, probe_from_cli, required_capabilities, run_probe
from .reestimate import reestimate

__all__ = [
    "MODALITY_LEVELS",
    "EstimatorOptions",
    "ProbeOptions",
    "RunSummary",
    "parse_levels",
    "parse_shard",
    "parse_thresholds",
    "probe_from_cli",
    "reestimate",
    "required_capabilities",
    "run_probe",
    "shard_index",
]
