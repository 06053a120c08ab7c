"""``showo``'s checks that need no upstream code (the rest: tests/upstream/test_upstream_showo.py)."""

from __future__ import annotations

import json

import pytest

from entprobe.errors import ModelLoadError
from entprobe.models.showo import ShowoAdapter


def test_the_clip_vit_variants_are_refused_by_name_before_anything_loads(tmp_path, monkeypatch):
    monkeypatch.delenv("ENTPROBE_SHOWO_SRC", raising=False)
    (tmp_path / "config.json").write_text(json.dumps({"w_clip_vit": True, "num_vq_tokens": 256}))
    with pytest.raises(ModelLoadError, match=r"CLIP-ViT variant \(config w_clip_vit: true"):
        ShowoAdapter.load(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"w_clip_vit": False, "num_vq_tokens": 256}))
    with pytest.raises(ModelLoadError, match="needs the upstream code"):  # past the check, to the code
        ShowoAdapter.load(str(tmp_path))
