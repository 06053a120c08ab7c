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
    for var in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "ENTPROBE_THREADS"):
        monkeypatch.delenv(var, raising=False)
    try:
        assert apply_thread_policy(1) == 1
        assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
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


def test_overlap_halves_only_the_automatic_count(monkeypatch):
    import torch

    from entprobe import _threads

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(4)
        monkeypatch.setattr(_threads, "_AUTOMATIC", False)
        assert _threads.overlap_threads() is None and torch.get_num_threads() == 4  # --threads 4 kept
        monkeypatch.setattr(_threads, "_AUTOMATIC", True)
        assert _threads.overlap_threads() == 4 and torch.get_num_threads() == 2
        torch.set_num_threads(1)
        assert _threads.overlap_threads() is None and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
