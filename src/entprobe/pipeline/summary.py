"""What a probe (or re-estimation) run did: :class:`RunSummary`, and how a failed
sample's error is recorded (:class:`SampleFailure`, :func:`error_text`)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["MAX_ERROR", "RunSummary", "SampleFailure", "error_text"]

#: Longest error message kept in the store.
MAX_ERROR = 2000


class SampleFailure(Exception):
    """A sample that cannot be probed; the message is recorded as its error."""


def error_text(exc: BaseException) -> str:
    """The error recorded for a failed sample: the message of a :class:`SampleFailure`,
    else ``"Type: message"``, cut to :data:`MAX_ERROR` characters."""
    text = str(exc) if isinstance(exc, SampleFailure) else f"{type(exc).__name__}: {exc}"
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 3] + "..."


@dataclass
class RunSummary:
    """What a probe (or re-estimation) run did.

    Attributes:
        run_id: the run's id in the store.
        store: the store's path.
        n_records: prompt records in this process's shard.
        n_pending: records that had at least one level left to do.
        n_skipped: (sample, level) pairs already in the store, not redone.
        n_ok, n_failed: (sample, level) pairs written in this session.
        failures: ``(dataset, sample_id, level, error)`` of this session's failures.
        model_seconds: time in the model (loading excluded).
        estimate_seconds: time in the estimators (Gram and entropies); with
            ``overlap`` it runs on a worker thread while the model works.
        wait_seconds: model idle: time the loop waited for the estimation to catch up.
        wall_seconds: the whole loop, store writes and image loading included.
        batch_size, overlap: how the run was batched.
        n_batch_retries: batched model calls that raised and were retried per sample.
    """

    run_id: str
    store: str
    n_records: int = 0
    n_pending: int = 0
    n_skipped: int = 0
    n_ok: int = 0
    n_failed: int = 0
    failures: list[tuple[str, str, str, str]] = field(default_factory=list)
    model_seconds: float = 0.0
    estimate_seconds: float = 0.0
    wait_seconds: float = 0.0
    wall_seconds: float = 0.0
    batch_size: int = 1
    overlap: bool = False
    n_batch_retries: int = 0

    def report(self, max_failures: int = 5) -> str:
        """A few lines for the end of a run: counts, failures, the time split."""
        lines = [
            f"run {self.run_id} -> {self.store}",
            f"  {self.n_records} sample(s) in this shard; {self.n_ok} (sample, level) ok, "
            f"{self.n_failed} failed, {self.n_skipped} already done",
        ]
        for dataset, sample_id, level, error in self.failures[:max_failures]:
            lines.append(f"  failed {dataset}/{sample_id} [{level}]: {error.splitlines()[0][:200]}")
        if len(self.failures) > max_failures:
            lines.append(
                f"  ... and {len(self.failures) - max_failures} more failure(s) (see the samples table)"
            )
        total = max(self.wall_seconds, 1e-9)
        if self.overlap:
            # estimation ran beside the model: the loop's own time is model + waiting + the rest
            other = max(self.wall_seconds - self.model_seconds - self.wait_seconds, 0.0)
            est = f"estimation {self.estimate_seconds:.1f} s on a worker thread, beside the model"
            idle = (
                f"model idle (waiting for estimation) {self.wait_seconds:.1f} s "
                f"({100 * self.wait_seconds / total:.0f}%), estimator idle "
                f"{max(self.wall_seconds - self.estimate_seconds, 0.0):.1f} s"
            )
        else:
            other = max(self.wall_seconds - self.model_seconds - self.estimate_seconds, 0.0)
            est = f"estimation {self.estimate_seconds:.1f} s ({100 * self.estimate_seconds / total:.0f}%)"
            idle = f"model idle during estimation {self.estimate_seconds:.1f} s"
        lines.append(
            f"  time: model {self.model_seconds:.1f} s ({100 * self.model_seconds / total:.0f}%), "
            f"{est}, {idle}, other {other:.1f} s; total {self.wall_seconds:.1f} s "
            f"(batch size {self.batch_size})"
        )
        if self.n_batch_retries:
            lines.append(f"  {self.n_batch_retries} batch(es) raised and were redone one sample at a time")
        return "\n".join(lines)
