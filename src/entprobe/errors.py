"""The package's exception and warning types.

One base exception, :class:`EntprobeError`; each subclass also inherits the matching
built-in so callers can catch either (``except ValueError`` keeps working).
"""

from __future__ import annotations

__all__ = [
    "EntprobeError",
    "ProbeInputError",
    "DatasetError",
    "UnsupportedError",
    "StoreError",
    "StoreLockedError",
    "BackendError",
    "MissingDependencyError",
    "ModelLoadError",
    "OutputPathError",
    "EntprobeWarning",
    "DegenerateGeometryWarning",
    "NumericalFallbackWarning",
]


class EntprobeError(Exception):
    """Base class of every error entprobe raises on purpose."""


class ProbeInputError(EntprobeError, ValueError):
    """Bad input to an estimator or probe: the message names the argument, what was
    expected and what arrived (and, for batched input, the index that failed)."""


class DatasetError(EntprobeError, ValueError):
    """A prompt-set SPEC or file that cannot be read at all (per-row trouble is
    recorded as a skipped row instead, see :mod:`entprobe.datasets`)."""


class UnsupportedError(EntprobeError, NotImplementedError):
    """A level or mode the chosen model adapter does not support."""


class ModelLoadError(EntprobeError, RuntimeError):
    """An unknown model, adapter or checkpoint that cannot be loaded."""


class StoreError(EntprobeError, RuntimeError):
    """A results store that cannot be opened, read or written."""


class StoreLockedError(StoreError):
    """Another process holds the results store open for writing."""


class OutputPathError(EntprobeError, OSError):
    """An output path (``--out``, ``--save-images``, ``--save-grams``, the store's
    folder) that cannot be created or written; checked before any work."""


class BackendError(EntprobeError, RuntimeError):
    """A distributed backend (Ray) cannot be reached or lost a worker for good."""


class MissingDependencyError(EntprobeError, ImportError):
    """An optional dependency is not installed; the message says how to install it."""


class EntprobeWarning(UserWarning):
    """Base class of entprobe's warnings."""


class DegenerateGeometryWarning(EntprobeWarning):
    """The token geometry is degenerate (e.g. the median pairwise distance is 0) and
    the estimator fell back to a documented alternative."""


class NumericalFallbackWarning(EntprobeWarning):
    """A numerical routine failed on the requested device and was redone elsewhere
    (e.g. a CUDA eigen-solver failure recomputed on the CPU)."""
