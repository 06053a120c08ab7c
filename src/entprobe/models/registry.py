"""Adapter names -> adapter classes, imported lazily; auto-detection from a config.

Adding a model family means one adapter file and one line in :data:`ADAPTERS`.
Adapter modules import transformers inside their methods only, so reading their
class attributes (name, capabilities, model types) stays cheap.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from ..errors import ModelLoadError
from .base import ModelAdapter

__all__ = ["ADAPTERS", "FALLBACK_ADAPTER", "detect_adapter", "get_adapter", "list_adapters"]

#: adapter name -> "module:Class". Detection tries them in this order (by their
#: ``model_types``), then falls back to :data:`FALLBACK_ADAPTER`.
ADAPTERS: dict[str, str] = {
    "hf-encoder": "entprobe.models.hf_encoder:HFEncoderAdapter",
    "hf-causal-lm": "entprobe.models.hf_causal_lm:HFCausalLMAdapter",
    "janus": "entprobe.models.janus:JanusAdapter",
    "emu3": "entprobe.models.emu3:Emu3Adapter",
    "chameleon": "entprobe.models.chameleon:ChameleonAdapter",
    "omnigen2": "entprobe.models.omnigen2:OmniGen2Adapter",
    "showo2": "entprobe.models.showo2:Showo2Adapter",
    "bagel": "entprobe.models.bagel:BagelAdapter",
    "showo": "entprobe.models.showo:ShowoAdapter",
    "harmon": "entprobe.models.harmon:HarmonAdapter",
    "janusflow": "entprobe.models.janusflow:JanusFlowAdapter",
}

#: Handles any ``model_type`` that ``AutoModelForCausalLM`` knows and no other adapter claims.
FALLBACK_ADAPTER = "hf-causal-lm"


def _known() -> str:
    return ", ".join(ADAPTERS)


def _import(name: str) -> type[ModelAdapter]:
    module_name, attr = ADAPTERS[name].split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelLoadError(f"adapter {name!r} cannot be imported ({module_name}): {exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ModelLoadError(f"adapter {name!r}: {module_name} defines no {attr}") from None


def _is_absent(name: str, exc: ModelLoadError) -> bool:
    # The adapter's own module is missing (not one of its imports): treat it as not installed.
    cause = exc.__cause__
    return isinstance(cause, ModuleNotFoundError) and cause.name == ADAPTERS[name].split(":")[0]


def get_adapter(name: str) -> type[ModelAdapter]:
    """The adapter class registered as ``name``.

    Raises:
        ModelLoadError: unknown name (the message lists the known ones), or its module
            cannot be imported.
    """
    if name not in ADAPTERS:
        raise ModelLoadError(f"unknown adapter {name!r}; known adapters: {_known()}")
    return _import(name)


def list_adapters() -> list[dict[str, Any]]:
    """One entry per registered adapter: ``name``, ``description``, ``capabilities``
    (sorted), ``unsupported`` (capability -> why not), ``model_types`` (``["*"]`` for
    the causal-LM fallback) and ``batched`` (whether ``--batch-size`` runs samples
    together or one at a time). An adapter
    whose module is not installed is listed with its description saying so."""
    out = []
    for name in ADAPTERS:
        try:
            cls = _import(name)
        except ModelLoadError as exc:
            out.append(
                {
                    "name": name,
                    "description": f"unavailable: {exc}",
                    "capabilities": [],
                    "unsupported": {},
                    "model_types": [],
                    "upstream": None,
                    "batched": False,
                }
            )
            continue
        types = list(cls.model_types) or (["*"] if name == FALLBACK_ADAPTER else [])
        out.append(
            {
                "name": name,
                "description": cls.description,
                "capabilities": sorted(cls.capabilities),
                "unsupported": dict(cls.unsupported),
                "model_types": types,
                "upstream": cls.upstream.describe() if cls.upstream is not None else None,
                "batched": bool(getattr(cls, "batched", False)),
            }
        )
    return out


def _read_config(source: str, *, revision: str | None) -> dict[str, Any]:
    path = Path(source).expanduser()
    if path.exists():
        cfg_file = path / "config.json" if path.is_dir() else path
        if not cfg_file.is_file():
            raise ModelLoadError(
                f"{source!r} is a folder without config.json; cannot tell its model type. "
                f"Pass --adapter explicitly (known: {_known()})"
            )
        try:
            return json.loads(cfg_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot read {cfg_file}: {exc}") from exc
    if source.startswith(("/", "./", "../", "~")) or source.count("/") > 1:
        # Looks like a path, and hub ids are at most "owner/name".
        raise ModelLoadError(f"no such folder or file: {source!r} (given as the model)")
    # A hub id: read config.json through the Hugging Face cache (works offline when
    # cached). get_config_dict runs no model code, so trust_remote_code is not needed.
    from transformers import PretrainedConfig

    kwargs = {"revision": revision} if revision is not None else {}
    try:
        cfg, _ = PretrainedConfig.get_config_dict(source, **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"cannot read the config of {source!r}: {str(exc).rstrip('.')}. Is it a local folder or a hub id "
            "in the Hugging Face cache (HF_HUB_OFFLINE=1 forbids downloads)? "
            f"Pass --adapter explicitly to skip detection (known: {_known()})"
        ) from exc
    return cfg


def _detect_pipeline(source: str) -> str | None:
    """The adapter claiming a local diffusers-style folder by its ``model_index.json``
    ``_class_name`` (such folders have no top-level ``config.json``), else None."""
    index = Path(source).expanduser() / "model_index.json"
    if (Path(source).expanduser() / "config.json").exists() or not index.is_file():
        return None
    try:
        class_name = json.loads(index.read_text(encoding="utf-8")).get("_class_name")
    except (OSError, ValueError, AttributeError) as exc:
        raise ModelLoadError(f"cannot read {index}: {exc}") from exc
    for name in ADAPTERS:
        try:
            cls = _import(name)
        except ModelLoadError:
            continue
        if class_name in cls.pipeline_classes:
            return name
    raise ModelLoadError(
        f"{source!r} is a diffusers-style folder of a {class_name!r} pipeline that no adapter handles; "
        f"pass --adapter NAME (known: {_known()})"
    )


def detect_adapter(source: str, *, trust_remote_code: bool = False, revision: str | None = None) -> str:
    """The adapter name for a checkpoint, from its config's ``model_type``.

    Adapters are tried in :data:`ADAPTERS` order by their ``model_types``; a type no
    adapter claims goes to ``hf-causal-lm`` when ``AutoModelForCausalLM`` supports it
    (or, with ``trust_remote_code``, when the config maps ``AutoModelForCausalLM`` to
    custom code).

    Args:
        source: local folder (its ``config.json``) or hub id (read from the HF cache).
        trust_remote_code: whether custom-code causal LMs may be accepted.
        revision: hub revision to read.

    Raises:
        ModelLoadError: the config cannot be read, has no ``model_type``, or no
            adapter handles it; the message says what was found and suggests ``--adapter``.
    """
    by_index = _detect_pipeline(source)
    if by_index is not None:
        return by_index
    cfg = _read_config(source, revision=revision)
    model_type = cfg.get("model_type")
    archs = cfg.get("architectures") or []
    if not model_type:
        raise ModelLoadError(
            f"the config of {source!r} has no model_type (architectures: {archs or 'none'}); "
            f"pass --adapter explicitly (known: {_known()})"
        )
    claimed: list[tuple[str, tuple[str, ...]]] = []  # model_type matched, config keys not
    for name in ADAPTERS:
        if name == FALLBACK_ADAPTER:
            continue
        try:
            cls = _import(name)
        except ModelLoadError as exc:
            if _is_absent(name, exc):
                continue
            raise
        if model_type in cls.model_types:
            if all(key in cfg for key in cls.config_keys):
                return name
            claimed.append((name, cls.config_keys))

    if claimed:
        found = ", ".join(f"{n!r} (needs config keys {list(keys)})" for n, keys in claimed)
        raise ModelLoadError(
            f"the config of {source!r} is a {model_type!r} model, but not in the layout of {found}; "
            f"it has keys {sorted(cfg)[:12]}. Pass --adapter NAME if you know the family (known: {_known()})"
        )
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    if model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return FALLBACK_ADAPTER
    custom_causal = "AutoModelForCausalLM" in (cfg.get("auto_map") or {})
    if custom_causal and trust_remote_code:
        return FALLBACK_ADAPTER
    hint = (
        " Its config maps AutoModelForCausalLM to custom code: add --trust-remote-code."
        if custom_causal
        else ""
    )
    raise ModelLoadError(
        f"no adapter handles model_type {model_type!r} (architectures: {archs or 'none'}) "
        f"of {source!r}.{hint} Pass --adapter NAME to choose one (known: {_known()})"
    )
