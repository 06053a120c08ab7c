"""Checks a probe makes before any model work (none of them needs a loaded model).

Each takes an adapter *class or instance* and asks it only what the
:class:`~entprobe.models.base.ModelAdapter` contract declares (``capabilities``,
``unsupported``, ``check_generation``, ``check_load_options``), so the pipeline never
asks which adapter class it holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..errors import ProbeInputError, UnsupportedError
from ..store.schema import LEVELS
from .options import MODALITY_LEVELS, ProbeOptions

__all__ = [
    "check_device",
    "check_generation",
    "check_levels",
    "default_levels",
    "required_capabilities",
]


def required_capabilities(levels: Iterable[str], modalities: Iterable[str]) -> dict[str, str]:
    """Adapter capabilities needed for ``levels`` over records of ``modalities``,
    each with the reason (for the error message)."""
    levels, modalities = set(levels), set(modalities)
    need: dict[str, str] = {}
    if "text" in modalities:
        if "prompt" in levels:
            need.setdefault("text-prompt", "prompt level of text prompts")
        if "text-gen" in levels:
            need.setdefault("text-gen", "text-gen level of text prompts")
        if "image-gen" in levels:
            need.setdefault("image-gen", "image-gen level of text prompts")
    if "image" in modalities and levels & {"prompt", "text-gen"}:
        need.setdefault("image-prompt", "image prompts")
        if "text-gen" in levels:
            need.setdefault("text-gen", "text-gen level of image prompts")
    return need


def check_levels(
    capabilities: Iterable[str],
    adapter_name: str,
    levels: Sequence[str],
    modalities: Iterable[str],
    reasons: Mapping[str, str] | None = None,
) -> None:
    """Raise before any work when the levels cannot be probed.

    Raises:
        ProbeInputError: a level that no given prompt set takes part in.
        UnsupportedError: a capability the adapter lacks (with the family's reason).
    """
    modalities = set(modalities)
    for level in levels:
        if not any(level in MODALITY_LEVELS[m] for m in modalities):
            wanted = "text prompts (--text-prompts)" if level == "image-gen" else "prompts"
            raise ProbeInputError(f"level {level!r} needs {wanted}; got only {sorted(modalities)} prompts")
    capabilities = set(capabilities)
    missing = {
        c: why for c, why in required_capabilities(levels, modalities).items() if c not in capabilities
    }
    if missing:
        have = ", ".join(sorted(capabilities)) or "nothing"
        need = "; ".join(f"{c!r} (for the {why})" for c, why in missing.items())
        because = "".join(f". No {c!r}: {(reasons or {})[c]}" for c in missing if c in (reasons or {}))
        raise UnsupportedError(
            f"adapter {adapter_name!r} does not support {need}; it supports: {have}{because}"
        )


def default_levels(adapter: Any, modalities: Iterable[str]) -> tuple[str, ...]:
    """Every level the adapter supports for prompts of ``modalities``.

    Raises:
        UnsupportedError: none.
    """
    modalities = set(modalities)
    supported = set(adapter.capabilities)
    levels = tuple(
        lv
        for lv in LEVELS
        if any(lv in MODALITY_LEVELS[m] for m in modalities)
        and all(c in supported for c in required_capabilities([lv], modalities))
    )
    if not levels:
        raise UnsupportedError(
            f"adapter {adapter.name!r} supports no level for {sorted(modalities)} prompts "
            f"(it supports: {', '.join(sorted(supported)) or 'nothing'})"
        )
    return levels


def check_generation(adapter: Any, levels: Sequence[str], options: ProbeOptions) -> None:
    """The generation options against the adapter (class or instance): ``--image-steps``
    / ``--image-size`` it takes, ``--image-response-step`` only with the image-gen level
    and a step-wise generator. (A loaded adapter also checks the steps against its
    number of steps: ``adapter.response_steps``.)

    Raises:
        ProbeInputError: naming what does not fit.
    """
    steps = options.image_response_steps
    adapter.check_generation(options.generation, steps)
    if steps != "final" and "image-gen" not in levels:
        raise ProbeInputError(
            f"--image-response-step {steps!r} applies to the image-gen level, which is not probed"
        )


def check_device(device: str) -> None:
    """Fail before any model work if ``device`` is malformed or not available here.

    Raises:
        ProbeInputError: naming the device and what this torch build offers.
    """
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ProbeInputError(f"--device {device!r} is not a torch device ({exc})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ProbeInputError(
                f"--device {device!r}: CUDA is not available to this torch "
                f"({torch.__version__}, built for CUDA {torch.version.cuda or 'none'})"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ProbeInputError(
                f"--device {device!r}: only {torch.cuda.device_count()} CUDA device(s) are visible"
            )
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ProbeInputError(f"--device {device!r}: MPS is not available on this machine")
