"""The contract every model adapter fulfils.

An adapter knows one model family: how to load it, where its decoder layers are, how
to build text and image prompts, how to generate text and images, and how to obtain
the response tokens' states (one teacher-forced pass over ``[prompt; response]``).
The pipeline only talks to this interface, so adding a family means adding one file
and one registry line.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from ..capture import Role, select
from ..errors import UnsupportedError
from ._upstream import Upstream

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

__all__ = [
    "CAPABILITIES",
    "Encoded",
    "Generation",
    "GenerationSettings",
    "ModelAdapter",
]

#: What an adapter may support. "text-gen" from an image prompt needs both
#: "image-prompt" and "text-gen".
CAPABILITIES = ("text-prompt", "image-prompt", "text-gen", "image-gen")

#: Roles that make up a prompt's content (special/template tokens excluded).
CONTENT_ROLES = (Role.TEXT, Role.IMAGE)


@dataclass(frozen=True)
class GenerationSettings:
    """Generation options; recorded with the results.

    Text generation is greedy by default so runs are reproducible; image generation
    samples (greedy decoding of image tokens degenerates) with classifier-free
    guidance, as the models' own pipelines do.
    """

    max_new_tokens: int = 64
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    image_do_sample: bool = True
    image_temperature: float = 1.0
    guidance_scale: float = 5.0
    seed: int = 0
    #: Step-wise image generators that take them (``image_options`` of the adapter):
    #: number of denoising steps and image side in pixels; None = the family's default.
    image_steps: int | None = None
    image_size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        # Unset optional fields are left out, so run ids that predate them are unchanged.
        return {k: v for k, v in asdict(self).items() if v is not None or k not in _OPTIONAL_SETTINGS}


_OPTIONAL_SETTINGS = ("image_steps", "image_size")


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
    capabilities: ClassVar[frozenset[str]] = frozenset()
    #: capability -> why the family cannot have it (shown by ``entprobe models`` and in errors).
    unsupported: ClassVar[dict[str, str]] = {}
    #: ``_class_name`` values of a diffusers-style ``model_index.json`` this adapter handles,
    #: for auto-detection of checkpoint folders that have no top-level ``config.json``.
    pipeline_classes: ClassVar[tuple[str, ...]] = ()
    #: dotted path of the decoder-layer list inside ``model``.
    layers_path: ClassVar[str]
    #: keyword under which those layers take their input when it is not
    #: ``hidden_states`` (``capture(..., input_name=)``), e.g. ``"packed_query_sequence"``.
    layers_input: ClassVar[str | None] = None
    #: Families whose code lives outside transformers: where it comes from
    #: (their ``load`` then takes ``upstream_src=``; see ``models/_upstream.py``).
    upstream: ClassVar[Upstream | None] = None
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

    model: torch.nn.Module
    processor: Any
    source: str = ""
    extra_identity: dict[str, Any] = field(default_factory=dict)

    # --- loading -------------------------------------------------------------------
    @classmethod
    @abstractmethod
    def load(
        cls,
        source: str,
        *,
        device: str = "cpu",
        dtype: str = "auto",
        trust_remote_code: bool = False,
        revision: str | None = None,
    ) -> ModelAdapter:
        """Load model and processor from a hub id (through the HF cache) or a local path.

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

    # --- response level ---------------------------------------------------------------
    def generate_text(
        self,
        text: str,
        *,
        image: Image.Image | None = None,
        settings: GenerationSettings = GenerationSettings(),
        keep_generation_states: bool = False,
    ) -> Generation:
        """Generate text from a text prompt, or from an image plus question."""
        self.require("text-gen")
        raise NotImplementedError  # pragma: no cover

    def generate_image(
        self,
        text: str,
        *,
        settings: GenerationSettings = GenerationSettings(),
        keep_generation_states: bool = False,
    ) -> Generation:
        """Generate an image from a text prompt; only the conditional branch is probed."""
        self.require("image-gen")
        raise NotImplementedError  # pragma: no cover

    # --- batched entry points ---------------------------------------------------------
    # One result per input, in order, each exactly what the single-sample method returns
    # for that input (padding removed, per-sample random generators), so a sample's
    # numbers do not depend on which batch it lands in. These defaults loop; adapters
    # that batch for real override them and set ``batched = True``. A batch that raises
    # is retried sample by sample by the pipeline, so one bad sample fails alone.
    def encode_texts(self, texts: Sequence[str]) -> list[Encoded]:
        """:meth:`encode_text` of each text."""
        return [self.encode_text(text) for text in texts]

    def encode_images(self, images: Sequence[Image.Image], questions: Sequence[str]) -> list[Encoded]:
        """:meth:`encode_image` of each ``(image, question)`` pair."""
        return [self.encode_image(image, question) for image, question in zip(images, questions, strict=True)]

    def generate_texts(
        self,
        texts: Sequence[str],
        *,
        images: Sequence[Image.Image | None] | None = None,
        settings: GenerationSettings = GenerationSettings(),
    ) -> list[Generation]:
        """:meth:`generate_text` of each text (with its image, when ``images`` is given)."""
        images = list(images) if images is not None else [None] * len(texts)
        return [
            self.generate_text(text, image=image, settings=settings)
            for text, image in zip(texts, images, strict=True)
        ]

    def generate_images(
        self, texts: Sequence[str], *, settings: GenerationSettings = GenerationSettings()
    ) -> list[Generation]:
        """:meth:`generate_image` of each text."""
        return [self.generate_image(text, settings=settings) for text in texts]


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
