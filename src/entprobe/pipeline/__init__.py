"""The probe: prompt records x levels -> model adapter -> estimators -> store.

One job per module, in the order a run goes through them:

- ``options.py``: the option groups (:class:`EstimatorOptions`, :class:`ProbeOptions`),
  declared once; run-id hashing, levels, shards.
- ``checks.py``: what is checked before any model work.
- ``plan.py``: :func:`~.plan.make_plan` -> a frozen :class:`~.plan.ProbePlan` (levels,
  work items, length buckets, run configuration, run id).
- ``runner.py``: executes a plan batch by batch through ``ModelAdapter.run``.
- ``estimate.py``: states (or a stored Gram) -> per-layer values.
- ``writer.py``: rows, failures and the Gram files (shared with ``reestimate``).
- ``summary.py``: :class:`RunSummary`.
- ``probe.py``: :func:`run_probe` (a loaded adapter) and :func:`load_and_probe`
  (check, load, run: the command's and the notebook API's entry point).
- ``reestimation.py`` (:func:`reestimate`),
  ``ray_backend.py``, ``demo.py``, ``model_bench.py``: the commands built on them.

Names are imported on first use, so that ``entprobe.pipeline.options`` (which the
command line reads to build its flags) loads without torch.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_WHERE = {
    "MODALITY_LEVELS": ".options",
    "EstimatorOptions": ".options",
    "ProbeOptions": ".options",
    "parse_levels": ".options",
    "parse_shard": ".options",
    "parse_thresholds": ".options",
    "shard_index": ".options",
    "required_capabilities": ".checks",
    "ProbePlan": ".plan",
    "make_plan": ".plan",
    "RunSummary": ".summary",
    "load_and_probe": ".probe",
    "probe_from_cli": ".probe",
    "resolve_options": ".probe",
    "run_probe": ".probe",
    "reestimate": ".reestimation",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
