"""The CPU thread policy of the command line (decided before torch is imported).

Why: on a machine with other work, torch's default (one OpenMP thread per core,
spinning while it waits) can make small linear-algebra calls 10-100x slower than one
thread: the spinning threads fight the other load for the same cores. The policy:

- threads = the cores this process may use (``sched_getaffinity``, and a cgroup CPU
  quota if one is set) minus the cores other processes keep busy, measured over a
  short window from ``/proc/stat`` when the command starts (rounded), at least 1. A
  quiet machine gets every core and libgomp's own wait policy, i.e. exactly torch's
  default; a busy one fewer threads, down to 1 (where no thread waits at all). The
  1-minute load average was used before, but it lags: right after a previous run
  (ours or anyone's) it still counts that run, and a quiet 2-core machine got 1
  thread. It remains the fallback where ``/proc/stat`` cannot be read.
- the same count for the BLAS libraries NumPy/SciPy load (``OPENBLAS_NUM_THREADS``,
  ``MKL_NUM_THREADS``), which the exact path's subset eigensolver uses.
- during a probe or a re-estimate, :class:`ThreadGovernor` re-reads the other
  processes' CPU use every few seconds and moves torch's count down (or back up) when load comes or goes
  mid-run; while estimation overlaps a model on the CPU, two threads compute at once
  (each with its own OpenMP team), so each gets half. Measured on 2 cores: the demo
  took 65 s with 2 threads each against 37 s with 1.

``OMP_WAIT_POLICY=PASSIVE`` (sleeping idle threads) was the previous default: it
avoids spinning against load, but on a quiet machine it made 2 threads 1.3-1.8x
slower than torch's default on the estimators (each parallel region wakes sleeping
threads), so the thread count now does that job. ``--threads N`` (or
``ENTPROBE_THREADS``) overrides the count (then used as given, overlap or not, and
never changed by the governor); ``OMP_NUM_THREADS`` or ``OMP_WAIT_POLICY`` set by the
user are kept.
"""

from __future__ import annotations

import os
import time

__all__ = ["ThreadGovernor", "apply_thread_policy", "auto_threads", "busy_cores"]

# Whether the running command's count came from the automatic policy (not --threads,
# ENTPROBE_THREADS or OMP_NUM_THREADS): only then does ThreadGovernor change it.
_AUTOMATIC = False

# Seconds over which the other processes' CPU use is sampled at start.
_WINDOW = 0.15

_BLAS_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _cpu_quota() -> float | None:
    """Cores allowed by a cgroup v2 CPU quota (``cpu.max``), or None if unlimited/unknown."""
    try:
        with open("/sys/fs/cgroup/cpu.max", encoding="ascii") as fh:
            quota, period = fh.read().split()[:2]
        return None if quota == "max" else max(float(quota) / float(period), 1.0)
    except (OSError, ValueError):
        return None


def _cpu_times(cpus: set[int] | None) -> tuple[int, int] | None:
    """``(busy, total)`` jiffies summed over ``cpus`` (all if None) from ``/proc/stat``."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            lines = [ln.split() for ln in fh if ln.startswith("cpu") and ln[3:4].isdigit()]
    except OSError:
        return None
    busy = total = 0
    for fields in lines:
        if cpus is not None and int(fields[0][3:]) not in cpus:
            continue
        vals = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
        idle = vals[3] + vals[4]
        total += sum(vals)
        busy += sum(vals) - idle
    return (busy, total) if total else None


def _others_busy(
    before: tuple[int, int], after: tuple[int, int], n_cpus: int, own_jiffies: float = 0.0
) -> float:
    """Cores kept busy by other processes between two :func:`_cpu_times` readings, this
    process's own ``own_jiffies`` subtracted."""
    return n_cpus * max(0.0, (after[0] - before[0]) - own_jiffies) / (after[1] - before[1])


def _affinity() -> set[int] | None:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return None


def busy_cores(window: float = _WINDOW, cpus: set[int] | None = None) -> float | None:
    """Cores kept busy by other processes over ``window`` seconds (this one sleeps
    meanwhile), among ``cpus`` (default: those this process may use); None if unknown."""
    if cpus is None:
        cpus = _affinity()
    first = _cpu_times(cpus)
    if first is None:
        return None
    time.sleep(window)
    second = _cpu_times(cpus)
    if second is None or second[1] <= first[1]:
        return None
    return _others_busy(first, second, len(cpus) if cpus else (os.cpu_count() or 1))


def _usable_core_count() -> int:
    """The usable cores, capped by a cgroup quota."""
    cores = _usable_cores()
    quota = _cpu_quota()
    return cores if quota is None else max(1, min(cores, int(quota)))


def auto_threads(cores: int | None = None, load: float | None = None) -> int:
    """Threads for a machine with ``cores`` usable cores of which ``load`` are kept busy
    by other processes.

    ``max(1, min(cores, round(cores - load)))``. Defaults: the affinity set (capped by a
    cgroup quota) and :func:`busy_cores`, or the 1-minute load average where
    ``/proc/stat`` is unavailable.
    """
    cores = _usable_core_count() if cores is None else cores
    if load is None:
        load = busy_cores()
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):  # pragma: no cover - not POSIX
            load = 0.0
    return max(1, min(cores, int(cores - load + 0.5)))


class ThreadGovernor:
    """Keeps torch's thread count at what other processes leave free, during a run.

    Every ``interval`` seconds (checked at :meth:`refresh`, which the probe loop calls
    between batches) it reads the busy time of this process's cores from
    ``/proc/stat`` since the last reading, subtracts this process's own CPU time, and
    sets ``max(1, round(cores - others) // share)`` threads. ``share`` is the number of
    threads computing at once (2 while estimation overlaps a model on the CPU). Only
    the automatic policy is governed: with ``--threads``/``OMP_NUM_THREADS`` it does
    nothing. :meth:`close` restores the count it found.
    """

    def __init__(self, *, share: int = 1, interval: float = 5.0) -> None:
        import torch

        self.active = _AUTOMATIC
        self.share = max(1, int(share))
        self.interval = float(interval)
        self._initial = torch.get_num_threads()
        self._last: tuple[float, tuple[int, int], float] | None = None
        self._cpus = _affinity()
        self._cores = _usable_core_count()
        self._tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        if self.active and self.share > 1:
            torch.set_num_threads(max(1, self._initial // self.share))
        self._last = self._sample()

    def _sample(self) -> tuple[float, tuple[int, int], float] | None:
        """``(time, (busy, total) jiffies, this process's CPU seconds)``, or None."""
        times = _cpu_times(self._cpus)
        if times is None:
            return None
        own = os.times()
        return time.monotonic(), times, own.user + own.system

    def refresh(self) -> int | None:
        """Re-read the load if ``interval`` has passed; returns the count set, or None."""
        if not self.active or self._last is None or time.monotonic() - self._last[0] < self.interval:
            return None
        import torch

        before, now = self._last, self._sample()
        self._last = now
        if now is None or now[1][1] <= before[1][1]:
            return None
        n_cpus = len(self._cpus) if self._cpus else (os.cpu_count() or 1)
        others = _others_busy(before[1], now[1], n_cpus, (now[2] - before[2]) * self._tick)
        n = max(1, max(1, int(self._cores - others + 0.5)) // self.share)
        if n != torch.get_num_threads():
            torch.set_num_threads(n)
        return n

    def close(self) -> None:
        """Give back the count found at the start."""
        if self.active:
            import torch

            torch.set_num_threads(self._initial)
            self.active = False


def apply_thread_policy(threads: int | None) -> int:
    """Set the policy for this process (before torch is imported) and return the thread count."""
    global _AUTOMATIC
    if threads is None and os.environ.get("ENTPROBE_THREADS", "").strip():
        threads = int(os.environ["ENTPROBE_THREADS"])
    _AUTOMATIC = False
    if threads is None and "OMP_NUM_THREADS" in os.environ:
        return int(os.environ["OMP_NUM_THREADS"])  # the user's choice
    _AUTOMATIC = threads is None
    n = auto_threads() if threads is None else threads
    for var in _BLAS_VARS:
        os.environ[var] = str(n)
    import sys

    if "torch" in sys.modules:  # imported already (e.g. a test calling main): set it directly
        sys.modules["torch"].set_num_threads(n)
    return n
