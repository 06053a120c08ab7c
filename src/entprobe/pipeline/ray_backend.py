"""``entprobe probe --backend ray``: one probe run spread over a Ray cluster.

The run is cut as ``--shard K/N`` cuts it (N = the number of workers). Each shard is
one Ray task holding one model replica (``num_gpus=gpus_per_worker``) that runs the
single-process code, :func:`~entprobe.pipeline.load_and_probe` with ``shard=(K, N)``,
into its own store ``<store>.ray/shard-K-of-N.duckdb``. When every shard is done the
shard stores are merged into the requested store (:meth:`ResultStore.merge_from`).

Scheduling, placement and retries are Ray's: a task whose worker dies is
resubmitted by Ray (``max_retries``) and the new attempt resumes from its shard
store, since every sample is written in one transaction and finished samples are
skipped; so nothing is lost and nothing is written twice. Errors of the run itself
(a bad SPEC, an unsupported level) are not retried; the first one is raised as is.
Progress is one bar, fed by the workers through a small Ray actor.

The shard stores are kept: running the same command again (with the same number of
workers) resumes each shard and merges again (rows already merged are duplicates
and skipped).
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BackendError, EntprobeError, MissingDependencyError, ProbeInputError
from ..store import ResultStore
from .options import MODALITY_LEVELS, in_shard
from .probe import RunSummary

__all__ = ["RayRunSummary", "probe_on_ray", "require_ray", "shard_store_path"]

_INSTALL = "pip install 'entprobe[ray]'  (or: pip install 'ray>=2.9')"
#: The keywords of :func:`~entprobe.pipeline.load_and_probe` that are not options.
_INPUTS = ("text_prompts", "image_prompts", "levels", "adapter")
_POLL_SECONDS = 0.2


def require_ray() -> Any:
    """Import Ray, or raise :class:`MissingDependencyError` with the install line."""
    try:
        import ray
    except ImportError as exc:
        raise MissingDependencyError(
            f"--backend ray needs Ray, which is not installed ({exc}); install it with: {_INSTALL}"
        ) from None
    return ray


def shard_store_path(store: str | os.PathLike[str], k: int, n: int) -> Path:
    """Where shard ``k`` of ``n`` keeps its store: ``<store>.ray/shard-k-of-n.duckdb``."""
    store = Path(store)
    return store.parent / f"{store.name}.ray" / f"shard-{k}-of-{n}.duckdb"


@dataclass
class RayRunSummary(RunSummary):
    """A :class:`RunSummary` summed over the shards (each shard's last attempt),
    plus the workers, Ray's attempts per shard and the merge."""

    workers: int = 0
    attempts: dict[int, int] = field(default_factory=dict)
    shard_stores: list[str] = field(default_factory=list)
    merge_report: str = ""

    def report(self, max_failures: int = 5) -> str:
        retried = {k: a for k, a in self.attempts.items() if a > 1}
        lines = [
            f"ray: {self.workers} worker(s), one shard each"
            + (
                f"; retried by Ray: {', '.join(f'shard {k} x{a - 1}' for k, a in sorted(retried.items()))}"
                if retried
                else ""
            )
        ]
        lines.append(super().report(max_failures))
        if self.merge_report:
            lines.append("  merge: " + self.merge_report.replace("\n", "\n  "))
        return "\n".join(lines)


# --- in the workers ----------------------------------------------------------------


class _Progress:
    """The Ray actor the workers report to and the driver polls."""

    def __init__(self) -> None:
        self.done: dict[int, int] = {}
        self.total: dict[int, int] = {}
        self.attempts: dict[int, int] = {}
        self.pids: dict[int, int] = {}
        self.messages: list[str] = []

    def started(self, k: int, pid: int) -> None:
        self.attempts[k] = self.attempts.get(k, 0) + 1
        self.pids[k] = pid

    def planned(self, k: int, total: int, done: int) -> None:
        self.total[k], self.done[k] = total, done

    def wrote(self, k: int) -> None:
        self.done[k] = self.done.get(k, 0) + 1

    def say(self, text: str) -> None:
        self.messages.append(text)

    def snapshot(self) -> dict[str, Any]:
        messages, self.messages = self.messages, []
        return {
            "done": dict(self.done),
            "total": dict(self.total),
            "attempts": dict(self.attempts),
            "pids": dict(self.pids),
            "messages": messages,
        }


class _ReportingStore(ResultStore):
    """A shard's store that tells the progress actor what is planned and written.

    ``done_keys`` is asked once per run, after ``start_run`` (which names the
    levels); each ``write_sample`` is one (sample, level) pair.
    """

    def __init__(self, path: Path, *, progress: Any, k: int, n: int, records: Sequence[Any]) -> None:
        super().__init__(path)
        self._progress, self._k, self._n, self._records = progress, k, n, records
        self._levels: list[str] = []

    def start_run(
        self, run_id: str, model: str, adapter: str, config: Mapping[str, Any], *args: Any, **kwargs: Any
    ) -> Any:
        self._levels = list(config.get("levels", []))
        return super().start_run(run_id, model, adapter, config, *args, **kwargs)

    def done_keys(self, run_id: str, **kwargs: Any) -> set[tuple[str, str, str]]:
        done = super().done_keys(run_id, **kwargs)
        pairs = {
            (rec.dataset, rec.id, level)
            for rec in self._records
            if in_shard(rec.dataset, rec.id, (self._k, self._n))
            for level in self._levels
            if level in MODALITY_LEVELS[rec.modality]
        }
        self._progress.planned.remote(self._k, len(pairs), len(pairs & done))
        return done

    def write_sample(self, *args: Any, **kwargs: Any) -> Any:
        out = super().write_sample(*args, **kwargs)
        self._progress.wrote.remote(self._k)
        return out


def _probe_shard(k: int, n: int, path: str, kwargs: dict[str, Any], progress: Any) -> RunSummary:
    """One shard, in a Ray worker: the single-process probe into the shard's store."""
    from .probe import load_and_probe

    progress.started.remote(k, os.getpid())
    records = [
        rec
        for key in ("text_prompts", "image_prompts")
        for ps in kwargs.get(key, ())
        for rec in getattr(ps, "records", ())
    ]
    store = _ReportingStore(Path(path), progress=progress, k=k, n=n, records=records)
    try:
        kwargs = dict(kwargs)
        return load_and_probe(
            kwargs.pop("model"),
            store,
            shard=(k, n),
            progress=False,
            log=lambda text: progress.say.remote(f"[shard {k}/{n}] {text}"),
            **kwargs,
        )
    finally:
        store.close()


# --- in the driver -----------------------------------------------------------------


def _check_reachable(address: str, timeout: float) -> None:
    """Fail fast on an address nobody listens at (``ray.init`` would retry for minutes)."""
    if address in ("auto", "local"):
        return
    target = address.split("://", 1)[-1]
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise ProbeInputError(f"--address {address!r}: expected HOST:PORT, ray://HOST:PORT or 'auto'")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise BackendError(
            f"cannot reach the Ray cluster at {address} ({exc}); start one with "
            "`ray start --head`, or check the address (the head node's GCS port, default 6379)"
        ) from None


def _connect(ray: Any, address: str | None, timeout: float) -> bool:
    """Connect (or start a local Ray); True when this call started it."""
    if address is not None:
        _check_reachable(address, timeout)
    if ray.is_initialized():
        return False
    try:
        if address is None:
            ray.init(include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise BackendError(
            f"cannot connect to the Ray cluster at {address or 'a new local Ray'}: {exc}"
        ) from None
    return True


def _load_sets(specs: Sequence[Any], limit: int | None) -> list[Any]:
    from ..datasets import PromptSet, load_prompts

    return [s if isinstance(s, PromptSet) else load_prompts(s, limit=limit) for s in specs]


def probe_on_ray(
    *,
    model: str,
    store: str | os.PathLike[str],
    address: str | None = None,
    workers: int | None = None,
    gpus_per_worker: float = 0,
    cpus_per_worker: float = 1,
    max_retries: int = 3,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    connect_timeout: float = 5.0,
    **probe_kwargs: Any,
) -> RayRunSummary:
    """Run :func:`~entprobe.pipeline.load_and_probe` over a Ray cluster, one shard a worker.

    Args:
        model: hub id or folder, loaded in each worker (one replica per worker).
        store: the store that receives the merged results.
        address: a running cluster (``HOST:PORT``, ``ray://HOST:PORT``, ``auto``);
            ``None``: the Ray this process already joined, else a new local one.
        workers: number of shards / model replicas; default: the cluster's GPUs /
            ``gpus_per_worker`` (or CPUs / ``cpus_per_worker``).
        gpus_per_worker, cpus_per_worker: Ray resources of each worker's task.
        max_retries: Ray's retries of a task whose worker died.
        progress: one bar for the whole run, on stderr.
        log: where messages go (default: stderr).
        on_progress: called with the progress snapshot (``done``, ``total``,
            ``attempts``, ``pids`` per shard) at every poll, in the driver.
        probe_kwargs: the other arguments of :func:`load_and_probe` (``text_prompts``,
            ``image_prompts``, ``levels``, ``adapter``, and the options by name or group:
            ``limit``, ``device``, ``estimator`` ...).

    Returns:
        A :class:`RayRunSummary`.

    Raises:
        MissingDependencyError: Ray is not installed.
        BackendError: the cluster cannot be reached, or a worker kept dying.
        ProbeInputError: ``--shard`` given too, or CUDA asked without GPUs per worker.
        EntprobeError: the first error a shard raised (bad SPEC, unsupported level ...).
    """
    from tqdm.auto import tqdm

    from .probe import resolve_options

    say = log or (lambda text: print(text, file=sys.stderr))
    opts = resolve_options(**{k: v for k, v in probe_kwargs.items() if k not in _INPUTS})
    if opts.shard is not None:
        raise ProbeInputError("--shard and --backend ray both split the samples; give one of them")
    probe_kwargs.pop("shard", None)
    device = opts.load.device
    if device.startswith("cuda") and not gpus_per_worker:
        raise ProbeInputError(f"--device {device} with --backend ray needs --gpus-per-worker > 0")
    if device.startswith("cuda:"):
        raise ProbeInputError(
            f"--device {device}: each Ray worker sees only its own GPU(s); use --device cuda"
        )
    if workers is not None and (isinstance(workers, bool) or int(workers) != workers or workers < 1):
        raise ProbeInputError(f"--workers must be a positive integer, got {workers!r}")
    ray = require_ray()
    limit = opts.limit
    # Loaded once here: bad SPECs fail before Ray starts, and workers get the records.
    probe_kwargs["text_prompts"] = _load_sets(probe_kwargs.get("text_prompts") or (), limit)
    probe_kwargs["image_prompts"] = _load_sets(probe_kwargs.get("image_prompts") or (), limit)
    store = Path(store)
    with ResultStore(store):  # fail now if another process writes it
        pass

    started = _connect(ray, address, connect_timeout)
    try:
        if workers is None:
            res = ray.cluster_resources()
            per = gpus_per_worker or cpus_per_worker
            workers = max(1, int(res.get("GPU" if gpus_per_worker else "CPU", 1) // per))
        n = int(workers)
        tracker = ray.remote(num_cpus=0)(_Progress).remote()
        task = ray.remote(_probe_shard).options(
            num_cpus=cpus_per_worker,
            num_gpus=gpus_per_worker,
            max_retries=max_retries,
            retry_exceptions=False,
        )
        paths = [shard_store_path(store, k, n) for k in range(1, n + 1)]
        kwargs_ref = ray.put(dict(probe_kwargs, model=model))
        pending = {task.remote(k, n, str(paths[k - 1]), kwargs_ref, tracker): k for k in range(1, n + 1)}
        summaries = _wait(ray, tqdm, pending, tracker, n, progress, say, on_progress)
        snapshot = ray.get(tracker.snapshot.remote())
    finally:
        if started:
            ray.shutdown()

    with ResultStore(store) as target:
        merged = target.merge_from(paths)
    return _combine(summaries, store, n, snapshot["attempts"], paths, merged.report())


def _wait(
    ray: Any,
    tqdm: Any,
    pending: dict[Any, int],
    tracker: Any,
    n: int,
    progress: bool,
    say: Callable[[str], None],
    on_progress: Callable[[dict[str, Any]], None] | None,
) -> dict[int, RunSummary]:
    summaries: dict[int, RunSummary] = {}
    bar = tqdm(
        total=0,
        unit="pair",
        desc=f"probe on ray ({n} workers)",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=_POLL_SECONDS)
            snap = ray.get(tracker.snapshot.remote())
            for text in snap["messages"]:
                (bar.write if progress else say)(text)
            bar.total = sum(snap["total"].values())
            bar.n = sum(snap["done"].values())
            bar.refresh()
            if on_progress is not None:
                on_progress(snap)
            for ref in ready:
                k = pending.pop(ref)
                summaries[k] = _result(ray, ref, k, n)
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    finally:
        bar.close()
    return summaries


def _result(ray: Any, ref: Any, k: int, n: int) -> RunSummary:
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, EntprobeError):
            raise cause from None
        raise BackendError(f"shard {k}/{n} failed: {cause or exc}") from None
    except (ray.exceptions.WorkerCrashedError, ray.exceptions.RayError) as exc:
        raise BackendError(
            f"shard {k}/{n}: its worker died and Ray's retries ran out ({type(exc).__name__}); "
            "what it wrote is kept in its shard store: run the same command again to resume"
        ) from None


def _combine(
    summaries: dict[int, RunSummary],
    store: Path,
    n: int,
    attempts: dict[int, int],
    paths: list[Path],
    merge_report: str,
) -> RayRunSummary:
    run_ids = {s.run_id for s in summaries.values()}
    if len(run_ids) != 1:  # cannot happen unless the shards saw different inputs
        raise BackendError(f"the shards wrote different runs {sorted(run_ids)}")
    out = RayRunSummary(
        run_id=run_ids.pop(),
        store=str(store),
        workers=n,
        attempts=attempts,
        shard_stores=[str(p) for p in paths],
        merge_report=merge_report,
    )
    for s in summaries.values():
        out.n_records += s.n_records
        out.n_pending += s.n_pending
        out.n_skipped += s.n_skipped
        out.n_ok += s.n_ok
        out.n_failed += s.n_failed
        out.failures.extend(s.failures)
        out.model_seconds += s.model_seconds
        out.estimate_seconds += s.estimate_seconds
        out.wall_seconds = max(out.wall_seconds, s.wall_seconds)
    return out
