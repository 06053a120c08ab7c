"""The contract every model adapter fulfils.

An adapter knows one model family: how to load it (:meth:`ModelAdapter.load_from`),
where its decoder layers are (:attr:`ModelAdapter.layer_paths`), how to build text and
image prompts, how to generate text and images, and how to obtain the response tokens'
states (one teacher-forced pass over ``[prompt; response]``). The pipeline talks to
this interface only, through :meth:`ModelAdapter.run` and a list of
:class:`~entprobe.models.requests.Request` objects: what varies between families
(denoising steps, image options) travels in the request and the class attributes, so
the pipeline never asks which adapter class it holds. Adding a family means one
adapter file, one registry line, a tiny builder and its tests (``docs/adding-a-family.md``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from ..capture import Role, select
from ..errors import ProbeInputError, UnsupportedError
from ._upstream import Upstream
from .requests import GenerationSettings, LoadOptions, Request, ResponseSteps, resolve_response_steps

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

__all__ = [
    "CAPABILITIES",
    "Encoded",
    "Generation",
    "GenerationSettings",
    "LoadOptions",
    "ModelAdapter",
    "Request",
]

#: What an adapter may support. "text-gen" from an image prompt needs both
#: "image-prompt" and "text-gen".
CAPABILITIES = ("text-prompt", "image-prompt", "text-gen", "image-gen")

#: Roles that make up a prompt's content (special/template tokens excluded).
CONTENT_ROLES = (Role.TEXT, Role.IMAGE)


@dataclass
class Encoded:
    """States of one forward pass over one sequence (batch of one).

    Attributes:
        states: ``(n_layers + 1, n_tokens, d_model)``; index 0 = embeddings entering
            the first decoder layer, index i = output of decoder layer i (no final norm).
        roles: one :class:`Role` per position, length ``n_tokens``.
        input_ids: ``(n_tokens,)`` token ids where the sequence has them, else None.
        experts: mixture-of-transformers models: the expert whose weights produced
            each position's states (e.g. BAGEL's ``"und"`` / ``"gen"``), else None.
    """

    states: torch.Tensor
    roles: list[Role]
    input_ids: torch.Tensor | None = None
    experts: list[str] | None = None

    @property
    def n_tokens(self) -> int:
        return int(self.states.shape[-2])

    def select(self, keep: Iterable[Role | str]) -> torch.Tensor:
        """States at the positions whose role is in ``keep``: ``(n_layers + 1, n_kept, d_model)``."""
        return select(self.states, self.roles, keep)

    def content(self, *, include_special: bool = False) -> torch.Tensor:
        """The prompt's content tokens (text and image; special/template too if asked)."""
        keep: tuple[Role, ...] = CONTENT_ROLES + ((Role.SPECIAL,) if include_special else ())
        return self.select(keep)


@dataclass
class Generation:
    """A generated response and the states of the teacher-forced pass over it.

    Attributes:
        encoded: the teacher-forced pass over ``[prompt; response]``. Prompt positions
            carry TEXT / IMAGE / SPECIAL roles, response positions GENERATED_TEXT or
            GENERATED_IMAGE (response markers that are not content, e.g. Emu3's
            end-of-line tokens, are SPECIAL).
        n_prompt_tokens: positions ``[0, n_prompt_tokens)`` are the prompt.
        response_ids: ``(n_response,)`` generated token ids (image tokens for image
            generation), in generation order.
        text: decoded text for text generation.
        image: decoded image for image generation, when the model has a decoder.
        generation_states: optional ``(n_layers + 1, n_steps, d_model)`` states hooked
            *during* generation (conditional branch only) at the response positions
            that went through a forward pass, for checking against ``encoded``.
        step_states: step-wise image generators only, when denoising steps were
            asked for (``--image-response-step``): step (1-based) ->
            ``(n_layers + 1, n_response, d_model)``, the conditional branch's states
            at the response positions in that step's forward.
        n_steps: the generator's number of denoising steps (step-wise generators).
        model_calls: forward passes of the LLM per phase, e.g.
            ``{"generation": 18, "teacher-forced": 1}``.
    """

    encoded: Encoded
    n_prompt_tokens: int
    response_ids: torch.Tensor
    text: str | None = None
    image: Image.Image | None = None
    generation_states: torch.Tensor | None = None
    step_states: dict[int, torch.Tensor] | None = None
    n_steps: int | None = None
    model_calls: dict[str, int] | None = None

    @property
    def prompt(self) -> Encoded:
        """The prompt part of the teacher-forced pass."""
        n = self.n_prompt_tokens
        ids = None if self.encoded.input_ids is None else self.encoded.input_ids[:n]
        experts = None if self.encoded.experts is None else self.encoded.experts[:n]
        return Encoded(self.encoded.states[:, :n], self.encoded.roles[:n], ids, experts)

    def response_states(self) -> torch.Tensor:
        """``(n_layers + 1, n_response_content, d_model)``: the generated content tokens."""
        return self.encoded.select((Role.GENERATED_TEXT, Role.GENERATED_IMAGE))

    @property
    def n_response_tokens(self) -> int:
        return int(self.response_states().shape[-2])


@dataclass
class ModelAdapter(ABC):
    """Base class of the model adapters.

    Subclasses set the class attributes and implement the abstract methods; a method
    for a capability the family lacks raises :class:`UnsupportedError`.

    Attributes:
        model: the loaded ``torch.nn.Module`` (eval mode).
        processor: its tokenizer or processor.
        source: what it was loaded from (hub id or local path).
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    #: ``config.model_type`` values this adapter handles, for auto-detection.
    model_types: ClassVar[tuple[str, ...]] = ()
    #: keys the config must also hold, where several releases share a model_type
    #: (JanusFlow and the original-format Janus-Pro are both ``multi_modality``).
    config_keys: ClassVar[tuple[str, ...]] = ()
    capabilities: ClassVar[frozenset[str]] = frozenset()
    #: capability -> why the family cannot have it (shown by ``entprobe models`` and in errors).
    unsupported: ClassVar[dict[str, str]] = {}
    #: ``_class_name`` values of a diffusers-style ``model_index.json`` this adapter handles,
    #: for auto-detection of checkpoint folders that have no top-level ``config.json``.
    pipeline_classes: ClassVar[tuple[str, ...]] = ()
    #: where the decoder-layer list may be inside ``model`` (dotted paths, tried in
    #: order); the one found is the instance's :attr:`layers_path`.
    layer_paths: ClassVar[tuple[str, ...]] = ()
    #: keyword under which those layers take their input when it is not
    #: ``hidden_states`` (``capture(..., input_name=)``), e.g. ``"packed_query_sequence"``.
    layers_input: ClassVar[str | None] = None
    #: Families whose code lives outside transformers: where it comes from
    #: (``LoadOptions.upstream_src`` points at a checkout; see ``models/_upstream.py``).
    upstream: ClassVar[Upstream | None] = None
    #: The family's own load options (``LoadOptions.extras``): name -> what it does.
    load_extras: ClassVar[Mapping[str, str]] = {}
    #: True when the batched entry points (:meth:`encode_texts`, :meth:`generate_texts`,
    #: ...) run several samples in one forward pass; False when they loop over
    #: single samples (the default implementations), as ``entprobe models`` shows.
    batched: ClassVar[bool] = False

    #: names of the final norm beside the decoder-layer list (the module
    #: ``output_hidden_states`` applies to its last entry), tried in order; None:
    #: the family has no final norm (post-norm encoders), so the last layer's states
    #: are the same either way.
    final_norm_names: ClassVar[tuple[str, ...] | None] = (
        "norm",
        "ln_f",
        "final_layer_norm",
        "final_layernorm",
        "norm_f",
        "final_norm",
    )
    #: False: a family member without a final norm is fine (its last layer's states
    #: are then the same either way).
    final_norm_required: ClassVar[bool] = True

    #: Image generation. ``image_generator``: the step-wise generator's kind
    #: ("MaskGIT", "MAR", "rectified flow"), or None for token-by-token generation
    #: (no denoising steps to probe). ``image_response``: the default response in words.
    #: ``image_options``: the optional :class:`GenerationSettings` the family honours
    #: (``"image_steps"``, ``"image_size"``); others are refused before any work.
    #: the Pillow mode image prompts are handed over in (None: as stored, for families
    #: whose upstream converts itself, e.g. BAGEL composites transparency onto white).
    image_mode: ClassVar[str | None] = "RGB"
    image_generator: ClassVar[str | None] = None
    image_response: ClassVar[str] = ""
    image_options: ClassVar[frozenset[str]] = frozenset()

    model: torch.nn.Module
    processor: Any
    source: str = ""
    extra_identity: dict[str, Any] = field(default_factory=dict)
    #: the dotted path of the decoder-layer list (default: the first of
    #: :attr:`layer_paths` that ``model`` has).
    layers_path: str = field(default="", kw_only=True)

    def __post_init__(self) -> None:
        if not self.layers_path:
            self.layers_path = self._find_layers()

    def _find_layers(self) -> str:
        modules = dict(self.model.named_modules())
        for path in self.layer_paths:
            found = modules.get(path)
            if isinstance(found, torch.nn.ModuleList) and len(found) > 0:
                return path
        from ..errors import ModelLoadError

        raise ModelLoadError(
            f"adapter {self.name!r}: {type(self.model).__name__} has no decoder-layer list at "
            f"{', '.join(self.layer_paths) or '(no layer_paths declared)'}"
        )

    # --- loading -------------------------------------------------------------------
    @classmethod
    def load(cls, source: str, options: LoadOptions | Mapping[str, Any] | None = None, /, **overrides: Any):
        """Load model and processor from a hub id (through the HF cache) or a local path.

        Args:
            source: hub id or local folder (a file for families that ship one).
            options: a :class:`LoadOptions` (or a mapping of its fields).
            overrides: fields of :class:`LoadOptions` to change, or the family's own
                options (:attr:`load_extras`), e.g. ``load(path, dtype="bfloat16")``.

        Raises:
            ProbeInputError: a load option this adapter does not take.
            ModelLoadError: the checkpoint cannot be found or is of another family.
        """
        opts = LoadOptions.of(options, **overrides)
        cls.check_load_options(opts)
        return cls.load_from(str(source), opts)

    @classmethod
    def check_load_options(cls, options: LoadOptions) -> None:
        """Refuse, before anything loads, the options this adapter cannot honour.

        Raises:
            ProbeInputError: ``upstream_src`` for a transformers family, or an
                ``extras`` key that is not in :attr:`load_extras`.
        """
        if options.upstream_src is not None and cls.upstream is None:
            raise ProbeInputError(
                f"--upstream-src: adapter {cls.name!r} does not use upstream code "
                "(it loads through transformers)"
            )
        unknown = sorted(set(options.extras) - set(cls.load_extras))
        if unknown:
            own = ", ".join(sorted(cls.load_extras)) or "none"
            raise ProbeInputError(f"adapter {cls.name!r} takes no load option(s) {unknown}; its own: {own}")

    @classmethod
    @abstractmethod
    def load_from(cls, source: str, options: LoadOptions) -> ModelAdapter:
        """The family's loading (called by :meth:`load` with checked options).

        Raises:
            ModelLoadError: the checkpoint cannot be found or is of another family.
        """

    # --- introspection ----------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def n_layers(self) -> int:
        """Number of decoder layers; captured states have ``n_layers + 1`` entries."""
        return len(self.model.get_submodule(self.layers_path))

    @property
    def max_context(self) -> int | None:
        """Longest sequence the model accepts, or None when unbounded/unknown."""
        return None

    def identity(self) -> dict[str, Any]:
        """Model identity recorded with a run: source, class, model_type, revision, dtype."""
        cfg = getattr(self.model, "config", None)
        return {
            "source": self.source,
            "class": type(self.model).__name__,
            "model_type": getattr(cfg, "model_type", None),
            "commit_hash": getattr(cfg, "_commit_hash", None),
            "dtype": str(next(self.model.parameters()).dtype),
            "n_layers": self.n_layers,
            "n_parameters": sum(p.numel() for p in self.model.parameters()),
            **self.extra_identity,
        }

    def final_norm(self) -> torch.nn.Module | None:
        """The norm applied after the last decoder layer (``--last-layer normed``
        applies it to the last layer's states), or None when the family has none.

        Raises:
            UnsupportedError: the family should have one and none is found beside
                :attr:`layers_path`.
        """
        if self.final_norm_names is None:
            return None
        parent_path = self.layers_path.rpartition(".")[0]
        parent = self.model.get_submodule(parent_path) if parent_path else self.model
        for name in self.final_norm_names:
            mod = getattr(parent, name, None)
            if isinstance(mod, torch.nn.Module):
                return mod
        if not self.final_norm_required:
            return None
        raise UnsupportedError(
            f"adapter {self.name!r}: no final norm ({', '.join(self.final_norm_names)}) beside "
            f"{self.layers_path!r} in {type(self.model).__name__}; --last-layer normed needs one "
            f"(use --last-layer raw)"
        )

    # --- image generation: what the request may ask ----------------------------------
    @classmethod
    def check_generation(cls, settings: GenerationSettings, response_steps: ResponseSteps = "final") -> None:
        """Refuse, before any work, generation options this family does not take:
        ``image_steps`` / ``image_size`` outside :attr:`image_options`, and denoising
        steps from a token-by-token generator.

        Raises:
            ProbeInputError: naming the option.
        """
        bad = [
            k
            for k in ("image_steps", "image_size")
            if getattr(settings, k) is not None and k not in cls.image_options
        ]
        if bad:
            flags = ", ".join("--" + k.replace("_", "-") for k in bad)
            raise ProbeInputError(f"{flags}: adapter {cls.name!r} does not take it (see `entprobe models`)")
        if response_steps != "final" and cls.image_generator is None:
            raise ProbeInputError(
                f"--image-response-step {response_steps!r}: adapter {cls.name!r} generates images "
                "token by token; only step-wise generators (MaskGIT, MAR, flow) have denoising steps"
            )

    def n_image_steps(self, settings: GenerationSettings) -> int | None:
        """Denoising steps of the image generator with ``settings``; None: token by token."""
        return None

    def response_steps(self, steps: ResponseSteps, settings: GenerationSettings) -> tuple[int, ...]:
        """The denoising steps to keep, checked against this generator's number of steps.

        Raises:
            ProbeInputError: steps from a token-by-token generator, or beyond the last step.
        """
        self.check_generation(settings, steps)
        n_steps = self.n_image_steps(settings)
        return () if n_steps is None else resolve_response_steps(steps, n_steps)

    def prompt_config(self, settings: GenerationSettings) -> dict[str, Any] | None:
        """The settings that shape this family's prompt states (e.g. Harmon's image-prompt
        size from ``settings.image_size``), recorded in the run configuration (and so in
        the run id); None when the settings do not reach the prompt (the default)."""
        return None

    def image_response_config(
        self, steps: ResponseSteps, settings: GenerationSettings
    ) -> dict[str, Any] | None:
        """The image response's definition, recorded in the run configuration (and so
        in the run id); None for token-by-token generators, whose response is what
        they generate."""
        return None

    def supports(self, capability: str) -> bool:
        return capability in self.capabilities

    def require(self, capability: str) -> None:
        """Raise :class:`UnsupportedError` before any work if ``capability`` is missing."""
        if capability not in self.capabilities:
            have = ", ".join(sorted(self.capabilities)) or "nothing"
            why = f": {self.unsupported[capability]}" if capability in self.unsupported else ""
            raise UnsupportedError(
                f"adapter {self.name!r} does not support {capability!r} (it supports: {have}){why}"
            )

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Number of tokens of ``text`` alone (no template), for length buckets."""

    # --- prompt level -----------------------------------------------------------------
    @abstractmethod
    def encode_text(self, text: str) -> Encoded:
        """One forward pass over a text prompt (with the model's usual template)."""

    def encode_image(self, image: Image.Image, question: str = "") -> Encoded:
        """One forward pass over an image prompt (image, optionally with a question)."""
        self.require("image-prompt")
        raise NotImplementedError  # pragma: no cover

    # --- response level: the family's hooks ---------------------------------------------
    # A family implements the hooks (one request each, or a batch of them); callers use
    # generate_text / generate_image / run below, which build the requests.
    def text_generation(self, request: Request, keep_generation_states: bool = False) -> Generation:
        """Generate text from ``request.text`` (and ``request.image``) with
        ``request.settings``; then one teacher-forced pass over ``[prompt; response]``.
        ``keep_generation_states``: also keep the states hooked during generation."""
        self.require("text-gen")
        raise NotImplementedError  # pragma: no cover

    def image_generation(self, request: Request, keep_generation_states: bool = False) -> Generation:
        """Generate an image from ``request.text``; only the conditional branch is
        probed. Step-wise generators also keep the states at ``request.response_steps``."""
        self.require("image-gen")
        raise NotImplementedError  # pragma: no cover

    def prompt_pass(self, request: Request) -> Encoded:
        """One forward pass over ``request``'s prompt: :meth:`encode_text`, or
        :meth:`encode_image` with the text as the question. Families whose prompt
        depends on the settings (:meth:`prompt_config`) override it."""
        if request.image is None:
            return self.encode_text(request.text)
        return self.encode_image(request.image, request.text)

    # Batched hooks: one result per request, in order, each exactly what the one-request
    # hook returns for it (padding removed, per-sample random generators), so a sample's
    # numbers do not depend on which batch it lands in. These defaults loop; adapters
    # that batch for real override them and set ``batched = True``. A batch that raises
    # is retried sample by sample by the pipeline, so one bad sample fails alone.
    def encode_texts(self, texts: Sequence[str]) -> list[Encoded]:
        """:meth:`encode_text` of each text."""
        return [self.encode_text(text) for text in texts]

    def encode_images(self, images: Sequence[Image.Image], questions: Sequence[str]) -> list[Encoded]:
        """:meth:`encode_image` of each ``(image, question)`` pair."""
        return [self.encode_image(image, question) for image, question in zip(images, questions, strict=True)]

    def prompt_passes(self, requests: Sequence[Request]) -> list[Encoded]:
        """:meth:`prompt_pass` of each request: one at a time, or, for adapters that
        batch, through their :meth:`encode_texts` / :meth:`encode_images`."""
        if not self.batched:
            return [self.prompt_pass(r) for r in requests]
        texts = [r.text for r in requests]
        if requests[0].image is None:
            return self.encode_texts(texts)
        return self.encode_images([r.image for r in requests], texts)

    def text_generations(self, requests: Sequence[Request]) -> list[Generation]:
        """:meth:`text_generation` of each request (one settings for all)."""
        return [self.text_generation(r) for r in requests]

    def image_generations(self, requests: Sequence[Request]) -> list[Generation]:
        """:meth:`image_generation` of each request (one settings for all)."""
        return [self.image_generation(r) for r in requests]

    # --- calling an adapter -------------------------------------------------------------
    def generate_text(
        self,
        text: str,
        *,
        image: Image.Image | None = None,
        settings: GenerationSettings = GenerationSettings(),
        keep_generation_states: bool = False,
    ) -> Generation:
        """Generate text from a text prompt, or from an image plus question (see
        :meth:`text_generation`)."""
        return self.text_generation(Request("text-gen", text, image, settings), keep_generation_states)

    def generate_image(
        self,
        text: str,
        *,
        settings: GenerationSettings = GenerationSettings(),
        response_steps: ResponseSteps = "final",
        keep_generation_states: bool = False,
    ) -> Generation:
        """Generate an image from a text prompt (see :meth:`image_generation`).

        Raises:
            ProbeInputError: ``response_steps`` from a token-by-token generator, or
                beyond the generator's last step.
        """
        self.response_steps(response_steps, settings)
        request = Request("image-gen", text, settings=settings, response_steps=response_steps)
        return self.image_generation(request, keep_generation_states)

    def generate_texts(
        self,
        texts: Sequence[str],
        *,
        images: Sequence[Image.Image | None] | None = None,
        settings: GenerationSettings = GenerationSettings(),
    ) -> list[Generation]:
        """:meth:`generate_text` of each text (with its image, when ``images`` is given),
        in one batched call."""
        images = list(images) if images is not None else [None] * len(texts)
        return self.text_generations(
            [Request("text-gen", t, im, settings) for t, im in zip(texts, images, strict=True)]
        )

    def generate_images(
        self,
        texts: Sequence[str],
        *,
        settings: GenerationSettings = GenerationSettings(),
        response_steps: ResponseSteps = "final",
    ) -> list[Generation]:
        """:meth:`generate_image` of each text, in one batched call."""
        self.response_steps(response_steps, settings)
        return self.image_generations(
            [Request("image-gen", t, settings=settings, response_steps=response_steps) for t in texts]
        )

    def run(self, requests: Sequence[Request]) -> list[Encoded | Generation]:
        """The pipeline's one entry point: requests that share :meth:`Request.batch_key`
        in one batched call (one request: the one-request hook), one result per
        request, in order (a prompt pass gives :class:`Encoded`, a generation
        :class:`Generation`).

        Raises:
            ProbeInputError: requests of different kinds or settings in one call, or
                options the family does not take.
            UnsupportedError: a kind the adapter does not support.
        """
        if not requests:
            return []
        first = requests[0]
        if any(r.batch_key() != first.batch_key() for r in requests):
            raise ProbeInputError("one run() call takes requests of one kind, image-ness and settings")
        if first.kind == "image-gen":
            self.response_steps(first.response_steps, first.settings)
        out: list[Any]
        if first.kind == "prompt":
            out = [self.prompt_pass(first)] if len(requests) == 1 else self.prompt_passes(requests)
        elif first.kind == "text-gen":
            out = [self.text_generation(first)] if len(requests) == 1 else self.text_generations(requests)
        else:
            out = [self.image_generation(first)] if len(requests) == 1 else self.image_generations(requests)
        if len(out) != len(requests):
            raise RuntimeError(
                f"adapter {self.name!r} returned {len(out)} results for {len(requests)} requests"
            )
        return list(out)


def roles_from_ids(
    input_ids: Sequence[int] | torch.Tensor,
    *,
    image_token_ids: Iterable[int] = (),
    special_token_ids: Iterable[int] = (),
) -> list[Role]:
    """Label prompt positions: image placeholder ids -> IMAGE, special ids -> SPECIAL,
    everything else TEXT. Template text (e.g. "User:") is labelled by the adapter."""
    image_ids, special_ids = set(image_token_ids), set(special_token_ids)
    ids = input_ids.tolist() if isinstance(input_ids, torch.Tensor) else list(input_ids)
    return [Role.IMAGE if t in image_ids else Role.SPECIAL if t in special_ids else Role.TEXT for t in ids]
