"""Helpers shared by the transformers adapters (``hf-causal-lm``, ``hf-encoder`` and the
multimodal adapters built on :class:`~entprobe.models.hf_causal_lm.HFCausalLMAdapter`).

Loading (:func:`from_pretrained`, :func:`resolve_dtype`; the keyword arguments come from
``LoadOptions.pretrained_kwargs``),
finding the decoder layers (:func:`find_layers_path`), labelling special tokens
(:func:`special_token_ids`), hooked forward passes (:func:`forward_states`,
:func:`maybe_capture`), context checks (:func:`check_prompt_length`) and seeding
(:func:`seeded`). They live here rather than in one adapter's file so that every
adapter imports them from the same neutral place. transformers is never imported
here, so the registry can list adapters without loading it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
from torch import nn

from ..capture import capture
from ..errors import ModelLoadError, ProbeInputError

__all__ = [
    "CAUSAL_LAYER_PATHS",
    "check_prompt_length",
    "find_layers_path",
    "forward_batch_states",
    "forward_states",
    "from_pretrained",
    "maybe_capture",
    "resolve_dtype",
    "seeded",
    "special_token_ids",
]

#: Where causal LMs keep their decoder layers, most common first.
CAUSAL_LAYER_PATHS = (
    "model.layers",  # Llama, Qwen, Mistral, Gemma, Phi, OLMo, ...
    "transformer.h",  # GPT-2, GPT-J, Falcon, BLOOM, GPTBigCode
    "model.decoder.layers",  # OPT
    "gpt_neox.layers",  # GPT-NeoX, Pythia
    "transformer.blocks",  # MPT
    "model.language_model.layers",  # multimodal wrappers
    "transformer.layers",
    "backbone.layers",
)

# Stands in for the user's text to find where a chat template puts it.
_SENTINEL = "ENTPROBE0SENTINEL0TEXT"

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


def resolve_dtype(dtype: str | torch.dtype) -> str | torch.dtype:
    """``"auto"`` (the checkpoint's dtype) or a torch dtype from a name such as ``"bfloat16"``.

    Raises:
        ModelLoadError: an unknown dtype name.
    """
    if isinstance(dtype, torch.dtype) or dtype == "auto":
        return dtype
    try:
        return _DTYPES[str(dtype).lower()]
    except KeyError:
        raise ModelLoadError(
            f"dtype={dtype!r} is not supported; use 'auto' or one of {', '.join(sorted(_DTYPES))}"
        ) from None


def _dtype_key() -> str:
    """``from_pretrained``'s dtype keyword: ``dtype`` from transformers 4.56, ``torch_dtype`` before."""
    from transformers import __version__

    major, minor = (int(p) for p in __version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def from_pretrained(factory: Any, source: str, *, what: str, adapter: str, **kwargs: Any) -> Any:
    """``factory.from_pretrained(source, **kwargs)`` with failures as :class:`ModelLoadError`.

    A ``dtype=`` keyword is passed as ``torch_dtype=`` to transformers older than 4.56.
    """
    if "dtype" in kwargs and _dtype_key() != "dtype":
        kwargs["torch_dtype"] = kwargs.pop("dtype")
    try:
        return factory.from_pretrained(source, **kwargs)
    except (OSError, ValueError, KeyError, TypeError, ImportError) as exc:
        raise ModelLoadError(
            f"adapter {adapter!r} cannot load the {what} of {source!r}: {exc}. A hub id must be in "
            "the local Hugging Face cache when offline (HF_HUB_OFFLINE=1); a model with custom code "
            "needs --trust-remote-code"
        ) from exc


def _n_hidden_layers(model: nn.Module) -> int | None:
    cfg = getattr(model, "config", None)
    if cfg is None:
        return None
    text_cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
    n = getattr(text_cfg, "num_hidden_layers", None)
    return n if isinstance(n, int) else None


def find_layers_path(model: nn.Module, candidates: Sequence[str] = CAUSAL_LAYER_PATHS) -> str:
    """Dotted path of ``model``'s decoder-layer list.

    Tries ``candidates`` in order, then falls back to the first ``nn.ModuleList`` whose
    length equals ``config.num_hidden_layers``.

    Raises:
        ModelLoadError: no such list exists.
    """
    modules = dict(model.named_modules())
    n_layers = _n_hidden_layers(model)

    def fits(mod: nn.Module | None) -> bool:
        return isinstance(mod, nn.ModuleList) and len(mod) > 0 and (n_layers is None or len(mod) == n_layers)

    for path in candidates:
        if fits(modules.get(path)):
            return path
    if n_layers is not None:
        for path, mod in modules.items():
            if path and fits(mod):
                return path
    raise ModelLoadError(
        f"cannot find the decoder layers of {type(model).__name__}: none of "
        f"{', '.join(candidates)} is a ModuleList of {n_layers} layers, and no other ModuleList "
        "has that length"
    )


def special_token_ids(tokenizer: Any) -> set[int]:
    """Ids of the tokenizer's special tokens (named ones and added tokens marked special),
    without UNK, which stands in for content."""
    ids = set(getattr(tokenizer, "all_special_ids", ()) or ())
    for idx, added in (getattr(tokenizer, "added_tokens_decoder", None) or {}).items():
        if getattr(added, "special", False):
            ids.add(int(idx))
    ids.discard(getattr(tokenizer, "unk_token_id", None))
    return {int(i) for i in ids if i is not None}


def forward_states(model: nn.Module, layers_path: str, inputs: dict[str, Any], **kwargs: Any) -> torch.Tensor:
    """One forward pass of a batch of one with hooks: ``(n_layers + 1, n_tokens, d_model)``."""
    with torch.no_grad(), capture(model, layers_path) as rec:
        model(**inputs, **kwargs)
    return rec.states(0)[:, 0]


def forward_batch_states(
    model: nn.Module, layers_path: str, inputs: dict[str, Any], **kwargs: Any
) -> torch.Tensor:
    """One hooked forward pass of a padded batch: ``(n_layers + 1, batch, n_tokens, d_model)``."""
    with torch.no_grad(), capture(model, layers_path) as rec:
        model(**inputs, **kwargs)
    return rec.states(0)


def check_prompt_length(n_tokens: int, max_context: int | None) -> None:
    """Raise :class:`ProbeInputError` when a prompt does not fit the model's context."""
    if max_context is not None and n_tokens > max_context:
        raise ProbeInputError(f"the prompt has {n_tokens} tokens; the model accepts at most {max_context}")


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch for the block in a forked RNG, leaving the caller's state as it was."""
    fork = [] if device.type == "cpu" else [device]
    with torch.random.fork_rng(devices=fork, device_type=device.type):
        torch.manual_seed(seed)
        yield


def maybe_capture(model: torch.nn.Module, layers_path: str, keep: bool) -> Any:
    """Hooks during generation only when the generation states are wanted."""
    return capture(model, layers_path) if keep else nullcontext()
