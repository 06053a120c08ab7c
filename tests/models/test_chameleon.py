"""ChameleonAdapter on a tiny Chameleon (32 px images -> 64 image tokens)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from entprobe.capture import Role
from entprobe.errors import ModelLoadError, UnsupportedError
from entprobe.models.base import GenerationSettings
from entprobe.models.chameleon import ChameleonAdapter

TEXT = "What colour is the square?"
GREEDY = GenerationSettings(max_new_tokens=6)


@pytest.fixture(scope="module")
def chameleon(tiny_dir):
    return ChameleonAdapter.load(str(tiny_dir("chameleon")))


def _image(seed: int) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(40, 48, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def _runs(roles) -> str:
    """Roles as a run-length string, e.g. 'S1 I64 S1 T5 S1'."""
    out, prev, n = [], None, 0
    for r in roles:
        if r == prev:
            n += 1
            continue
        if prev is not None:
            out.append(f"{prev.value[0].upper()}{n}")
        prev, n = r, 1
    out.append(f"{prev.value[0].upper()}{n}")
    return " ".join(out)


def test_load(chameleon):
    assert chameleon.layers_path == "model.layers"
    assert chameleon.n_layers == 2
    assert chameleon.supports("image-prompt") and not chameleon.supports("image-gen")


def test_generate_image_refuses_before_any_work(chameleon, monkeypatch):
    def no_work(*args, **kwargs):  # pragma: no cover - must not run
        raise AssertionError("the model ran")

    monkeypatch.setattr(chameleon.model, "forward", no_work)
    monkeypatch.setattr(chameleon.model, "generate", no_work)
    with pytest.raises(UnsupportedError, match="chameleon in transformers is understanding-only"):
        chameleon.generate_image("a red cat")


def test_encode_text_roles(chameleon):
    enc = chameleon.encode_text(TEXT)
    tok = chameleon.tokenizer
    assert enc.input_ids[0] == tok.bos_token_id and enc.input_ids[-1] == tok.sep_token_id
    n_text = chameleon.count_tokens(TEXT)
    assert _runs(enc.roles) == f"S1 T{n_text} S1"
    torch.testing.assert_close(enc.content(), enc.states[:, 1:-1], rtol=0, atol=0)


def test_encode_image_roles_and_states(chameleon):
    enc = chameleon.encode_image(_image(0), TEXT)
    p = chameleon.processor
    n_text = chameleon.count_tokens(TEXT)
    assert _runs(enc.roles) == f"S2 I{p.image_seq_length} S1 T{n_text} S1"
    assert enc.input_ids[1] == p.image_start_token_id
    assert enc.input_ids[2 + p.image_seq_length] == p.image_end_token_id
    assert enc.content().shape == (3, p.image_seq_length + n_text, 32)
    # The image comes first, so its states do not depend on the question (causal attention) ...
    other = chameleon.encode_image(_image(0), "How many?")
    image = enc.select([Role.IMAGE])
    torch.testing.assert_close(other.select([Role.IMAGE]), image, rtol=0, atol=1e-6)
    # ... but they do depend on the image: the VQ tokens replaced the placeholders.
    assert not torch.allclose(chameleon.encode_image(_image(1), TEXT).select([Role.IMAGE]), image)


@pytest.mark.parametrize("with_image", [False, True])
def test_generation_states_equal_teacher_forced(chameleon, with_image):
    image = _image(0) if with_image else None
    prompt = chameleon.encode_image(image, TEXT) if with_image else chameleon.encode_text(TEXT)
    gen = chameleon.generate_text(TEXT, image=image, settings=GREEDY, keep_generation_states=True)
    n = gen.n_prompt_tokens
    assert n == prompt.n_tokens and gen.encoded.roles[:n] == prompt.roles
    torch.testing.assert_close(gen.prompt.states, prompt.states, rtol=0, atol=1e-5)
    assert set(gen.encoded.roles[n:]) <= {Role.GENERATED_TEXT, Role.SPECIAL}
    k = gen.generation_states.shape[1]
    assert k >= 3
    torch.testing.assert_close(gen.generation_states, gen.response_states()[:, :k], rtol=0, atol=1e-5)


def test_other_family_is_refused(tiny_dir):
    with pytest.raises(ModelLoadError, match="is a 'llama' model, not chameleon"):
        ChameleonAdapter.load(str(tiny_dir("llama")))
