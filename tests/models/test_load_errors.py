"""Load failures sorted by cause, each with its own advice (models/_load_errors.py)."""

from __future__ import annotations

import pickle

import pytest

from entprobe.errors import ModelLoadError
from entprobe.models._load_errors import explain_load_error, load_problem


@pytest.mark.parametrize(
    ("exc", "kind", "named"),
    [
        (
            ModuleNotFoundError("No module named 'torchvision'", name="torchvision"),
            "missing module",
            "'torchvision'",
        ),
        (
            ImportError("cannot import name 'Cache' from 'transformers.cache_utils' (/x/cache_utils.py)"),
            "incompatible library",
            "'transformers.cache_utils'",
        ),
        (
            Exception("data did not match any variant of untagged enum ModelWrapper"),
            "incompatible library",
            "tokenizers",
        ),
        (
            OSError("Error while deserializing header: HeaderTooLarge"),
            "damaged checkpoint",
            "download it again",
        ),
        (pickle.UnpicklingError("invalid load key, '<'."), "damaged checkpoint", "download it again"),
        (EOFError("Ran out of input"), "damaged checkpoint", "download it again"),
        (
            FileNotFoundError(2, "No such file or directory", "/ckpt/ema.safetensors"),
            "wrong layout",
            "ema.safetensors",
        ),
        (OSError("m does not appear to have a file named config.json"), "wrong layout", "--adapter"),
        (RuntimeError("something else entirely"), "unknown", "not one entprobe recognises"),
    ],
)
def test_each_cause_gets_its_own_advice(exc, kind, named):
    got_kind, advice = load_problem(exc)
    assert got_kind == kind
    assert named in advice or named in str(explain_load_error(exc, adapter="x", source="m"))


def test_the_message_keeps_the_original_error_and_says_nothing_was_written():
    err = explain_load_error(
        ModuleNotFoundError("No module named 'timm'", name="timm"), adapter="harmon", source="/m"
    )
    assert isinstance(err, ModelLoadError)
    text = str(err)
    assert "adapter 'harmon' cannot load '/m' (missing module)" in text
    assert "No module named 'timm'" in text and "pip install timm" in text and "Nothing was written" in text
    assert "download it again" not in text  # the old hint pointed the wrong way for a missing module


def test_load_and_probe_reports_a_missing_module_before_any_store(tmp_path, monkeypatch):
    import entprobe.models.registry as registry
    from entprobe.models.hf_causal_lm import HFCausalLMAdapter
    from entprobe.pipeline.probe import load_and_probe

    class NeedsTimm(HFCausalLMAdapter):
        @classmethod
        def load_from(cls, source, options):
            raise ModuleNotFoundError("No module named 'timm'", name="timm")

    monkeypatch.setattr(registry, "get_adapter", lambda name: NeedsTimm)
    store = tmp_path / "s.duckdb"
    with pytest.raises(ModelLoadError, match=r"\(missing module\).*pip install timm"):
        load_and_probe(
            "some/model",
            store,
            adapter="fake",
            levels="prompt",
            text_prompts=["sample:t2i"],
            log=lambda s: None,
        )
    assert not store.exists()
