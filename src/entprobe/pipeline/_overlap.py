"""Estimation overlapped with the model: one worker thread, results in submission order.

The probe loop hands each (sample, level) whose states are ready to
:class:`EstimationQueue`; a single worker thread computes its Gram and entropies
while the main thread runs the model on the next batch. Results come back to the
main thread in the order they were submitted, and the main thread alone writes the
store (a DuckDB connection belongs to one thread), one transaction per sample.

On CUDA the worker runs the estimators on its own stream, which first waits for an
event recorded on the model's stream when the job was submitted (so it never reads
states the model has not finished writing); the states are marked as used on that
stream so the caching allocator does not hand their memory to the model early.
(Written for CUDA but unmeasured: no GPU was available when this was built.)

``overlap=False`` runs each job at once, in the main thread (the old behaviour).
torch releases the GIL inside its kernels, so on the CPU the two threads share the
cores; the gain there is the model's own idle moments (tokenising, Python glue).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["EstimationQueue", "Job"]


@dataclass
class Job:
    """One (sample, level) to estimate.

    Attributes:
        payload: what the estimation function takes (states, n_prompt, ...).
        tensors: tensors the job reads (marked for the estimation stream on CUDA).
        tag: anything the caller needs back with the result (record, level, info, batch).
    """

    payload: Any
    tag: Any
    tensors: tuple[torch.Tensor, ...] = ()
    event: Any = None
    future: Future | None = field(default=None, repr=False)
    result: Any = None
    error: BaseException | None = None


class EstimationQueue:
    """Runs ``estimate(job.payload)`` for each submitted job, on a worker thread when
    ``overlap`` is True, and gives the finished jobs back in submission order.

    Attributes:
        wait_seconds: time the main thread spent blocked waiting for estimation.
    """

    def __init__(self, estimate: Callable[[Any], Any], *, overlap: bool, device: torch.device) -> None:
        self._estimate = estimate
        self._pending: deque[Job] = deque()
        self._device = device
        self._stream = None
        self._pool = None
        self.wait_seconds = 0.0
        if overlap:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="entprobe-estimate")
            if device.type == "cuda":
                self._stream = torch.cuda.Stream(device=device)

    def __len__(self) -> int:
        return len(self._pending)

    def submit(self, job: Job) -> None:
        if self._pool is None:
            self._run(job)
        else:
            if self._stream is not None:
                job.event = torch.cuda.Event()
                job.event.record(torch.cuda.current_stream(self._device))
                for t in job.tensors:
                    if t.device.type == "cuda":
                        t.record_stream(self._stream)
            job.future = self._pool.submit(self._run, job)
        self._pending.append(job)

    def _run(self, job: Job) -> None:
        try:
            if self._stream is not None and job.event is not None:
                with torch.cuda.stream(self._stream):
                    self._stream.wait_event(job.event)
                    job.result = self._estimate(job.payload)
                    self._stream.synchronize()
            else:
                job.result = self._estimate(job.payload)
        except BaseException as exc:  # handed back to the main thread, which records it
            job.error = exc
        finally:
            job.payload = None
            job.tensors = ()

    def finished(self, *, keep: Callable[[Job], bool] | None = None) -> list[Job]:
        """The jobs at the head of the queue that are done (non-blocking); with
        ``keep``, also block until no pending job is one for which ``keep`` is False
        (e.g. jobs of batches older than the previous one)."""
        out = []
        while self._pending:
            job = self._pending[0]
            if job.future is not None and not job.future.done():
                if keep is None or all(keep(j) for j in self._pending):
                    break
                start = time.perf_counter()
                job.future.result()
                self.wait_seconds += time.perf_counter() - start
            out.append(self._pending.popleft())
        return out

    def drain(self) -> list[Job]:
        """Block until every job is done; all of them, in order."""
        return self.finished(keep=lambda job: False)

    def close(self) -> None:
        """Stop the worker after the job it is running (pending ones are dropped)."""
        if self._pool is not None:
            for job in self._pending:
                if job.future is not None:
                    job.future.cancel()
            self._pool.shutdown(wait=True)
            self._pool = None
