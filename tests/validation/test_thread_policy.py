"""The CLI's thread policy: cores minus load, passive OpenMP wait, an explicit count wins."""

from __future__ import annotations

import os

from entprobe._threads import apply_thread_policy, auto_threads


def test_auto_threads_leaves_the_loaded_cores():
    assert auto_threads(cores=2, load=0.0) == 2  # quiet: every core, as torch's default
    assert auto_threads(cores=2, load=0.6) == 1
    assert auto_threads(cores=2, load=7.0) == 1  # never below one
    assert auto_threads(cores=16, load=3.2) == 13
    assert auto_threads(cores=4, load=-1.0) == 4  # never above the cores


def test_apply_thread_policy_sets_the_environment(monkeypatch):
    import torch

    before = torch.get_num_threads()
    for var in (
        "OMP_WAIT_POLICY",
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "ENTPROBE_THREADS",
    ):
        monkeypatch.delenv(var, raising=False)
    try:
        assert apply_thread_policy(1) == 1
        assert "OMP_WAIT_POLICY" not in os.environ  # OpenMP's own wait, as torch's default
        assert os.environ["OPENBLAS_NUM_THREADS"] == "1" and torch.get_num_threads() == 1
        monkeypatch.setenv("ENTPROBE_THREADS", "1")
        assert apply_thread_policy(None) == 1
        monkeypatch.delenv("ENTPROBE_THREADS")
        monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert apply_thread_policy(None) == 1  # the user's own settings are kept
        assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
    finally:
        torch.set_num_threads(before)


def test_busy_cores_sees_a_spinning_process():
    """The policy's load reading: a process spinning on one of our cores shows up as
    about one busy core within the sampling window (measured, so loosely bounded)."""
    import subprocess
    import sys

    from entprobe._threads import busy_cores

    cpus = sorted(os.sched_getaffinity(0))
    quiet = busy_cores(0.3, cpus={cpus[0]})
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        os.sched_setaffinity(spin.pid, {cpus[0]})
        import time

        time.sleep(0.2)
        loaded = busy_cores(0.3, cpus={cpus[0]})
    finally:
        spin.kill()
        spin.wait()
    assert quiet is not None and loaded is not None
    assert loaded > 0.8 and loaded >= quiet


def test_governor_shares_and_follows_only_the_automatic_count(monkeypatch):
    import torch

    from entprobe import _threads

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(4)
        monkeypatch.setattr(_threads, "_AUTOMATIC", False)
        gov = _threads.ThreadGovernor(share=2, interval=0.0)
        assert gov.refresh() is None and torch.get_num_threads() == 4  # --threads 4 kept
        gov.close()
        monkeypatch.setattr(_threads, "_AUTOMATIC", True)
        monkeypatch.setattr(_threads, "_usable_core_count", lambda: 4)
        gov = _threads.ThreadGovernor(share=2, interval=0.0)
        assert torch.get_num_threads() == 2  # two computing threads share the cores
        # no other process busy: (4 cores - 0) // 2 each
        monkeypatch.setattr(_threads, "_cpu_times", _fake_times([(0, 1000), (0, 2000)]))
        gov._last = gov._sample()
        assert gov.refresh() == 2
        # three of four cores busy with other work (none of it ours): 1 thread each
        monkeypatch.setattr(_threads, "_cpu_times", _fake_times([(0, 1000), (750, 2000)]))
        gov._last = gov._sample()
        monkeypatch.setattr(_threads.os, "times", lambda: os.times_result((0.0, 0.0, 0.0, 0.0, 0.0)))
        assert gov.refresh() == 1 and torch.get_num_threads() == 1
        gov.close()
        assert torch.get_num_threads() == 4
    finally:
        torch.set_num_threads(before)


def _fake_times(samples):
    it = iter(samples)
    return lambda cpus: next(it)
