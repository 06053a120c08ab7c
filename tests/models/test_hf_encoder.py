"""HFEncoderAdapter on tiny BERT and DistilBERT models."""

from __future__ import annotations

import shutil

import pytest
import torch
from PIL import Image

from entprobe.capture import Role
from entprobe.errors import ModelLoadError, ProbeInputError, UnsupportedError
from entprobe.models.hf_encoder import HFEncoderAdapter

TEXT = "A red circle and a blue square."


@pytest.fixture(scope="module")
def bert(tiny_dir):
    return HFEncoderAdapter.load(str(tiny_dir("bert")))


def test_load_finds_layers_and_context(bert):
    assert bert.layers_path == "encoder.layer"
    assert bert.n_layers == 2
    assert bert.max_context == 128
    ident = bert.identity()
    assert ident["model_type"] == "bert" and ident["n_layers"] == 2


def test_encode_text_roles_and_content(bert):
    enc = bert.encode_text(TEXT)
    tok = bert.tokenizer
    assert enc.input_ids[0] == tok.cls_token_id and enc.input_ids[-1] == tok.sep_token_id
    assert enc.roles[0] == enc.roles[-1] == Role.SPECIAL
    assert set(enc.roles[1:-1]) == {Role.TEXT}
    content = enc.content()
    assert content.shape == (bert.n_layers + 1, bert.count_tokens(TEXT), 32)
    torch.testing.assert_close(content, enc.states[:, 1:-1], rtol=0, atol=0)
    assert enc.content(include_special=True).shape[1] == enc.n_tokens


def test_encode_text_states_equal_output_hidden_states(bert):
    enc = bert.encode_text(TEXT)
    with torch.no_grad():
        ref = bert.model(enc.input_ids[None], output_hidden_states=True).hidden_states
    torch.testing.assert_close(enc.states, torch.stack(ref)[:, 0], rtol=0, atol=1e-6)


def test_unknown_token_counts_as_text(bert):
    enc = bert.encode_text("red \u2603 square")  # a snowman is not in the tiny vocabulary
    unk = (enc.input_ids == bert.tokenizer.unk_token_id).nonzero().flatten().tolist()
    assert unk and all(enc.roles[i] == Role.TEXT for i in unk)


def test_too_long_prompt_raises(bert):
    with pytest.raises(ProbeInputError, match=r"the prompt has \d+ tokens; the model accepts at most 128"):
        bert.encode_text("red " * 200)


def test_generation_and_images_are_unsupported(bert):
    with pytest.raises(UnsupportedError, match="does not support 'text-gen'"):
        bert.generate_text(TEXT)
    with pytest.raises(UnsupportedError, match="does not support 'image-prompt'"):
        bert.encode_image(Image.new("RGB", (8, 8)))
    with pytest.raises(UnsupportedError, match="does not support 'image-gen'"):
        bert.generate_image(TEXT)


def test_missing_checkpoint_raises_model_load_error(tmp_path):
    with pytest.raises(ModelLoadError, match="cannot load the tokenizer of"):
        HFEncoderAdapter.load(str(tmp_path / "missing"))


def test_distilbert_layers_are_found(tiny_dir, tmp_path):
    from transformers import DistilBertConfig, DistilBertModel

    src = tiny_dir("bert")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(src / name, tmp_path / name)
    torch.manual_seed(0)
    cfg = DistilBertConfig(
        vocab_size=300, dim=32, n_layers=2, n_heads=4, hidden_dim=64, max_position_embeddings=64
    )
    DistilBertModel(cfg).save_pretrained(tmp_path)

    adapter = HFEncoderAdapter.load(str(tmp_path))
    assert adapter.layers_path == "transformer.layer"
    assert adapter.max_context == 64
    enc = adapter.encode_text(TEXT)
    with torch.no_grad():
        ref = adapter.model(enc.input_ids[None], output_hidden_states=True).hidden_states
    torch.testing.assert_close(enc.states, torch.stack(ref)[:, 0], rtol=0, atol=1e-6)
