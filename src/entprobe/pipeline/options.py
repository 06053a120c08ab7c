"""Options of a probe run, how they are parsed, and the run id they determine."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..errors import ProbeInputError
from ..models._stepwise import ResponseSteps
from ..models.base import GenerationSettings
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


@dataclass(frozen=True)
class EstimatorOptions:
    """Options of :func:`~entprobe.estimators.matrix_entropy` and
    :func:`~entprobe.estimators.conditional_entropy` (their defaults).

    ``kernel`` applies to the prompt level only; ``normalization``, ``n_draws`` and
    ``seed`` to the response levels only.
    """

    alpha: float = 1.01
    kernel: str = "gaussian"
    sigma: str | float = "median"
    sigma_scale: float = 1.0
    pca_dim: int | None = 64
    eps: float = 1e-6
    base: float | str = 2
    normalization: str = "trace"
    n_draws: int = 10
    seed: int = 0
    #: bandwidth of H(prompt) inside the proxy: ``"joint"`` (the median of the joint
    #: set, shared with H(prompt+response); the default) or ``"own"`` (the prompt's).
    prompt_sigma: str = "joint"
    #: ``"exact"`` or ``"topk:K"`` (certified bounds; layer_metrics gets lower/upper).
    spectrum: str = "exact"

    def __post_init__(self) -> None:
        # One spelling per value, so that equal options hash to the same run id
        # (``--base 2`` and ``base=2.0``, ``--sigma 0.5`` and ``sigma="0.5"``).
        set_ = object.__setattr__
        set_(self, "alpha", _number(self.alpha, "alpha"))
        set_(self, "sigma", _number_or(self.sigma, "sigma", ("median",)))
        set_(self, "sigma_scale", _number(self.sigma_scale, "sigma_scale"))
        set_(self, "eps", _number(self.eps, "eps"))
        set_(self, "base", _number_or(self.base, "base", ("e",)))
        if self.pca_dim is not None:
            set_(self, "pca_dim", _integer(self.pca_dim, "pca_dim"))
        set_(self, "n_draws", _integer(self.n_draws, "n_draws"))
        set_(self, "seed", _integer(self.seed, "seed"))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if out["prompt_sigma"] == "joint":
            # Left out at its default, so the run ids of earlier runs stay as they were.
            del out["prompt_sigma"]
        if out["spectrum"] == "exact":
            del out["spectrum"]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EstimatorOptions:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ProbeInputError(f"unknown estimator option(s) {unknown}; known: {sorted(names)}")
        return cls(**dict(data))

    def updated(self, **overrides: Any) -> EstimatorOptions:
        """A copy with the options in ``overrides`` replaced.

        Raises:
            ProbeInputError: an unknown option.
        """
        names = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ProbeInputError(f"unknown estimator option(s) {unknown}; known: {sorted(names)}")
        return replace(self, **overrides)

    def entropy_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``matrix_entropy_from_gram``."""
        return dict(
            alpha=self.alpha,
            kernel=self.kernel,
            sigma=self.sigma,
            sigma_scale=self.sigma_scale,
            pca_dim=self.pca_dim,
            eps=self.eps,
            base=self.base,
            spectrum=self.spectrum,
        )

    def conditional_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``conditional_entropy_from_gram``."""
        return dict(
            normalization=self.normalization,
            alpha=self.alpha,
            sigma=self.sigma,
            sigma_scale=self.sigma_scale,
            pca_dim=self.pca_dim,
            eps=self.eps,
            base=self.base,
            n_draws=self.n_draws,
            seed=self.seed,
            prompt_sigma=self.prompt_sigma,
            spectrum=self.spectrum,
        )

    def check(self) -> None:
        """Run both estimators once on a small synthetic Gram, so that a bad option
        fails before any model work, with the estimators' own message.

        Raises:
            ProbeInputError: an option out of range.
        """
        import numpy as np

        from ..estimators import (
            conditional_entropy_from_gram,
            linear_gram,
            matrix_entropy_from_gram,
        )

        x = np.random.default_rng(0).normal(size=(2, 8, 6))
        gram = linear_gram(x)
        matrix_entropy_from_gram(gram, **self.entropy_kwargs())
        conditional_entropy_from_gram(gram, 4, **self.conditional_kwargs())


@dataclass(frozen=True)
class ProbeOptions:
    """Everything of a probe run besides the model, the prompts and the levels.

    Attributes:
        estimator: estimator options (part of the run id).
        generation: generation settings (part of the run id).
        include_special: keep special / chat-template tokens in the prompt's states
            (part of the run id).
        shard: ``(k, n)``: process only the samples of shard ``k`` of ``n``
            (1-based), split by a stable hash of dataset and sample id.
        retry_failed: recompute samples recorded as failed (default: skip them).
        save_grams: folder for the Gram files (``--save-grams``), or None.
        save_images: folder for generated images as PNG, or None.
        length_thresholds: fixed ``(t1, t2)`` token counts for the length buckets of
            text prompts; None: the prompt set's terciles.
        model: the model's name in the store (default: the adapter's source).
        revision: the revision the model was loaded at (part of the run id).
        datasets: the prompt-set SPECs (part of the run id); default: each set's
            ``spec``.
        image_response_steps: step-wise image generators: ``"final"`` (default: the
            teacher-forced clean final response only), ``"all"`` or 1-based steps
            whose conditional-branch states are also probed (part of the run id).
        extra: anything else to record in the run's configuration (limit, dtype ...).
        batch_size: samples of one modality and level run through the model together
            (not part of the run id: batched runs give the batch-size-1 numbers, to
            1e-10 in float64; a run may be resumed with another batch size).
        overlap: estimate on a worker thread while the model runs the next batch
            (not part of the run id).
        last_layer: ``"raw"`` (default): the last decoder layer's output before the
            final norm; ``"normed"``: after it, as ``output_hidden_states`` gives
            (part of the run id when not the default).
    """

    estimator: EstimatorOptions = field(default_factory=EstimatorOptions)
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    include_special: bool = False
    shard: tuple[int, int] | None = None
    retry_failed: bool = False
    save_grams: Path | None = None
    save_images: Path | None = None
    length_thresholds: tuple[int, int] | None = None
    model: str | None = None
    revision: str | None = None
    datasets: tuple[str, ...] | None = None
    image_response_steps: ResponseSteps = "final"
    extra: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 1
    overlap: bool = True
    last_layer: str = "raw"

    def __post_init__(self) -> None:
        if self.last_layer not in LAST_LAYER_CHOICES:
            raise ProbeInputError(
                f"last_layer must be one of {', '.join(LAST_LAYER_CHOICES)}; got {self.last_layer!r}"
            )
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ProbeInputError(f"batch_size must be an integer >= 1; got {self.batch_size!r}")


#: ``--last-layer``: the last layer's states before the final norm, or after it.
LAST_LAYER_CHOICES: tuple[str, ...] = ("raw", "normed")


def _number(value: Any, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ProbeInputError(f"{name} must be a number; got {value!r}") from None


def _number_or(value: Any, name: str, words: tuple[str, ...]) -> float | str:
    if isinstance(value, str) and value.strip().lower() in words:
        return value.strip().lower()
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ProbeInputError(
            f"{name} must be a number or {' / '.join(map(repr, words))}; got {value!r}"
        ) from None


def _integer(value: Any, name: str) -> int:
    try:
        out = int(value)
    except (TypeError, ValueError):
        raise ProbeInputError(f"{name} must be an integer; got {value!r}") from None
    if out != value and not isinstance(value, str):
        raise ProbeInputError(f"{name} must be an integer; got {value!r}")
    return out


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


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def config_hash(config: Mapping[str, Any], length: int = 16) -> str:
    """A short, stable hex hash of a JSON-able configuration."""
    text = json.dumps(_jsonable(config), sort_keys=True, separators=(",", ":"), default=str)
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
