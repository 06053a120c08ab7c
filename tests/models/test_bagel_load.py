"""``bagel``'s checks that need no upstream code (the rest: tests/upstream/test_upstream_bagel.py)."""

from __future__ import annotations

import pytest


def test_bagel_checks_the_folder_dtype_and_transformers_before_importing_upstream(tmp_path):
    import transformers

    from entprobe.errors import ModelLoadError
    from entprobe.models.bagel import BagelAdapter

    for name in ("llm_config.json", "vit_config.json", "ema.safetensors", "ae.safetensors", "vocab.json"):
        (tmp_path / name).write_text("{}")
    with pytest.raises(ModelLoadError, match="lacks"):
        BagelAdapter.load(str(tmp_path / "nope"))
    with pytest.raises(ModelLoadError, match="bfloat16"):
        BagelAdapter.load(str(tmp_path), dtype="float16")
    if int(transformers.__version__.split(".")[0]) >= 5:
        with pytest.raises(ModelLoadError, match="pins transformers 4.49"):
            BagelAdapter.load(str(tmp_path))


def test_a_bagel_reca_folder_is_recognised_by_its_weights_file(tmp_path):
    """BAGEL-RecA ships model_bf16.safetensors to put in a BAGEL-7B-MoT folder in place
    of ema.safetensors: the folder check accepts either, refuses both without a choice."""
    from entprobe.errors import ModelLoadError
    from entprobe.models.bagel import BagelAdapter

    for name in ("llm_config.json", "vit_config.json", "ae.safetensors", "vocab.json"):
        (tmp_path / name).write_text("{}")
    with pytest.raises(ModelLoadError, match=r"lacks \['ema.safetensors or model_bf16.safetensors'\]"):
        BagelAdapter.load(str(tmp_path))
    (tmp_path / "model_bf16.safetensors").write_text("{}")
    with pytest.raises(ModelLoadError, match="bfloat16"):  # past the folder check, to the dtype check
        BagelAdapter.load(str(tmp_path), dtype="float16")
    (tmp_path / "ema.safetensors").write_text("{}")
    with pytest.raises(ModelLoadError, match="holds both"):
        BagelAdapter.load(str(tmp_path))
    with pytest.raises(ModelLoadError, match="bfloat16"):  # a named file settles it
        BagelAdapter.load(str(tmp_path), dtype="float16", weights="model_bf16.safetensors")
