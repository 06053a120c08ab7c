"""Options of a probe run, declared once, and the run id they determine.

Two option groups (:class:`EstimatorOptions`, :class:`ProbeOptions`) besides the
model's own (:class:`~entprobe.models.requests.LoadOptions`,
:class:`~entprobe.models.requests.GenerationSettings`). Each field is declared with
:func:`entprobe._spec.option`; validation, run-id serialisation, the command line's
flags and ``docs/options.md`` are derived from those declarations.

This module imports no torch: the command line builds its flags from it.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import Any

from .._spec import (
    canonicalise,
    check_all,
    coerce_integer,
    coerce_number_or,
    jsonable,
    option,
    replace_checked,
    run_id_dict,
    session_dict,
)
from ..errors import ProbeInputError
from ..models.requests import GenerationSettings, LoadOptions, ResponseSteps, parse_response_steps
from ..store.schema import LEVELS

__all__ = [
    "LAST_LAYER_CHOICES",
    "LEVELS",
    "MODALITY_LEVELS",
    "EstimatorOptions",
    "ProbeOptions",
    "config_hash",
    "package_versions",
    "parse_levels",
    "parse_shard",
    "parse_thresholds",
    "run_id_for",
    "shard_index",
]

#: The levels a record of each modality takes part in.
MODALITY_LEVELS: dict[str, tuple[str, ...]] = {
    "text": ("prompt", "text-gen", "image-gen"),
    "image": ("prompt", "text-gen"),
}

#: ``--last-layer``: the last layer's states before the final norm, or after it.
LAST_LAYER_CHOICES: tuple[str, ...] = ("raw", "normed")


# --- how the command line reads the estimator options (a usage error: exit code 2) --


def _cli_sigma(text: str) -> str | float:
    if text.strip().lower() == "median":
        return "median"
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"expected 'median' or a positive number; got {text!r}") from None


def _cli_pca_dim(text: str) -> int | None:
    if text.strip().lower() == "none":
        return None
    try:
        out = int(text)
    except ValueError:
        out = 0
    if out < 1:
        raise ValueError(f"expected a positive number of components, or 'none' for no PCA; got {text!r}")
    return out


def _cli_base(text: str) -> str | float:
    if text.strip().lower() == "e":
        return "e"
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"expected a number or 'e'; got {text!r}") from None


def _optional_integer(value: Any, name: str) -> int | None:
    return None if value is None else coerce_integer(value, name)


def _estimator_check(name: str):
    """The estimators' own check of one option (imported when used: it needs torch)."""

    def check(value: Any) -> None:
        from ..estimators import _checks

        getattr(_checks, f"check_{name}")(value)

    return check


@dataclass(frozen=True)
class EstimatorOptions:
    """Options of :func:`~entprobe.estimators.matrix_entropy` and
    :func:`~entprobe.estimators.conditional_entropy`, with their defaults.

    Each option goes to the estimator functions that take it (``kernel`` to the
    prompt level only; ``normalization``, ``n_draws``, ``seed`` and ``prompt_sigma`` to
    the response levels only): see :meth:`entropy_kwargs`, :meth:`conditional_kwargs`.
    """

    # fmt: off
    alpha: float = option(1.01, help="Renyi order alpha.", constraint="> 0", check=_estimator_check("alpha"))
    kernel: str = option("gaussian", help="Kernel of the prompt-level entropy.", metavar="gaussian|linear",
                         constraint="gaussian | linear", check=_estimator_check("kernel"))
    sigma: str | float = option("median", help="Kernel bandwidth.", constraint="median | a number > 0",
                                metavar="median|X", cli_type=_cli_sigma, coerce=coerce_number_or("median"))
    sigma_scale: float = option(1.0, help="Factor on the median bandwidth.", constraint="> 0")
    pca_dim: int | None = option(64, help="PCA components kept, or none for no PCA.", metavar="N|none",
                                 constraint="an integer >= 1 | none", cli_type=_cli_pca_dim,
                                 coerce=_optional_integer, check=_estimator_check("pca_dim"))
    eps: float = option(1e-6, help="Ridge on the kernel diagonal.", constraint=">= 0", check=_estimator_check("eps"))
    base: float | str = option(2.0, help="Logarithm base (2: bits).", constraint="e | a number > 0 other than 1",
                               metavar="e|X", cli_type=_cli_base, coerce=coerce_number_or("e"),
                               check=_estimator_check("base"))
    normalization: str = option("trace", help="Conditional-entropy normalization.", metavar="trace|plain|subsample",
                                constraint="trace | plain | subsample", check=_estimator_check("normalization"))
    n_draws: int = option(10, help="Draws of the 'subsample' normalization.", constraint=">= 1",
                          check=_estimator_check("n_draws"))
    seed: int = option(0, help="Seed of the 'subsample' draws.", constraint=">= 0", flag="--estimator-seed",
                       check=_estimator_check("seed"))
    prompt_sigma: str = option(
        "joint", choices=("joint", "own"), flag="--prompt-bandwidth", run_id="unless-default",
        help="Bandwidth of H(prompt) inside the proxy: the median distance of the joint prompt+response set, "
        "shared with H(prompt+response) (joint), or of the prompt's own tokens (own; needs sigma median).")
    spectrum: str = option(
        "exact", constraint="exact | float32 | topk:K", metavar="exact|float32|topk:K", run_id="unless-default",
        check=_estimator_check("spectrum"),
        help="exact: all eigenvalues in float64; float32: all eigenvalues in float32 (faster, measured error up "
        "to 2.5e-6 bits at n = 8,100, no bound); topk:K: K Ritz pairs and certified lower/upper bounds per "
        "layer (stored; the value is the interval's midpoint).")
    # fmt: on

    def __post_init__(self) -> None:
        # One spelling per value, so that equal options hash to the same run id
        # (``--base 2`` and ``base=2.0``, ``--sigma 0.5`` and ``sigma="0.5"``).
        canonicalise(self)

    def to_dict(self) -> dict[str, Any]:
        """The options as recorded in the run configuration and hashed into the run id."""
        return run_id_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EstimatorOptions:
        return replace_checked(cls(), data, what="estimator")

    def updated(self, **overrides: Any) -> EstimatorOptions:
        """A copy with the options in ``overrides`` replaced.

        Raises:
            ProbeInputError: an unknown option.
        """
        return replace_checked(self, overrides, what="estimator")

    def entropy_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``matrix_entropy`` / ``matrix_entropy_from_gram``."""
        return {name: getattr(self, name) for name in _estimator_parameters("matrix_entropy_from_gram")}

    def conditional_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``conditional_entropy`` / ``conditional_entropy_from_gram``."""
        return {name: getattr(self, name) for name in _estimator_parameters("conditional_entropy_from_gram")}

    def check(self) -> None:
        """Check every option, then run both estimators once on a small synthetic Gram
        (which also checks the options that constrain each other, e.g. ``sigma`` and
        ``sigma_scale``), so that a bad option fails before any model work, with the
        estimators' own message.

        Raises:
            ProbeInputError: an option out of range.
        """
        import numpy as np

        from ..estimators import conditional_entropy_from_gram, linear_gram, matrix_entropy_from_gram

        check_all(self)
        x = np.random.default_rng(0).normal(size=(2, 8, 6))
        gram = linear_gram(x)
        matrix_entropy_from_gram(gram, **self.entropy_kwargs())
        conditional_entropy_from_gram(gram, 4, **self.conditional_kwargs())


@cache
def _estimator_parameters(function: str) -> tuple[str, ...]:
    """The :class:`EstimatorOptions` fields that ``function`` takes, read from its
    signature, so that a new estimator keyword reaches it without a second list."""
    from .. import estimators

    params = inspect.signature(getattr(estimators, function)).parameters
    return tuple(f.name for f in fields(EstimatorOptions) if f.name in params)


def _shard(value: Any, name: str) -> tuple[int, int] | None:
    return value if value is None or isinstance(value, tuple) else parse_shard(value)


def _thresholds(value: Any, name: str) -> tuple[int, int] | None:
    if value is None or isinstance(value, tuple):
        return value if value is None else tuple(value)  # type: ignore[return-value]
    if isinstance(value, str):
        return parse_thresholds(value)
    return parse_thresholds(",".join(map(str, value)))


def _folder(value: Any, name: str) -> Path | None:
    return None if value is None else Path(value)


def _batch_size(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ProbeInputError(f"batch_size must be an integer >= 1; got {value!r}")
    return value


def _last_layer(value: Any, name: str) -> str:
    if value not in LAST_LAYER_CHOICES:
        raise ProbeInputError(f"last_layer must be one of {', '.join(LAST_LAYER_CHOICES)}; got {value!r}")
    return value


def _limit(value: Any, name: str) -> int | None:
    if value is None:
        return None
    out = coerce_integer(value, name)
    if out < 1:
        raise ProbeInputError(f"limit must be an integer >= 1; got {value!r}")
    return out


def _datasets(value: Any, name: str) -> tuple[str, ...] | None:
    return None if value is None else tuple(str(v) for v in value)


@dataclass(frozen=True)
class ProbeOptions:
    """Everything of a probe run besides the model, the prompts and the levels.

    ``estimator``, ``generation`` and ``load`` are the other option groups (the load
    options are those the adapter was loaded with: recorded, and the revision enters
    the model identity). The fields below are this group's own; see ``docs/options.md``
    for each one's flag, default and whether it enters the run id. ``extra`` holds
    anything else a caller wants recorded in the run's configuration.
    """

    estimator: EstimatorOptions = field(default_factory=EstimatorOptions)
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    load: LoadOptions = field(default_factory=LoadOptions)
    # fmt: off
    include_special: bool = option(False, help="Keep special and chat-template tokens in the prompt's states.",
                                   coerce=lambda v, n: bool(v))
    last_layer: str = option(
        "raw", choices=LAST_LAYER_CHOICES, run_id="unless-default", coerce=_last_layer,
        help="The last layer's states: before the final norm (raw), or after it, as transformers' "
        "output_hidden_states gives (normed).")
    image_response_steps: ResponseSteps = option(
        "final", constraint="final | all | K[,K...]", flag="--image-response-step", metavar="final|all|K[,K...]",
        run_id="nested", run_id_note="yes (step-wise image generators: in the image_response block)",
        coerce=lambda v, n: parse_response_steps(v),
        help="Step-wise image generators: besides the default response (one teacher-forced pass of the clean "
        "final response), also probe the conditional branch at these denoising steps (1-based), stored per step.")
    # The session: none of these enters the run id.
    limit: int | None = option(None, help="First N prompts of each prompt set.", constraint=">= 1", minimum=1,
                               cli_type=int, default_text="all", run_id="never", coerce=_limit)
    shard: tuple[int, int] | None = option(
        None, constraint="K/N with 1 <= K <= N", metavar="K/N", default_text="all samples", run_id="never",
        coerce=_shard, help="Process shard K of N (1-based), split by a stable hash of dataset and sample id.")
    retry_failed: bool = option(False, help="Recompute samples recorded as failed.", run_id="never")
    save_grams: Path | None = option(None, help="Save per-layer Gram matrices here, for `entprobe reestimate`.",
                                     cli_type="path", run_id="never", coerce=_folder)
    save_images: Path | None = option(None, help="Save generated images as PNG here (path in samples.image_path).",
                                      cli_type="path", run_id="never", coerce=_folder)
    length_thresholds: tuple[int, int] | None = option(
        None, constraint="A,B with 0 <= A <= B", metavar="A,B", default_text="the set's terciles", run_id="never",
        coerce=_thresholds, help="Token counts splitting short/middle/long text prompts.")
    allow_outside_paths: bool = option(
        False, run_id="never",
        help="Let image paths in a data file (images: CSV, RealUnify JSON) point outside its folder.")
    batch_size: int = option(
        1, constraint=">= 1", minimum=1, run_id="never", coerce=_batch_size,
        help="Samples of one modality and level run through the model together (same numbers as 1).")
    overlap: bool = option(True, off_flag="--no-overlap", run_id="never",
                           help="Estimate the previous batch on a worker thread while the model runs the next.")
    # Set by load_and_probe (API only).
    model: str | None = option(None, help="The model's name in the store.", flag=None, run_id="never",
                               default_text="the adapter's source", coerce=lambda v, n: None if v is None else str(v))
    datasets: tuple[str, ...] | None = option(None, help="The prompt sets' SPECs as recorded.", flag=None,
                                              default_text="each set's spec", coerce=_datasets)
    extra: Mapping[str, Any] = option(factory=dict, help="Anything else to record in the run's configuration.",
                                      flag=None, run_id="never", coerce=lambda v, n: dict(v or {}))
    # fmt: on

    def __post_init__(self) -> None:
        canonicalise(self)

    @property
    def revision(self) -> str | None:
        """The revision the model was loaded at (``load.revision``)."""
        return self.load.revision

    def session(self) -> dict[str, Any]:
        """This session's settings (the ``run_id="never"`` options, none of which enters
        the run id), with the load options that do not, for the run's configuration."""
        out = session_dict(self)
        del out["model"]  # recorded as the run's model name
        extra = out.pop("extra")
        out["shard"] = None if self.shard is None else f"{self.shard[0]}/{self.shard[1]}"
        out.update(dtype=self.load.dtype, trust_remote_code=self.load.trust_remote_code)
        return {**jsonable(out), **extra}


def run_id_for(gram_config: Mapping[str, Any], estimator: EstimatorOptions) -> str:
    """The run id: a hash of what determines the states (``gram_config``) and the
    estimator options. A re-estimation with the same options gets the same id."""
    return config_hash({**gram_config, "estimator": estimator.to_dict()})


def parse_levels(levels: str | Iterable[str]) -> tuple[str, ...]:
    """``"prompt,text-gen"`` (or a sequence) -> levels in canonical order.

    Raises:
        ProbeInputError: an unknown level, or none.
    """
    items = levels.split(",") if isinstance(levels, str) else list(levels)
    wanted = [s.strip() for s in items if s and s.strip()]
    unknown = [s for s in wanted if s not in LEVELS]
    if unknown:
        raise ProbeInputError(f"unknown level(s) {unknown}; levels are {', '.join(LEVELS)}")
    if not wanted:
        raise ProbeInputError(f"no level given; levels are {', '.join(LEVELS)}")
    return tuple(lv for lv in LEVELS if lv in wanted)


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"K/N"`` -> ``(K, N)`` with ``1 <= K <= N``.

    Raises:
        ProbeInputError: not of the form K/N, or K out of range.
    """
    if text is None or text == "":
        return None
    try:
        k_text, n_text = text.split("/")
        k, n = int(k_text), int(n_text)
    except ValueError:
        raise ProbeInputError(f"shard must look like K/N (e.g. 2/8); got {text!r}") from None
    if n < 1 or not 1 <= k <= n:
        raise ProbeInputError(f"shard K/N needs 1 <= K <= N (shards are numbered from 1); got {text!r}")
    return k, n


def parse_thresholds(text: str | None) -> tuple[int, int] | None:
    """``"a,b"`` -> ``(a, b)`` with ``0 <= a <= b``.

    Raises:
        ProbeInputError: not two integers in order.
    """
    if text is None or text == "":
        return None
    try:
        a_text, b_text = text.split(",")
        a, b = int(a_text), int(b_text)
    except ValueError:
        raise ProbeInputError(f"length thresholds must look like a,b (e.g. 20,60); got {text!r}") from None
    if not 0 <= a <= b:
        raise ProbeInputError(f"length thresholds need 0 <= a <= b; got {text!r}")
    return a, b


def shard_index(dataset: str, sample_id: str, n_shards: int) -> int:
    """The 0-based shard of a sample: a stable hash (SHA-256) of dataset and id, so
    the split does not depend on order, limit or the other prompt sets."""
    digest = hashlib.sha256(f"{dataset}\x1f{sample_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % n_shards


def in_shard(dataset: str, sample_id: str, shard: tuple[int, int] | None) -> bool:
    if shard is None:
        return True
    k, n = shard
    return shard_index(dataset, sample_id, n) == k - 1


def config_hash(config: Mapping[str, Any], length: int = 16) -> str:
    """A short, stable hex hash of a JSON-able configuration."""
    text = json.dumps(jsonable(config), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def package_versions() -> dict[str, str | None]:
    """Versions of the packages that shape the numbers, recorded with each run."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("entprobe", "torch", "transformers", "numpy", "duckdb", "safetensors"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out
