"""Speed of the estimators against the naive per-layer reference (``entprobe bench``).

Both compute, on the same inputs in one run, for each prompt length ``n``:

- ``prompt entropy``: :func:`entprobe.estimators.matrix_entropy` on
  ``(layers, n, d)`` states vs :func:`~entprobe.validation.naive.naive_matrix_entropy`;
- ``proxy (trace)``: :func:`entprobe.estimators.conditional_entropy` (default
  ``"trace"`` normalisation) on prompt ``(layers, n, d)`` and response
  ``(layers, round(response_ratio * n), d)`` vs
  :func:`~entprobe.validation.naive.naive_conditional_entropy`.

Inputs (:func:`bench_states`) are float64, of rank at most ``rank`` (32 by default)
plus noise of relative size ``noise`` (1e-6), so the top-64 PCA subspace is set by
the signal and both implementations agree to about 1e-9 whichever noise directions
their solvers keep at the cut.

Timing: ``time.perf_counter``; each implementation is run once untimed (warm-up:
thread pools, CUDA context and kernels) -- the estimators on every case's own
inputs, the naive reference on the first case -- then ``repeats`` timed runs, of
which the fastest is reported (all are kept in ``times``): on a shared machine the
spread comes from other processes, and the minimum is the least disturbed run. The estimator's time
starts from CPU-resident float64 arrays and includes moving them to the device and
the result back (``torch.cuda.synchronize`` before the clock stops), as in the
probe pipeline, whose captured states live on the CPU. The naive reference always
runs on the CPU.

Memory: on CUDA the peak allocated by the estimator per case
(``torch.cuda.max_memory_allocated``); on the CPU only the process's peak resident
set size over the whole run (``resource.getrusage``), since torch's allocations are
invisible to ``tracemalloc``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import UnsupportedError
from .naive import naive_conditional_entropy, naive_matrix_entropy

__all__ = ["BenchResult", "bench_states", "format_bench_table", "run_benchmark"]

AGREEMENT_TOL = 1e-9


@dataclass
class BenchResult:
    """Timings of one ``entprobe bench`` run.

    Attributes:
        rows: one row per (case, n): ``case, n, n_response, layers, d, naive_s,
            entprobe_s, speedup`` (naive / entprobe), ``max_abs_diff`` (bits),
            ``agree`` (``max_abs_diff <= 1e-9``) and, on CUDA, ``cuda_peak_mib``.
        device: where the estimators ran (``"cpu"`` or ``"cuda"``).
        device_name: the processor or GPU in words.
        repeats: timed runs per measurement (the best is reported).
        torch_threads: ``torch.get_num_threads()`` during the run.
        max_rss_mib: peak resident set size of the process over the run (MiB).
        times: every timed run, ``{"<case>/n=<n>": {"naive": [...], "entprobe": [...]}}``.
    """

    rows: pd.DataFrame
    device: str
    device_name: str
    repeats: int
    torch_threads: int
    max_rss_mib: float | None
    times: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "device_name": self.device_name,
            "repeats": self.repeats,
            "torch_threads": self.torch_threads,
            "max_rss_mib": self.max_rss_mib,
            "rows": self.rows.to_dict(orient="records"),
            "times": self.times,
        }


def bench_states(
    layers: int, n: int, n_response: int, d: int, *, rank: int = 32, noise: float = 1e-6, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic prompt and response states with a clear spectral gap.

    Per layer: a random ``rank``-dimensional subspace of ``R^d``; prompt latents
    ``N(0, I_rank)``; each response latent is ``0.7 x`` a random prompt latent plus
    ``0.7 x N(0, I_rank)`` noise; states are latents times the (orthonormal) basis,
    scaled to unit variance per token, plus ``noise x N(0, I_d)``.

    Returns:
        ``(layers, n, d)`` and ``(layers, n_response, d)`` float64 arrays.
    """
    rng = np.random.default_rng(seed)
    r = min(rank, d)
    prompt = np.empty((layers, n, d))
    response = np.empty((layers, n_response, d))
    for layer in range(layers):
        basis = np.linalg.qr(rng.standard_normal((d, r)))[0].T  # (r, d), orthonormal rows
        zp = rng.standard_normal((n, r))
        zr = 0.7 * zp[rng.integers(0, n, n_response)] + 0.7 * rng.standard_normal((n_response, r))
        prompt[layer] = zp @ basis / math.sqrt(r) + noise * rng.standard_normal((n, d))
        response[layer] = zr @ basis / math.sqrt(r) + noise * rng.standard_normal((n_response, d))
    return prompt, response


def _max_rss_mib() -> float | None:
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return None
    import sys

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes on macOS, KiB on Linux


def _cpu_name() -> str:
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _timed(
    fn: Callable[[], np.ndarray], repeats: int, sync: Callable[[], None]
) -> tuple[list[float], np.ndarray]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        sync()
        times.append(time.perf_counter() - t0)
    return times, out


def run_benchmark(
    *,
    device: str = "cpu",
    layers: int = 29,
    ns: Sequence[int] = (100, 300, 500),
    d: int = 2048,
    repeats: int = 3,
    response_ratio: float = 0.5,
    rank: int = 32,
    noise: float = 1e-6,
    seed: int = 0,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> BenchResult:
    """Time the estimators against the naive reference on the same inputs.

    Args:
        device: ``"cpu"`` or ``"cuda"`` (estimators only; the reference stays on the CPU).
        layers: leading (layer) axis of the states.
        ns: prompt lengths.
        d: state dimension.
        repeats: timed runs per measurement (the fastest is reported), >= 1.
        response_ratio: response length = ``max(2, round(response_ratio * n))``.
        rank, noise, seed: see :func:`bench_states`.
        progress: called with each finished row.

    Raises:
        UnsupportedError: ``device="cuda"`` but torch sees no CUDA device.
        ValueError: a bad size, device or ``repeats``.
    """
    import torch

    from entprobe.estimators import conditional_entropy, matrix_entropy

    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda'; got {device!r}")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1; got {repeats}")
    if layers < 1 or d < 1 or not ns or min(ns) < 2:
        raise ValueError(
            f"need layers >= 1, d >= 1 and every n >= 2; got layers={layers}, d={d}, n={list(ns)}"
        )
    if device == "cuda":
        if not torch.cuda.is_available():
            raise UnsupportedError(
                f"--device cuda: CUDA is not available to this torch ({torch.__version__}, "
                f"built for CUDA {torch.version.cuda or 'none'}); no timing was taken"
            )
        dev = torch.device("cuda")
        device_name = torch.cuda.get_device_name(dev)

        def sync() -> None:
            torch.cuda.synchronize(dev)
    else:
        dev = torch.device("cpu")
        device_name = _cpu_name()

        def sync() -> None:
            pass

    rows, times = [], {}
    naive_warm = False
    for n in ns:
        n_resp = max(2, round(response_ratio * n))
        prompt, response = bench_states(layers, n, n_resp, d, rank=rank, noise=noise, seed=seed + n)
        cases = {
            "prompt entropy": (
                lambda: naive_matrix_entropy(prompt),
                lambda: matrix_entropy(torch.from_numpy(prompt).to(dev)).cpu().numpy(),
            ),
            "proxy (trace)": (
                lambda: naive_conditional_entropy(prompt, response),
                lambda: (
                    conditional_entropy(torch.from_numpy(prompt).to(dev), torch.from_numpy(response).to(dev))
                    .cpu()
                    .numpy()
                ),
            ),
        }
        for case, (naive_fn, fast_fn) in cases.items():
            if not naive_warm:
                naive_fn()
                naive_warm = True
            naive_times, naive_out = _timed(naive_fn, repeats, lambda: None)
            fast_fn()
            sync()
            if device == "cuda":
                torch.cuda.reset_peak_memory_stats(dev)
            fast_times, fast_out = _timed(fast_fn, repeats, sync)
            row = {
                "case": case,
                "n": n,
                "n_response": n_resp if case != "prompt entropy" else 0,
                "layers": layers,
                "d": d,
                "naive_s": min(naive_times),
                "entprobe_s": min(fast_times),
            }
            row["speedup"] = row["naive_s"] / row["entprobe_s"] if row["entprobe_s"] > 0 else float("inf")
            row["max_abs_diff"] = float(np.max(np.abs(np.asarray(naive_out) - np.asarray(fast_out))))
            row["agree"] = bool(row["max_abs_diff"] <= AGREEMENT_TOL)
            if device == "cuda":
                row["cuda_peak_mib"] = torch.cuda.max_memory_allocated(dev) / 2**20
            rows.append(row)
            times[f"{case}/n={n}"] = {"naive": naive_times, "entprobe": fast_times}
            if progress is not None:
                progress(row)
    return BenchResult(
        rows=pd.DataFrame(rows),
        device=device,
        device_name=device_name,
        repeats=repeats,
        torch_threads=torch.get_num_threads(),
        max_rss_mib=_max_rss_mib(),
        times=times,
    )


def format_bench_table(result: BenchResult) -> str:
    """The benchmark as a fixed-width text table."""
    cols = ["case", "n", "n_resp", "naive s", "entprobe s", "speed-up", "max |diff|"]
    cuda = "cuda_peak_mib" in result.rows.columns
    if cuda:
        cols.append("GPU peak MiB")
    lines = []
    for r in result.rows.itertuples(index=False):
        cells = [
            r.case,
            str(r.n),
            str(r.n_response) if r.n_response else "-",
            f"{r.naive_s:.4f}",
            f"{r.entprobe_s:.4f}",
            f"{r.speedup:.1f}x",
            f"{r.max_abs_diff:.1e}" + ("" if r.agree else " !"),
        ]
        if cuda:
            cells.append(f"{r.cuda_peak_mib:.0f}")
        lines.append(cells)
    widths = [max(len(c), *(len(row[i]) for row in lines)) if lines else len(c) for i, c in enumerate(cols)]

    def fmt(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    out = [fmt(cols), fmt(["-" * w for w in widths])] + [fmt(row) for row in lines]
    return "\n".join(out)


# ------------------------------------------------------------------ long sequences (issue 12)


def _peak_rss_child(code: str) -> tuple[float, dict[str, Any]]:
    """Run ``code`` in a fresh Python (same threads and environment) and return its
    peak resident set (MiB) and the JSON it prints last."""
    import json
    import subprocess
    import sys

    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import resource, json\n" + code + "\nprint(json.dumps(result))\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = out.stdout.strip().splitlines()
    return float(lines[-1]), json.loads(lines[-2])


def run_long_bench(
    *,
    ns: Sequence[int] = (576, 1152, 2048, 4096),
    d: int = 2048,
    layers: int = 1,
    topk: int = 128,
    memory_layers: int = 30,
    memory_n: int = 4096,
    max_memory: int | None = None,
    device: str = "cpu",
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> pd.DataFrame:
    """Exact path of 0.1.0 vs now, per layer, and the certified ``topk`` approximation.

    Per ``n``, on the same :func:`bench_states` prompt states (``layers`` of them,
    in one process, side by side): seconds per layer of
    :func:`~entprobe.validation.baseline_v010.v010_matrix_entropy` (the 0.1.0 path: full
    eigendecomposition, full sort) and of :func:`entprobe.estimators.matrix_entropy`,
    their largest difference in bits, and ``spectrum="topk:K"``: seconds per layer and
    interval width (bits). ``route``: ``scatter`` where ``d < n`` (the PCA solves the
    ``d x d`` eigenproblem), ``gram`` otherwise. ``f32_eig_s`` / ``f64_eig_s`` /
    ``f32_err_bits``: the kernel's eigenvalues in float32 against float64 (the same
    normalised kernel of the first layer; seconds, and the entropy error in bits), the
    lower-precision option measured. Then one row ``memory``: the peak resident memory
    of a fresh process running ``matrix_entropy`` on ``memory_layers x memory_n x d``
    float32 states (as captured) with ``max_memory``, against that budget (CPU only).

    ``device="cuda"``: the estimators and the 0.1.0 path run on the GPU (float64),
    timed with synchronisation; the memory row is then skipped.
    """
    import torch

    from entprobe.estimators import default_max_memory, matrix_entropy

    from .baseline_v010 import v010_matrix_entropy

    dev = torch.device(device)

    def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        out = fn()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        return out, (time.perf_counter() - t0) / layers

    rows = []
    for n in ns:
        prompt, _ = bench_states(layers, n, 2, d, seed=n)
        x = torch.from_numpy(prompt).to(dev)
        old, t_old = timed(lambda: v010_matrix_entropy(x).cpu().numpy())
        new, t_new = timed(lambda: np.asarray(matrix_entropy(x).cpu()))
        approx, t_approx = timed(lambda: matrix_entropy(x, spectrum=f"topk:{topk}"))
        lo, hi = approx.lower.cpu().numpy(), approx.upper.cpu().numpy()
        row = {
            "n": n,
            "d": d,
            "layers": layers,
            "device": str(dev),
            "route": "scatter" if d < n else "gram",
            "v010_s": t_old,
            "new_s": t_new,
            "speedup": t_old / t_new,
            "max_abs_diff": float(np.max(np.abs(old - new))),
            "topk": topk,
            "topk_s": t_approx,
            "topk_speedup_vs_new": t_new / t_approx,
            "topk_width": float(np.max(hi - lo)),
            "topk_contains": bool(np.all((lo <= new) & (new <= hi))),
            **_float32_eigenvalues(x[0], dev),
        }
        rows.append(row)
        if progress is not None:
            progress(row)
    if dev.type != "cpu" or memory_n <= 0:
        return pd.DataFrame(rows)
    budget = max_memory if max_memory is not None else default_max_memory("cpu")
    code = (
        "import numpy as np, torch\n"
        "from entprobe.estimators import matrix_entropy\n"
        f"x = torch.from_numpy(np.random.default_rng(0).standard_normal(({memory_layers}, {memory_n}, {d}), dtype=np.float32))\n"
        "rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0\n"
        f"h = matrix_entropy(x, max_memory={budget})\n"
        "result = {'states_mib': x.numel() * 4 / 2**20, 'rss_before_mib': rss0}\n"
    )
    peak, info = _peak_rss_child(code)
    row = {
        "n": memory_n,
        "d": d,
        "layers": memory_layers,
        "memory_peak_mib": peak,
        "memory_budget_mib": budget / 2**20,
        **info,
        "under_budget": bool(peak - info["rss_before_mib"] <= budget / 2**20),
    }
    rows.append(row)
    if progress is not None:
        progress(row)
    return pd.DataFrame(rows)


def _float32_eigenvalues(states: Any, dev: Any) -> dict[str, float]:
    """Seconds of ``eigvalsh`` on one normalised kernel in float64 and in float32, and the
    entropy error (bits) of the float32 spectrum: what a lower-precision option would
    trade (measured, not offered as a default)."""
    import torch

    from entprobe.estimators._entropy import centred_states
    from entprobe.estimators._geometry import (
        gaussian_kernel,
        median_bandwidth,
        squared_distances,
        state_geometry,
    )
    from entprobe.estimators._spectrum import normalised_kernel, renyi_from_eigenvalues

    xc, _ = centred_states(states[None])
    proj, tol = state_geometry(xc, 64)
    d2 = squared_distances(proj)
    bw = median_bandwidth(d2, tol, sigma=None, sigma_scale=1.0)
    a = normalised_kernel(gaussian_kernel(d2, bw.sigma, out=d2), eps=1e-6, inplace=True)
    out: dict[str, float] = {}
    values = {}
    for name, dtype in (("f64", torch.float64), ("f32", torch.float32)):
        m = a.to(dtype)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        lam = torch.linalg.eigvalsh(m)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        out[f"{name}_eig_s"] = time.perf_counter() - t0
        values[name] = float(renyi_from_eigenvalues(lam.to(torch.float64), 1.01)) / math.log(2.0)
    out["f32_err_bits"] = abs(values["f32"] - values["f64"])
    return out


_LOAD_WORKLOAD = (
    "import time, numpy as np, torch\n"
    "from entprobe.estimators import matrix_entropy, conditional_entropy\n"
    "x = torch.from_numpy(np.random.default_rng(0).standard_normal((29, {n}, 512)))\n"
    "t = time.perf_counter()\n"
    "matrix_entropy(x); conditional_entropy(x[:, : {n} // 2], x[:, {n} // 2 :])\n"
    "print(time.perf_counter() - t)\n"
)


def run_load_bench(
    *, n: int = 300, command: Sequence[str] | None = None, timeout: float = 600.0
) -> pd.DataFrame:
    """Wall time of one workload under three thread policies, quiet and under load, side by side.

    Policies (each a fresh process, so the policy is set before torch starts):
    ``v0.1.0`` (torch's default threads, OpenMP's default active wait, as entprobe 0.1.0),
    ``policy`` (:func:`entprobe._threads.apply_thread_policy` with no flag, the CLI's
    default now) and ``threads=1``. Load: one ``yes > /dev/null`` process started here,
    pinned to core 0 where ``taskset`` exists, stopped after the runs. The workload is
    29 layers x ``n`` tokens x 512 (prompt entropy and proxy), or ``command`` (e.g. the
    demo) timed from outside.

    Returns:
        Rows ``load, policy, seconds`` (``nan`` for a run past ``timeout``).
    """
    import os
    import shutil
    import subprocess
    import sys

    policies = {
        "v0.1.0": {"OMP_WAIT_POLICY": None},
        "policy": {},
        "threads=1": {"ENTPROBE_THREADS": "1"},
    }
    rows = []
    for load in ("quiet", "one-core load"):
        bg = None
        if load != "quiet":
            pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
            bg = subprocess.Popen([*pin, "yes"], stdout=subprocess.DEVNULL)
        try:
            for name, env_over in policies.items():
                env = {
                    k: v
                    for k, v in os.environ.items()
                    if k
                    not in (
                        "OMP_NUM_THREADS",
                        "OPENBLAS_NUM_THREADS",
                        "MKL_NUM_THREADS",
                        "OMP_WAIT_POLICY",
                        "ENTPROBE_THREADS",
                    )
                }
                env.update({k: v for k, v in env_over.items() if v is not None})
                prelude = (
                    ""
                    if name == "v0.1.0"
                    else "from entprobe._threads import apply_thread_policy\napply_thread_policy(None)\n"
                )
                t0 = time.perf_counter()
                try:
                    if command is None:
                        out = subprocess.run(
                            [sys.executable, "-c", prelude + _LOAD_WORKLOAD.format(n=n)],
                            env=env,
                            capture_output=True,
                            text=True,
                            timeout=timeout,
                            check=True,
                        )
                        seconds = float(out.stdout.strip().splitlines()[-1])
                    else:
                        cmd = list(command)
                        if name == "v0.1.0":
                            env["OMP_NUM_THREADS"] = str(os.cpu_count() or 1)  # no policy: every core
                            env["OMP_WAIT_POLICY"] = "ACTIVE"
                        subprocess.run(cmd, env=env, capture_output=True, timeout=timeout, check=True)
                        seconds = time.perf_counter() - t0
                except subprocess.TimeoutExpired:
                    seconds = float("nan")
                rows.append({"load": load, "policy": name, "seconds": seconds})
        finally:
            if bg is not None:
                bg.terminate()
                bg.wait()
    return pd.DataFrame(rows)
