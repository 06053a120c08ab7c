"""What a caller asks of an adapter: how to load it, what to run, how to generate.

- :class:`LoadOptions`: everything ``ModelAdapter.load(source, options)`` takes;
- :class:`Request`: one model call the pipeline asks for (a prompt pass, a text or an
  image generation), with everything that varies between families in it, so that the
  pipeline never asks which adapter class it holds (``ModelAdapter.run``);
- :class:`GenerationSettings`: text and image generation;
- :data:`ResponseSteps` and :func:`parse_response_steps`: which denoising steps of a
  step-wise image generator are probed besides the default response.

The option groups are declared with :func:`entprobe._spec.option` (the command line,
the run id and ``docs/options.md`` are derived from them).

Nothing here imports torch, so the command line reads these without a model backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._spec import canonicalise, coerce_integer, option, replace_checked, run_id_dict
from ..errors import ProbeInputError

__all__ = [
    "DTYPES",
    "GenerationSettings",
    "LoadOptions",
    "REQUEST_KINDS",
    "Request",
    "ResponseSteps",
    "parse_response_steps",
    "resolve_response_steps",
]

#: ``"final"`` (the default response only), ``"all"``, or 1-based step numbers.
ResponseSteps = str | tuple[int, ...]

#: ``--dtype`` values, and the other spellings ``LoadOptions`` accepts for them.
DTYPES = ("auto", "float32", "float16", "bfloat16")
_DTYPE_SPELLINGS = {"fp32": "float32", "fp16": "float16", "half": "float16", "bf16": "bfloat16"}


def _dtype(value: Any, name: str) -> str:
    text = str(value).strip().lower()
    text = _DTYPE_SPELLINGS.get(text, text)
    if text not in DTYPES:
        raise ProbeInputError(
            f"{name}={value!r} is not supported; use one of {', '.join(DTYPES)} "
            f"(or {', '.join(sorted(_DTYPE_SPELLINGS))})"
        )
    return text


def _optional_text(value: Any, name: str) -> str | None:
    return None if value is None else str(value)


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ProbeInputError(f"{name} must be True or False; got {value!r}")
    return value


@dataclass(frozen=True)
class LoadOptions:
    """How an adapter loads a checkpoint (``ModelAdapter.load(source, options)``).

    ``extras`` holds a family's own load options (each adapter names them in
    ``load_extras``, e.g. ``use_chat_template`` of ``hf-causal-lm``, ``vae`` of
    ``showo2``); any other key is refused by ``load``.
    """

    # fmt: off
    device: str = option("cpu", help="Where the model runs: cpu, cuda, cuda:1 ...", run_id="never",
                         constraint="a torch device available here", coerce=lambda v, n: str(v))
    dtype: str = option(
        "auto", choices=DTYPES, coerce=_dtype, run_id="nested",
        run_id_note="yes (the loaded weights' dtype, in the model identity)",
        help="Weights' dtype; auto: the checkpoint's (float32 for families that do not say).")
    trust_remote_code: bool = option(False, run_id="never", coerce=_flag,
                                     help="Allow the model's own code (passed to transformers only when given).")
    revision: str | None = option(
        None, default_text="the cache's default", run_id="nested", run_id_note="yes (in the model identity)",
        coerce=_optional_text, help="Hub revision (branch, tag or commit); recorded in the model identity.")
    upstream_src: str | None = option(
        None, cli_type="path", default_text="$ENTPROBE_<FAMILY>_SRC, else the installed package",
        run_id="nested", run_id_note="yes (the checkout's repository and commit, in the model identity)",
        coerce=_optional_text,
        help="Checkout of the family's upstream code (families outside transformers, see `entprobe models`).")
    extras: Mapping[str, Any] = option(
        factory=dict, constraint="name -> value, names from `entprobe models`", default_text="none", flag=None,
        run_id="never", coerce=lambda v, n: dict(v or {}),
        help="A family's own load options (the adapter's load_extras), e.g. use_chat_template.")
    # fmt: on

    def __post_init__(self) -> None:
        canonicalise(self)

    @classmethod
    def of(cls, options: LoadOptions | Mapping[str, Any] | None = None, /, **overrides: Any) -> LoadOptions:
        """``options`` (a LoadOptions, a mapping of its fields, or None) with ``overrides``;
        keys that are not fields go into ``extras`` (``load(path, use_chat_template=True)``)."""
        base = options if isinstance(options, LoadOptions) else cls(**dict(options or {}))
        names = {f for f in cls.__dataclass_fields__}
        fields = {k: v for k, v in overrides.items() if k in names}
        extras = {k: v for k, v in overrides.items() if k not in names}
        if extras:
            fields["extras"] = {**base.extras, **fields.get("extras", {}), **extras}
        return replace_checked(base, fields, what="load")

    def pretrained_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for transformers' ``from_pretrained``: ``trust_remote_code``
        only when asked for, ``revision`` only when given."""
        kwargs: dict[str, Any] = {}
        if self.trust_remote_code:
            kwargs["trust_remote_code"] = True
        if self.revision is not None:
            kwargs["revision"] = self.revision
        return kwargs


def _positive_int_or_none(value: Any, name: str) -> int | None:
    if value is None:
        return None
    out = coerce_integer(value, name)
    if out < 1:
        raise ProbeInputError(f"{name} must be an integer >= 1; got {value!r}")
    return out


@dataclass(frozen=True)
class GenerationSettings:
    """Generation options; recorded with the results (part of the run id when a response
    level runs).

    Text generation is greedy by default so runs are reproducible; image generation
    samples (greedy decoding of image tokens degenerates) with classifier-free
    guidance, as the models' own pipelines do.
    """

    # fmt: off
    max_new_tokens: int = option(64, help="Longest text response, in tokens.", constraint=">= 1", minimum=1)
    do_sample: bool = option(False, help="Sample the text response.", flag="--do-sample", off_flag="--greedy")
    temperature: float = option(1.0, help="Text sampling temperature.", constraint="> 0", minimum=0, min_open=True)
    top_p: float = option(1.0, help="Nucleus sampling mass (text).", constraint="in (0, 1]", minimum=0,
                          min_open=True, maximum=1)
    image_do_sample: bool = option(True, help="Sample the image tokens.", flag="--image-do-sample",
                                   off_flag="--image-greedy")
    image_temperature: float = option(1.0, help="Image-token sampling temperature.", constraint="> 0", minimum=0,
                                      min_open=True)
    guidance_scale: float = option(5.0, help="Classifier-free guidance of image generation.", constraint=">= 0",
                                   minimum=0)
    seed: int = option(0, help="Generation seed.")
    # Step-wise image generators that take them (their adapter's image_options).
    image_steps: int | None = option(
        None, constraint=">= 1", minimum=1, cli_type=int, default_text="the family's", run_id="unless-default",
        coerce=_positive_int_or_none, help="Step-wise image generators that take it: number of denoising steps.")
    image_size: int | None = option(
        None, constraint=">= 1", minimum=1, cli_type=int, metavar="PX", default_text="the family's",
        run_id="unless-default", coerce=_positive_int_or_none,
        help="Step-wise image generators that take it: side of the generated image in pixels (Harmon: of "
        "image prompts too, as its image2text script's --image_size).")
    # fmt: on

    def __post_init__(self) -> None:
        canonicalise(self)

    def to_dict(self) -> dict[str, Any]:
        """The settings as recorded in the run configuration (unset optional ones left
        out, so run ids that predate them are unchanged)."""
        return run_id_dict(self)


#: What a :class:`Request` asks for: a forward pass over a prompt (the prompt level),
#: a text generation, an image generation (the response levels).
REQUEST_KINDS = ("prompt", "text-gen", "image-gen")


@dataclass(frozen=True)
class Request:
    """One model call: ``kind`` over ``text`` (and ``image`` for an image prompt).

    Attributes:
        kind: one of :data:`REQUEST_KINDS`.
        text: the text prompt; for an image prompt, its question (may be "").
        image: the image of an image prompt (a PIL image), else None.
        settings: generation settings (the response kinds).
        response_steps: image generation by a step-wise generator: the denoising
            steps whose states are kept besides the default response.
    """

    kind: str
    text: str
    image: Any = None
    settings: GenerationSettings = GenerationSettings()
    response_steps: ResponseSteps = "final"

    def __post_init__(self) -> None:
        if self.kind not in REQUEST_KINDS:
            raise ProbeInputError(f"request kind must be one of {REQUEST_KINDS}; got {self.kind!r}")
        if self.kind == "image-gen" and self.image is not None:
            raise ProbeInputError("an image-gen request takes a text prompt, not an image")

    def batch_key(self) -> tuple[Any, ...]:
        """Requests with equal keys can run in one batched call."""
        return (self.kind, self.image is not None, self.settings, self.response_steps)


def parse_response_steps(value: str | Sequence[int] | None) -> ResponseSteps:
    """``--image-response-step``: ``final`` | ``all`` | ``K[,K...]`` (1-based steps).

    ``final`` (the default) keeps only the default response (the teacher-forced
    clean final response); ``all`` and ``K,...`` add the conditional branch's states
    at those denoising steps.

    Raises:
        ProbeInputError: anything else, or a step below 1.
    """
    if value is None:
        return "final"
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("final", "all"):
            return text
        try:
            items = [int(p) for p in text.split(",") if p.strip()]
        except ValueError:
            raise ProbeInputError(
                f"--image-response-step must be 'final', 'all' or step numbers like 1,9,18; got {value!r}"
            ) from None
    else:
        items = [int(v) for v in value]
    if not items or min(items) < 1:
        raise ProbeInputError(f"--image-response-step steps are numbered from 1; got {value!r}")
    return tuple(sorted(set(items)))


def resolve_response_steps(steps: ResponseSteps, n_steps: int) -> tuple[int, ...]:
    """The steps to keep, checked against the generator's ``n_steps``.

    Raises:
        ProbeInputError: a step beyond ``n_steps``.
    """
    if steps == "final":
        return ()
    if steps == "all":
        return tuple(range(1, n_steps + 1))
    bad = [k for k in steps if k > n_steps]
    if bad:
        raise ProbeInputError(f"--image-response-step {list(bad)}: the generator runs {n_steps} steps")
    return tuple(steps)
