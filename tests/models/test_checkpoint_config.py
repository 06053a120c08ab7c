"""A configuration the installed transformers would silently ignore is refused before
loading (models/_checkpoint.py: check_config_keys)."""

from __future__ import annotations

import json

import pytest

import entprobe.models._checkpoint as checkpoint
from entprobe.errors import ModelLoadError


def _folder(tmp_path, cfg, name="config.json"):
    (tmp_path / name).write_text(json.dumps(cfg))
    return tmp_path


def test_rope_parameters_alone_under_transformers_4_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint, "_transformers_major", lambda: 4)
    folder = _folder(tmp_path, {"model_type": "qwen2", "rope_parameters": {"rope_theta": 1000000.0}})
    with pytest.raises(ModelLoadError, match=r"config.json \(rope_theta=1000000.0 only in rope_parameters\)"):
        checkpoint.check_config_keys(folder)


def test_nested_llm_configs_are_read_too(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint, "_transformers_major", lambda: 4)
    cfg = {
        "model_type": "janus",
        "text_config": {"rope_parameters": {"rope_theta": 500000.0, "rope_type": "default"}},
    }
    with pytest.raises(ModelLoadError, match=r"llm_config.json.text_config"):
        checkpoint.check_config_keys(_folder(tmp_path, cfg, "llm_config.json"))


def test_what_transformers_reads_passes(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint, "_transformers_major", lambda: 4)
    both = {"rope_theta": 1e6, "rope_parameters": {"rope_theta": 1e6}}
    checkpoint.check_config_keys(_folder(tmp_path, both))  # transformers 4 reads rope_theta
    monkeypatch.setattr(checkpoint, "_transformers_major", lambda: 5)
    checkpoint.check_config_keys(_folder(tmp_path, {"rope_parameters": {"rope_theta": 1e6}}))  # 5 reads it
    checkpoint.check_config_keys(tmp_path / "no-such-folder")  # hub ids are the loader's business
