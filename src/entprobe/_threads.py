"""The CPU thread policy of the command line (decided before torch is imported).

Why: on a machine with other work, torch's default (one OpenMP thread per core,
spinning while it waits) can make small linear-algebra calls 10-100x slower than one
thread: the spinning threads fight the other load for the same cores. The policy:

- ``OMP_WAIT_POLICY=PASSIVE`` (unless the user set it): idle OpenMP threads sleep
  instead of spinning, so they cost nothing when there is nothing to do. It only
  takes effect if set before libgomp starts, i.e. before torch is imported.
- threads = the cores this process may use (``sched_getaffinity``) minus the load
  other processes put on them (1-minute load average, rounded), at least 1. A quiet
  machine gets every core (today's default); a busy one fewer, down to 1.
- the same count for the BLAS libraries NumPy/SciPy load (``OPENBLAS_NUM_THREADS``,
  ``MKL_NUM_THREADS``), which the exact path's subset eigensolver uses.

``--threads N`` (or ``ENTPROBE_THREADS``) overrides the count; set ``OMP_NUM_THREADS``
yourself to keep torch's own default.
"""

from __future__ import annotations

import os

__all__ = ["apply_thread_policy", "auto_threads"]

_BLAS_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def auto_threads(cores: int | None = None, load: float | None = None) -> int:
    """Threads for a machine with ``cores`` usable cores and a 1-minute ``load`` average.

    ``max(1, min(cores, round(cores - load)))``; the load counts other processes (this
    one has not started computing when it is read).
    """
    cores = _usable_cores() if cores is None else cores
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):  # pragma: no cover - not POSIX
            load = 0.0
    return max(1, min(cores, int(cores - load + 0.5)))


def apply_thread_policy(threads: int | None) -> int:
    """Set the policy for this process (before torch is imported) and return the thread count."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if threads is None and os.environ.get("ENTPROBE_THREADS", "").strip():
        threads = int(os.environ["ENTPROBE_THREADS"])
    if threads is None and "OMP_NUM_THREADS" in os.environ:
        return int(os.environ["OMP_NUM_THREADS"])  # the user's choice
    n = auto_threads() if threads is None else threads
    for var in _BLAS_VARS:
        os.environ[var] = str(n)
    import sys

    if "torch" in sys.modules:  # imported already (e.g. a test calling main): set it directly
        sys.modules["torch"].set_num_threads(n)
    return n
