"""Executing a :class:`~entprobe.pipeline.plan.ProbePlan`: batches -> requests -> states.

Per batch (consecutive records of one modality), each model mode runs once over the
records that need it, through :meth:`ModelAdapter.run
<entprobe.models.base.ModelAdapter.run>` with typed
:class:`~entprobe.models.requests.Request` objects: the text generation (its
teacher-forced pass also serves the prompt level), the prompt pass of the records
without text generation, then the image generation. A batched call that raises is
retried one request at a time, so only the samples that fail alone are recorded as
failed. Each (sample, level) whose states exist goes to the estimation queue
(:mod:`entprobe.pipeline._overlap`) and, once estimated, to the
:class:`~entprobe.pipeline.writer.SampleWriter`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..capture import Role
from ..errors import StoreError
from ..models.requests import Request
from ..store.grams import safe_name
from ._overlap import EstimationQueue, Job
from .estimate import LevelEstimate, LevelStates, estimate_level
from .plan import ProbePlan, WorkItem
from .summary import RunSummary, SampleFailure
from .writer import SampleWriter

__all__ = ["Runner", "batches"]


def batches(work: Sequence[WorkItem], size: int) -> Iterable[list[WorkItem]]:
    """Consecutive records of one modality, at most ``size`` at a time (order kept)."""
    batch: list[WorkItem] = []
    for item in work:
        if batch and (len(batch) >= size or item.record.modality != batch[0].record.modality):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


@dataclass
class _Ready:
    """A work item whose input is loaded: the record, its pending levels, its image."""

    record: Any
    levels: tuple[str, ...]
    image: Any = None


@dataclass
class _Pending:
    """What comes back with an estimation job: whose it is and what to write with it."""

    record: Any
    level: str
    info: dict[str, Any]
    batch: int
    n_steps: int | None = None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _nonfinite_layers(states: torch.Tensor) -> list[int]:
    bad = ~torch.isfinite(states)
    per_layer = bad.reshape(bad.shape[0], -1).any(dim=1)
    return [int(i) for i in torch.nonzero(per_layer).flatten().tolist()]


def check_states(states: torch.Tensor, what: str) -> None:
    """:class:`SampleFailure` naming the layers of ``states`` that hold NaN or Inf."""
    bad = _nonfinite_layers(states)
    if bad:
        shown = bad if len(bad) <= 10 else bad[:10] + ["..."]
        raise SampleFailure(f"non-finite hidden states ({what}) at layer(s) {shown}")


@dataclass
class Runner:
    """Runs the model over a plan's work, batch by batch; see the module docstring."""

    adapter: Any
    plan: ProbePlan
    writer: SampleWriter
    summary: RunSummary
    final_norm: torch.nn.Module | None = None
    queue: EstimationQueue | None = field(default=None, init=False)
    batch_index: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        options = self.plan.options
        self.queue = EstimationQueue(self._estimate, overlap=options.overlap, device=self.adapter.device)

    # --- per batch --------------------------------------------------------------------
    def process_batch(self, items: Sequence[WorkItem]) -> None:
        """Probe records of one modality together (see the module docstring).

        Before the model starts on this batch, the estimation of batches older than
        the previous one is finished and written, so at most two batches' states are
        held (the one in the model, the one being estimated).
        """
        settings = self.plan.options.generation
        self.batch_index += 1
        current = self.batch_index
        self._write_finished(keep=lambda job: job.tag.batch >= current - 1)
        ready = [x for x in (self._load_input(item) for item in items) if x is not None]

        texts = [x for x in ready if "text-gen" in x.levels]
        gens = self._run_model(
            texts, "text-gen", lambda x: Request("text-gen", x.record.text, x.image, settings)
        )
        gen_of = {id(texts[i].record): out for i, out in gens.items()}
        to_encode = [x for x in ready if "prompt" in x.levels and id(x.record) not in gen_of]
        encoded = self._run_model(
            to_encode, "prompt", lambda x: Request("prompt", x.record.text, x.image, settings)
        )
        enc_of = {id(to_encode[i].record): out for i, out in encoded.items()}
        for x in ready:
            if "prompt" in x.levels:
                gen = gen_of.get(id(x.record))
                # The teacher-forced pass already holds the prompt's states.
                prompt = (gen[0].prompt, 0.0) if gen is not None else enc_of.get(id(x.record))
                if prompt is not None:
                    self._prompt_level(x.record, *prompt)
            if id(x.record) in gen_of:
                self._response_level(x.record, "text-gen", *gen_of[id(x.record)])
        gens = gen_of = encoded = enc_of = None  # type: ignore[assignment]
        self._write_finished()

        steps = self.plan.options.image_response_steps
        images = [x for x in ready if "image-gen" in x.levels]
        made = self._run_model(
            images,
            "image-gen",
            lambda x: Request("image-gen", x.record.text, settings=settings, response_steps=steps),
        )
        for i, out in made.items():
            self._response_level(images[i].record, "image-gen", *out)
        self._write_finished()

    def finish(self) -> None:
        """Wait for the estimation still running and write it."""
        if self.queue is not None:
            self._write(self.queue.drain())

    def close(self) -> None:
        if self.queue is not None:
            self.queue.close()

    def _load_input(self, item: WorkItem) -> _Ready | None:
        """The record with its image loaded and its text checked; None (each pending
        level recorded as failed) when the input is unusable."""
        rec = item.record
        try:
            if rec.modality == "image":
                try:
                    return _Ready(rec, item.levels, rec.load_image(mode=self.adapter.image_mode))
                except Exception as exc:
                    raise SampleFailure(f"unreadable image: {exc}") from exc
            self._check_text(rec)
            return _Ready(rec, item.levels)
        except SampleFailure as exc:
            for level in item.levels:
                self.writer.failed(self._row(rec, level, {}), exc)
            return None

    def _check_text(self, rec: Any) -> None:
        if not rec.text or not rec.text.strip():
            raise SampleFailure("empty prompt")
        max_context = self.adapter.max_context
        n = self.plan.lengths.get((rec.dataset, rec.id))
        if max_context is not None and n is not None and n > max_context:
            raise SampleFailure(
                f"prompt too long: {n} tokens, more than the model's context of {max_context}"
            )

    # --- the model --------------------------------------------------------------------
    def _run_model(
        self, items: list[_Ready], level: str, request_of: Callable[[_Ready], Request]
    ) -> dict[int, tuple[Any, float]]:
        """``{index: (output, seconds)}`` of the items whose request ran: one batched
        call (each item charged an equal share of its time); if it raises (one bad
        sample, out of memory), one call per item, recording those that fail."""
        if not items:
            return {}
        requests = [request_of(x) for x in items]
        device = self.adapter.device
        if len(items) > 1:
            start = time.perf_counter()
            try:
                outs = self.adapter.run(requests)
                _sync(device)
            except StoreError:
                raise
            except Exception:
                self.summary.model_seconds += time.perf_counter() - start
                self.summary.n_batch_retries += 1
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            else:
                seconds = time.perf_counter() - start
                self.summary.model_seconds += seconds
                return {i: (out, seconds / len(items)) for i, out in enumerate(outs)}
        results = {}
        for i, (item, request) in enumerate(zip(items, requests)):
            start = time.perf_counter()
            try:
                out = self.adapter.run([request])[0]
                _sync(device)
            except StoreError:
                raise
            except Exception as exc:
                seconds = time.perf_counter() - start
                self.summary.model_seconds += seconds
                self.writer.failed(self._row(item.record, level, {"model_seconds": seconds}), exc)
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                continue
            seconds = time.perf_counter() - start
            self.summary.model_seconds += seconds
            results[i] = (out, seconds)
        return results

    # --- levels -------------------------------------------------------------------------
    def _last_layer(self, states: torch.Tensor) -> torch.Tensor:
        """``--last-layer normed``: the final norm applied to the last layer's states
        (``(n_layers + 1, n, d)``; the norm acts per token, so applying it to the
        selected tokens equals selecting from the normed sequence)."""
        if self.final_norm is None:
            return states
        with torch.no_grad():
            last = self.final_norm(states[-1])
        return torch.cat([states[:-1], last.to(states.dtype).unsqueeze(0)], dim=0)

    def _prompt_level(self, rec: Any, enc: Any, model_seconds: float) -> None:
        info: dict[str, Any] = {"model_seconds": model_seconds}
        include_special = self.plan.options.include_special
        keep = ((Role.IMAGE,) if rec.modality == "image" else (Role.TEXT,)) + (
            (Role.SPECIAL,) if include_special else ()
        )
        try:
            states = self._last_layer(enc.select(keep))
            info["n_prompt_tokens"] = int(states.shape[-2])
            if states.shape[-2] == 0:
                raise SampleFailure("the prompt has no content tokens")
            check_states(states, "prompt")
        except StoreError:
            raise
        except Exception as exc:
            self.writer.failed(self._row(rec, "prompt", info), exc)
            return
        self._submit(rec, "prompt", LevelStates(states), info)

    def _response_level(self, rec: Any, level: str, gen: Any, model_seconds: float) -> None:
        info: dict[str, Any] = {"model_seconds": model_seconds, "generated_text": gen.text}
        options = self.plan.options
        try:
            if level == "image-gen" and gen.image is not None and options.save_images is not None:
                info["image_path"] = self._save_image(rec, gen.image)
            prompt_states = self._last_layer(gen.prompt.content(include_special=options.include_special))
            response_states = self._last_layer(gen.response_states())
            info["n_prompt_tokens"] = int(prompt_states.shape[-2])
            info["n_response_tokens"] = int(response_states.shape[-2])
            if response_states.shape[-2] == 0:
                raise SampleFailure("generation yielded no response tokens")
            if prompt_states.shape[-2] == 0:
                raise SampleFailure("the prompt has no content tokens")
            check_states(prompt_states, "prompt")
            check_states(response_states, "response")
            states = torch.cat([prompt_states, response_states], dim=-2)
            steps = self._step_states(gen, prompt_states)
        except StoreError:
            raise
        except Exception as exc:
            self.writer.failed(self._row(rec, level, info), exc)
            return
        n_steps = gen.n_steps if steps else None
        self._submit(rec, level, LevelStates(states, int(prompt_states.shape[-2]), steps), info, n_steps)

    def _step_states(self, gen: Any, prompt_states: torch.Tensor) -> dict[int, torch.Tensor]:
        """Per requested denoising step: ``[prompt; response at that step]`` states."""
        out: dict[int, torch.Tensor] = {}
        for step, response in sorted((gen.step_states or {}).items()):
            response = self._last_layer(response.to(prompt_states.device))
            check_states(response, f"response at step {step}")
            out[step] = torch.cat([prompt_states, response], dim=-2)
        return out

    def _save_image(self, rec: Any, image: Any) -> str:
        folder = Path(self.plan.options.save_images) / safe_name(self.plan.gram_id) / safe_name(rec.dataset)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{safe_name(rec.id)}.png"
        tmp = folder / f".{path.name}.{os.getpid()}.tmp"
        try:
            image.save(tmp, format="PNG")
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
        return str(path.resolve())

    # --- estimation and writing ------------------------------------------------------------
    def _submit(
        self, rec: Any, level: str, states: LevelStates, info: dict[str, Any], n_steps: int | None = None
    ) -> None:
        assert self.queue is not None
        tensors = (states.states, *states.steps.values())
        pending = _Pending(rec, level, info, self.batch_index, n_steps)
        self.queue.submit(Job(payload=states, tag=pending, tensors=tensors))

    def _estimate(self, states: LevelStates) -> LevelEstimate:
        """On the worker thread: the level's values (and Gram, under --save-grams)."""
        start = time.perf_counter()
        try:
            options = self.plan.options
            return estimate_level(states, options.estimator, keep_gram=options.save_grams is not None)
        finally:
            self.summary.estimate_seconds += time.perf_counter() - start

    def _write_finished(self, keep: Callable[[Job], bool] | None = None) -> None:
        if self.queue is not None:
            self._write(self.queue.finished(keep=keep))

    def _write(self, jobs: list[Job]) -> None:
        for job in jobs:
            pending: _Pending = job.tag
            row = self._row(pending.record, pending.level, pending.info)
            if job.error is not None:
                if isinstance(job.error, StoreError | KeyboardInterrupt | SystemExit):
                    raise job.error
                self.writer.failed(row, job.error)
                continue
            result: LevelEstimate = job.result
            row["estimate_seconds"] = result.seconds
            n_prompt = None if pending.level == "prompt" else int(pending.info["n_prompt_tokens"])
            self.writer.ok(
                row,
                result.values,
                gram=result.gram,
                n_prompt=n_prompt,
                steps=result.steps,
                n_steps=pending.n_steps,
            )

    def _row(self, rec: Any, level: str, info: dict[str, Any]) -> dict[str, Any]:
        """The ``samples`` row of ``(rec, level)`` (without status) with ``info``."""
        return {
            "run_id": self.plan.run_id,
            "dataset": rec.dataset,
            "sample_id": rec.id,
            "level": level,
            "modality": rec.modality,
            "category": rec.category,
            "subcategory": rec.subcategory,
            "length_bucket": self.plan.buckets.get((rec.dataset, rec.id)),
            "n_chars": rec.n_chars,
            "prompt_text": rec.text,
            **info,
        }
