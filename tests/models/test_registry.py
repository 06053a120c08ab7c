"""The adapter registry: lookup by name, listing, detection from configs."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from entprobe.errors import ModelLoadError, UnsupportedError
from entprobe.models.base import CAPABILITIES, ModelAdapter
from entprobe.models.registry import ADAPTERS, detect_adapter, get_adapter, list_adapters


def _config_dir(tmp_path, **config):
    (tmp_path / "config.json").write_text(json.dumps(config))
    return str(tmp_path)


@pytest.mark.parametrize(
    ("family", "adapter"), [("bert", "hf-encoder"), ("llama", "hf-causal-lm"), ("chameleon", "chameleon")]
)
def test_detect_from_saved_tiny_models(tiny_dir, family, adapter):
    assert detect_adapter(str(tiny_dir(family))) == adapter


@pytest.mark.parametrize(
    ("model_type", "adapter"),
    [
        ("roberta", "hf-encoder"),
        ("distilbert", "hf-encoder"),
        ("gpt2", "hf-causal-lm"),
        ("qwen2", "hf-causal-lm"),
        ("janus", "janus"),
        ("emu3", "emu3"),
    ],
)
def test_detect_from_model_type(tmp_path, model_type, adapter):
    if adapter in ("janus", "emu3"):
        pytest.importorskip(ADAPTERS[adapter].split(":")[0], reason=f"{adapter} adapter not installed")
    assert detect_adapter(_config_dir(tmp_path, model_type=model_type)) == adapter


def test_detect_errors(tmp_path):
    with pytest.raises(ModelLoadError, match=r"no adapter handles model_type 'resnet'.*--adapter"):
        detect_adapter(_config_dir(tmp_path, model_type="resnet", architectures=["ResNetModel"]))
    with pytest.raises(ModelLoadError, match="has no model_type"):
        detect_adapter(_config_dir(tmp_path, architectures=["Thing"]))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelLoadError, match="without config.json.*--adapter"):
        detect_adapter(str(empty))
    with pytest.raises(ModelLoadError, match="cannot read the config of 'entprobe-tests/no-such-model'"):
        detect_adapter("entprobe-tests/no-such-model")


def test_detect_custom_code_needs_trust_remote_code(tmp_path):
    src = _config_dir(tmp_path, model_type="my-lm", auto_map={"AutoModelForCausalLM": "modeling_my.MyLM"})
    with pytest.raises(ModelLoadError, match="add --trust-remote-code"):
        detect_adapter(src)
    assert detect_adapter(src, trust_remote_code=True) == "hf-causal-lm"


def test_get_adapter():
    for name in ("hf-encoder", "hf-causal-lm", "chameleon"):
        cls = get_adapter(name)
        assert issubclass(cls, ModelAdapter) and cls.name == name
    known = r"unknown adapter 'nope'; known adapters: hf-encoder, hf-causal-lm"
    with pytest.raises(ModelLoadError, match=known):
        get_adapter("nope")


def test_list_adapters():
    entries = {e["name"]: e for e in list_adapters()}
    assert list(entries) == list(ADAPTERS)
    for e in entries.values():
        assert set(e) == {
            "name",
            "description",
            "capabilities",
            "unsupported",
            "model_types",
            "upstream",
            "batched",
        }
        assert set(e["capabilities"]) <= set(CAPABILITIES)
    assert entries["hf-encoder"]["capabilities"] == ["text-prompt"]
    assert "bert" in entries["hf-encoder"]["model_types"]
    assert entries["hf-causal-lm"]["model_types"] == ["*"]
    assert entries["chameleon"]["capabilities"] == ["image-prompt", "text-gen", "text-prompt"]


def test_listing_does_not_import_transformers():
    code = textwrap.dedent(
        """
        import sys
        from entprobe.models.registry import list_adapters
        list_adapters()
        print("transformers" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_chameleon_generate_image_is_unsupported(tiny_dir):
    adapter = get_adapter("chameleon").load(str(tiny_dir("chameleon")))
    no_decoder = "image-token logits are masked and its VQ model has no decoder"
    with pytest.raises(UnsupportedError, match=no_decoder):
        adapter.generate_image("a red cat")


def test_a_missing_local_path_is_named_as_such(tmp_path):
    with pytest.raises(ModelLoadError, match="no such folder or file"):
        detect_adapter(str(tmp_path / "not-here"))


def test_janusflow_is_detected_by_its_config_layout(tmp_path):
    """JanusFlow's release config (MultiModalityConfig) shares its model_type with the
    original-format Janus-Pro; the JanusFlow sub-configs tell them apart."""
    flow = tmp_path / "flow"
    flow.mkdir()
    (flow / "config.json").write_text(json.dumps({
        "model_type": "multi_modality", "vision_und_enc_config": {}, "vision_gen_enc_config": {},
        "vision_gen_dec_config": {}, "language_config": {},
    }))  # fmt: skip
    assert detect_adapter(str(flow)) == "janusflow"
    original = tmp_path / "janus-pro-original"
    original.mkdir()
    (original / "config.json").write_text(json.dumps({
        "model_type": "multi_modality", "vision_config": {}, "gen_vision_config": {}, "gen_head_config": {},
        "language_config": {},
    }))  # fmt: skip
    with pytest.raises(ModelLoadError, match=r"'multi_modality' model, but not in the layout of 'janusflow'"):
        detect_adapter(str(original))
