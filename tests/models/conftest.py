"""Shared fixtures for the model tests: offline Hugging Face, tiny models built once."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

# Before anything imports huggingface_hub (it reads these once, at import time).
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


@pytest.fixture(autouse=True)
def _hf_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test in this folder may reach the Hugging Face hub."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    try:
        import huggingface_hub.constants as hf_constants
    except ImportError:  # pragma: no cover
        return
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``tiny_dir(family, seed=0)``: the folder of the tiny model of ``family`` (any key
    of ``entprobe.models.tiny.TINY_BUILDERS``), built once per session."""
    from entprobe.models.tiny import build_tiny

    built: dict[tuple[str, int], Path] = {}

    def make(family: str, *, seed: int = 0) -> Path:
        key = (family, seed)
        if key not in built:
            out = tmp_path_factory.mktemp(f"tiny-{family}-{seed}")
            built[key] = build_tiny(family, out, seed=seed)
        return built[key]

    return make
