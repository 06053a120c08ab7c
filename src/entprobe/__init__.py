"""entprobe: layer-by-layer entropy probing of unified multimodal models.

Public API:

- :func:`matrix_entropy` — matrix-based Rényi entropy of token states (prompt level).
- :func:`conditional_entropy` — the proxy H(prompt ⊕ response) − H(prompt) (response level).
- :func:`capture` — record per-layer hidden states of any ``torch.nn.Module``.
- :func:`load_model`, :func:`probe` and the read functions of :mod:`entprobe.api`
  (:func:`prompt_entropies`, :func:`proxies`, the report's tables and figures):
  probing from a notebook, results as pandas DataFrames.
- :class:`ProbeInputError` and the other exceptions in :mod:`entprobe.errors`.

Heavy submodules are imported on first use so that ``import entprobe`` and the CLI
start fast.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from ._lazy import lazy_exports
from .errors import (
    DatasetError,
    DegenerateGeometryWarning,
    EntprobeError,
    ModelLoadError,
    NumericalFallbackWarning,
    ProbeInputError,
    StoreError,
    StoreLockedError,
    UnsupportedError,
)

try:
    __version__ = version("entprobe")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

_WHERE = {
    "matrix_entropy": ".estimators",
    "conditional_entropy": ".estimators",
    "capture": ".capture",
    "Role": ".capture",
}
# The notebook API: every public name of entprobe.api (its __all__ is this tuple).
_API = (
    "ProbeResult",
    "cross_modal_asymmetry",
    "embedding_entropy_table",
    "failures",
    "layer_trajectories",
    "length_trend",
    "load_model",
    "model_probes",
    "plot_cross_modal",
    "plot_length_entropy",
    "plot_length_layers",
    "plot_prompt_types",
    "plot_response",
    "probe",
    "prompt_entropies",
    "prompt_sets",
    "proxies",
    "read_results",
    "response_proxy_table",
    "run_summary",
    "sample_table",
    "write_report",
)
_WHERE.update(dict.fromkeys(_API, ".api"))

__all__ = [
    "DatasetError",
    "DegenerateGeometryWarning",
    "EntprobeError",
    "ModelLoadError",
    "NumericalFallbackWarning",
    "ProbeInputError",
    "Role",
    "StoreError",
    "StoreLockedError",
    "UnsupportedError",
    "__version__",
    "capture",
    "conditional_entropy",
    "matrix_entropy",
    *_API,
]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
