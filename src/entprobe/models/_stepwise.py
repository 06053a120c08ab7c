"""Step-wise image generation (MaskGIT, MAR, rectified flow): one shared mechanism.

These generators run the LLM several times over the image positions, so "the
response" needs a definition. The **default response** is one teacher-forced pass of
the clean final response through the LLM (final VQ ids for MaskGIT; all tokens
revealed for MAR; the clean latent at the data end of the flow, with its timestep),
conditional branch only: the same definition as the autoregressive families, so
results compare across families. Optionally (``--image-response-step``) the
conditional branch's states at chosen denoising steps are kept as well, and the
pipeline writes them per step (``step_metrics`` in the store).

A family subclasses :class:`StepwiseImageAdapter` and implements four hooks:

- :meth:`~StepwiseImageAdapter.image_gen_prompt`: build the prompt (cond and uncond);
- :meth:`~StepwiseImageAdapter.denoise`: run the loop, wrapping each LLM forward in
  ``with self.llm_call(step=k, branches={"cond": rows, ...}, positions=...)``;
- :meth:`~StepwiseImageAdapter.teacher_force`: one LLM forward over
  ``[prompt; clean response]`` (conditional row only) inside
  ``with self.llm_call(phase="teacher-forced", branches={"cond": slice(0, 1)})``,
  returning the roles of its positions;
- :meth:`~StepwiseImageAdapter.n_image_steps`.

Calls are found by their tags (capture does not count calls), so a variable number of
forwards per step (CFG intervals, separate CFG passes) cannot misalign states.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from ..capture import CallTag, Recorder, Role, capture
from .base import Encoded, Generation, GenerationSettings, ModelAdapter
from .requests import Request, ResponseSteps, parse_response_steps, resolve_response_steps

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

__all__ = [
    "ResponseSteps",
    "StepwiseImageAdapter",
    "StepwiseOutput",
    "parse_response_steps",
    "resolve_response_steps",
]


@dataclass
class StepwiseOutput:
    """What a family's denoising loop returns.

    Attributes:
        response_ids: ``(n_response,)`` final discrete ids (VQ codes), or an empty
            tensor for continuous responses.
        image: the decoded image, when the family decodes.
        clean: what :meth:`StepwiseImageAdapter.teacher_force` needs besides the
            prompt (e.g. the clean latent and its timestep); default None.
    """

    response_ids: torch.Tensor
    image: Image.Image | None = None
    clean: Any = None


class StepwiseImageAdapter(ModelAdapter):
    """Base of the step-wise image generators; see the module docstring."""

    #: What the default (teacher-forced) response is for this family, in words;
    #: recorded in the run configuration and shown in the report.
    image_response = "teacher-forced pass of the clean final response"
    #: The generator's kind, e.g. "MaskGIT", "MAR", "rectified flow" (each family sets
    #: it; any string, even "", marks a step-wise generator: see ``ModelAdapter``).
    image_generator = ""

    _recorder: Recorder | None = None
    _wanted: tuple[int, ...] = ()

    # --- the family's hooks ---------------------------------------------------------
    @abstractmethod
    def n_image_steps(self, settings: GenerationSettings) -> int:
        """Number of denoising steps the generator runs with ``settings``."""

    @abstractmethod
    def image_gen_prompt(self, text: str, settings: GenerationSettings) -> Any:
        """The family's prompt for image generation (conditional and unconditional)."""

    @abstractmethod
    def denoise(self, prompt: Any, settings: GenerationSettings) -> StepwiseOutput:
        """Run the denoising loop; each LLM forward inside :meth:`llm_call`."""

    @abstractmethod
    def teacher_force(self, prompt: Any, out: StepwiseOutput) -> tuple[list[Role], torch.Tensor | None]:
        """One LLM forward over ``[prompt; clean response]``, conditional row only,
        inside ``self.llm_call(phase="teacher-forced", branches={"cond": slice(0, 1)})``.

        Returns:
            ``(roles, input_ids)``: one role per position (response positions
            ``GENERATED_IMAGE``), and the ids where the sequence has them.
        """

    # --- plumbing -------------------------------------------------------------------
    def llm_call(
        self,
        *,
        step: int | None = None,
        branches: dict[str, Any] | None = None,
        positions: Any = None,
        phase: str = "generation",
    ):
        """Context manager around one LLM forward: tags it for the capture; the
        states of steps nobody asked for are counted and dropped."""
        if self._recorder is None:
            return nullcontext()
        keep = phase != "generation" or step in self._wanted
        return self._recorder.tag(step=step, branches=branches, positions=positions, phase=phase, keep=keep)

    def llm_calls(self, tag_of: Callable[[dict[str, Any]], dict[str, Any] | None]):
        """Context manager for a loop the adapter does not own (an upstream generator
        running several LLM forwards per step): ``tag_of(kwargs)`` gets the keywords
        the first decoder layer was called with and returns the :meth:`llm_call`
        arguments for that forward (``step``, ``branches``, ``positions``, ``phase``)
        or None, e.g. the branch told apart by which KV cache the adapter passed in."""
        rec = self._recorder
        if rec is None:
            return nullcontext()

        def tagger(args: tuple, kwargs: dict) -> CallTag | None:
            found = tag_of(kwargs)
            if found is None:
                return None
            phase, step = found.get("phase", "generation"), found.get("step")
            keep = phase != "generation" or step in self._wanted
            return CallTag(step, dict(found.get("branches") or {}), found.get("positions"), phase, keep)

        return rec.tagging(tagger)

    def image_response_config(self, steps: ResponseSteps, settings: GenerationSettings) -> dict[str, Any]:
        """The response definition recorded in the run configuration."""
        return {
            "default": self.image_response,
            "generator": self.image_generator,
            "n_steps": self.n_image_steps(settings),
            "steps": steps if isinstance(steps, str) else list(steps),
            "step_states": "conditional branch, response positions, in that step's forward; "
            "prompt rows from the teacher-forced pass",
        }

    def forward_encoded(
        self, run: Any, roles: Sequence[Role], input_ids: torch.Tensor | None = None
    ) -> Encoded:
        """States of one LLM forward (``run()``, batch of one) with its roles: for the
        prompt levels and teacher-forced text passes of upstream families.

        Raises:
            RuntimeError: ``run`` did not run the LLM exactly once.
        """
        with torch.no_grad(), capture(self.model, self.layers_path) as rec:
            run()
        if rec.n_calls != 1:
            raise RuntimeError(f"{self.name}: expected one LLM forward, got {rec.n_calls}")
        states = rec.states(0)[:, 0]
        if len(roles) != states.shape[-2]:
            raise RuntimeError(f"{self.name}: {len(roles)} roles for {states.shape[-2]} positions")
        ids = None if input_ids is None else input_ids.reshape(-1).to("cpu")
        return Encoded(states, list(roles), ids)

    @contextmanager
    def _recording(self, wanted: tuple[int, ...]) -> Iterator[Recorder]:
        with capture(self.model, self.layers_path, input_name=self.layers_input) as rec:
            self._recorder, self._wanted = rec, wanted
            try:
                yield rec
            finally:
                self._recorder, self._wanted = None, ()

    def image_generation(self, request: Request, keep_generation_states: bool = False) -> Generation:
        """Generate an image; the response is the teacher-forced clean final response,
        plus the states at ``request.response_steps`` (see :func:`parse_response_steps`)."""
        self.require("image-gen")
        text, settings = request.text, request.settings
        n_steps = self.n_image_steps(settings)
        wanted = resolve_response_steps(request.response_steps, n_steps)
        with torch.no_grad(), self._recording(wanted) as rec:
            prompt = self.image_gen_prompt(text, settings)
            out = self.denoise(prompt, settings)
            n_generation = rec.n_calls
            roles, input_ids = self.teacher_force(prompt, out)
        forced = rec.find(phase="teacher-forced")
        if len(forced) != 1 or rec.n_calls != n_generation + 1:
            raise RuntimeError(
                f"{self.name}: teacher_force must run exactly one tagged LLM forward "
                f"(found {len(forced)} tagged, {rec.n_calls - n_generation} run)"
            )
        # A family whose prompt sits in a KV cache (BAGEL) tags those forwards
        # phase="prompt"; the teacher-forced forward then covers the response only.
        parts = [rec.branch_states(c, "cond")[:, 0] for c in rec.find(phase="prompt", branch="cond")]
        states = torch.cat([*parts, rec.branch_states(forced[0], "cond")[:, 0]], dim=-2)
        if len(roles) != states.shape[-2]:
            raise RuntimeError(f"{self.name}: {len(roles)} roles for {states.shape[-2]} positions")
        if Role.GENERATED_IMAGE not in roles:
            raise RuntimeError(f"{self.name}: the teacher-forced pass has no GENERATED_IMAGE positions")
        step_states = {}
        for k in wanted:
            calls = rec.find(step=k, branch="cond", phase="generation")
            if len(calls) != 1:
                raise RuntimeError(
                    f"{self.name}: step {k} has {len(calls)} conditional LLM forwards; expected 1"
                )
            step_states[k] = rec.branch_states(calls[0], "cond", response_only=True)[:, 0]
        ids = None if input_ids is None else input_ids.reshape(-1).to("cpu")
        return Generation(
            encoded=Encoded(states, list(roles), ids),
            n_prompt_tokens=roles.index(Role.GENERATED_IMAGE),
            response_ids=out.response_ids.reshape(-1).to("cpu"),
            image=out.image,
            step_states=step_states or None,
            n_steps=n_steps,
            model_calls={"generation": n_generation, "teacher-forced": 1},
        )
