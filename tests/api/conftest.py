"""Tiny models for the notebook-API and Ray tests, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from entprobe.models.tiny import build_tiny

    return build_tiny("llama", tmp_path_factory.mktemp("api-tiny-llama"))


@pytest.fixture(scope="session")
def tiny_janus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from entprobe.models.tiny import build_tiny

    return build_tiny("janus", tmp_path_factory.mktemp("api-tiny-janus"))
