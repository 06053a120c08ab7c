"""Emu3Adapter on the tiny random Emu3 (32 px -> 4 x 4 visual tokens + end-of-line, 3 layers)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from entprobe.capture import Role
from entprobe.errors import ModelLoadError
from entprobe.models.base import GenerationSettings
from entprobe.models.emu3 import Emu3Adapter
from entprobe.models.tiny._tokenizer import TINY_CONTEXT

TEXT = "Draw a red circle on a white table."
QUESTION = "How many triangles are in the picture?"
GREEDY = GenerationSettings(max_new_tokens=6)
ATOL = 1e-5
H = W = 4  # the tiny model's generated grid (image_area 32 x 32, spatial factor 8)


@pytest.fixture(scope="module")
def emu3(tiny_dir):
    return Emu3Adapter.load(str(tiny_dir("emu3")))


def _image(height: int = 30, width: int = 40, seed: int = 0) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def _rendered(emu3, text: str, *, image: bool) -> str:
    content = ([{"type": "image"}] if image else []) + [{"type": "text", "text": text}]
    return emu3.processor.apply_chat_template(
        [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
    )


def _close(actual, expected, atol=ATOL):
    torch.testing.assert_close(actual, expected, rtol=0, atol=atol)


def _text_of(emu3, enc) -> str:
    ids = [int(t) for t, r in zip(enc.input_ids, enc.roles) if r == Role.TEXT]
    return emu3.tokenizer.decode(ids).strip()


def _ids(emu3, token: str) -> int:
    return emu3.tokenizer.convert_tokens_to_ids(token)


# --- loading ------------------------------------------------------------------------------
def test_load_and_introspection(emu3):
    assert emu3.layers_path == "model.text_model.layers"
    assert emu3.n_layers == 3
    assert emu3.capabilities == {"text-prompt", "image-prompt", "text-gen", "image-gen"}
    assert emu3.max_context == TINY_CONTEXT
    assert emu3.image_grid == (H, W)
    assert emu3.count_tokens(TEXT) == len(emu3.tokenizer(TEXT, add_special_tokens=False)["input_ids"])
    ident = emu3.identity()
    assert ident["model_type"] == "emu3" and ident["image_grid"] == [H, W]


def test_load_rejects_other_family(tiny_dir):
    with pytest.raises(ModelLoadError, match="is a 'janus' model, not emu3"):
        Emu3Adapter.load(str(tiny_dir("janus")))


# --- prompt level ---------------------------------------------------------------------------
def test_text_prompt_ids_and_roles(emu3):
    enc = emu3.encode_text(TEXT)
    expected = emu3.processor(text=_rendered(emu3, TEXT, image=False), return_tensors="pt")["input_ids"][0]
    assert enc.input_ids.tolist() == expected.tolist()
    assert enc.input_ids[0] == emu3.tokenizer.bos_token_id and enc.roles[0] == Role.SPECIAL
    assert Role.IMAGE not in enc.roles
    assert _text_of(emu3, enc) == TEXT
    text_at = [i for i, r in enumerate(enc.roles) if r == Role.TEXT]
    assert text_at == list(range(text_at[0], text_at[-1] + 1))
    assert 1 < text_at[0] and text_at[-1] < enc.n_tokens - 1  # "USER: " and " ASSISTANT:" are SPECIAL


def test_prompt_without_chat_template(emu3, monkeypatch):
    monkeypatch.setattr(emu3.processor, "chat_template", None)
    enc = emu3.encode_text(f" {TEXT} ")
    expected = emu3.processor(text=TEXT, return_tensors="pt")["input_ids"][0]
    assert enc.input_ids.tolist() == expected.tolist()
    assert enc.roles == [Role.SPECIAL] + [Role.TEXT] * (enc.n_tokens - 1)
    enc = emu3.encode_image(_image(32, 32))
    assert enc.roles.count(Role.IMAGE) == 16 and Role.TEXT not in enc.roles


@pytest.mark.parametrize(("size", "grid"), [((32, 32), (4, 4)), ((30, 40), (3, 4))], ids=["square", "wide"])
def test_image_prompt_roles(emu3, size, grid):
    image = _image(*size)
    enc = emu3.encode_image(image, QUESTION)
    p = emu3.processor
    expected = p(text=_rendered(emu3, QUESTION, image=True), images=image, return_tensors="pt")
    assert enc.input_ids.tolist() == expected["input_ids"][0].tolist()
    rows, cols = grid
    assert [int(v) // 8 for v in expected["image_sizes"][0]] == [rows, cols]
    placeholders = [i for i, t in enumerate(enc.input_ids.tolist()) if t == emu3.image_token_id]
    assert len(placeholders) == rows * (cols + 1)
    image_at = [i for i, r in enumerate(enc.roles) if r == Role.IMAGE]
    assert len(image_at) == rows * cols
    # The last placeholder of each row carries the end-of-line token: SPECIAL.
    eol_at = sorted(set(placeholders) - set(image_at))
    assert eol_at == placeholders[cols :: cols + 1]
    assert all(enc.roles[i] == Role.SPECIAL for i in eol_at)
    # What the model puts there: layer 0 holds the end-of-line embedding at the SPECIAL
    # placeholders and visual-token embeddings at the IMAGE ones.
    embed = emu3.model.get_input_embeddings().weight.detach()
    eol = emu3.model.vocabulary_mapping.eol_token_id
    for i in eol_at:
        _close(enc.states[0, i], embed[eol], atol=0)
    visual = embed[list(emu3.model.vocabulary_mapping.image_tokens)]
    for i in image_at:
        assert (visual == enc.states[0, i]).all(dim=-1).any()
    # Image markers and the "H*W" size text around the grid are SPECIAL; the question is TEXT.
    start = enc.input_ids.tolist().index(_ids(emu3, p.image_start_token))
    end = enc.input_ids.tolist().index(_ids(emu3, p.image_end_token))
    around = [i for i in range(start, end + 1) if i not in image_at]
    assert all(enc.roles[i] == Role.SPECIAL for i in around)
    assert _text_of(emu3, enc) == QUESTION


@pytest.mark.parametrize("with_image", [False, True], ids=["text", "image"])
def test_hooked_states_match_output_hidden_states(emu3, with_image):
    p = emu3.processor
    if with_image:
        enc = emu3.encode_image(_image(), QUESTION)
        inputs = p(text=_rendered(emu3, QUESTION, image=True), images=_image(), return_tensors="pt")
    else:
        enc = emu3.encode_text(TEXT)
        inputs = p(text=_rendered(emu3, TEXT, image=False), return_tensors="pt")
    with torch.no_grad():
        out = emu3.model(**inputs, output_hidden_states=True)
    hidden = [h[0] for h in out.hidden_states]
    assert len(hidden) == emu3.n_layers + 1
    for layer in range(emu3.n_layers):
        _close(enc.states[layer], hidden[layer])
    _close(emu3.model.model.text_model.norm(enc.states[-1]), hidden[-1])


# --- text generation -------------------------------------------------------------------------
@pytest.mark.parametrize("with_image", [False, True], ids=["text", "image"])
def test_text_generation_states(emu3, with_image):
    image = _image() if with_image else None
    gen = emu3.generate_text(QUESTION, image=image, settings=GREEDY, keep_generation_states=True)
    n = gen.n_prompt_tokens
    response = gen.response_ids.tolist()
    assert 1 <= len(response) <= GREEDY.max_new_tokens
    assert gen.encoded.input_ids[n:].tolist() == response
    assert emu3.image_token_id not in response
    prompt = emu3.encode_image(image, QUESTION) if with_image else emu3.encode_text(QUESTION)
    assert gen.prompt.roles == prompt.roles
    _close(gen.prompt.states, prompt.states)
    roles = gen.encoded.roles[n:]
    assert set(roles) <= {Role.GENERATED_TEXT, Role.SPECIAL}
    k = sum(r == Role.GENERATED_TEXT for r in roles[:-1])
    assert k >= 1
    assert gen.generation_states.shape == (4, k, 32)
    _close(gen.generation_states, gen.response_states()[:, :k])


# --- image generation ------------------------------------------------------------------------
def _check_image_generation(emu3, gen):
    p, tok = emu3.processor, emu3.tokenizer
    n = gen.n_prompt_tokens
    expected = p(text=TEXT, return_for_image_generation=True, image_area=32 * 32, return_tensors="pt")
    assert gen.prompt.input_ids.tolist() == expected["input_ids"][0].tolist()
    assert _text_of(emu3, gen.prompt) == TEXT
    # H rows of W visual tokens + end-of-line, then end-of-frame, end-of-image, EOS.
    ids = gen.response_ids.tolist()
    assert len(ids) == H * (W + 1) + 3
    assert gen.encoded.input_ids[n:].tolist() == ids
    eol = emu3.model.vocabulary_mapping.eol_token_id
    assert ids[W : H * (W + 1) : W + 1] == [eol] * H
    assert ids[-3:] == [_ids(emu3, p.eof_token), _ids(emu3, p.image_end_token), tok.eos_token_id]
    visual = set(emu3.model.vocabulary_mapping.image_tokens)
    roles = gen.encoded.roles[n:]
    assert [r == Role.GENERATED_IMAGE for r in roles] == [t in visual for t in ids]
    assert roles.count(Role.GENERATED_IMAGE) == H * W
    assert gen.response_states().shape == (4, H * W, 32)
    # Every visual token went through a forward pass (the last token is EOS).
    assert gen.generation_states.shape == (4, H * W, 32)
    _close(gen.generation_states, gen.response_states())
    assert gen.image.mode == "RGB" and gen.image.size == (32, 32)


def test_image_generation_with_guidance(emu3):
    gen = emu3.generate_image(TEXT, keep_generation_states=True)
    _check_image_generation(emu3, gen)
    # The image is the VQ decoding of the tokens, [-1, 1] -> 0..255.
    with torch.no_grad():
        pixels = emu3.model.decode_image_tokens(image_tokens=gen.response_ids[None], height=H, width=W)[0]
    expected = ((pixels.permute(1, 2, 0).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    np.testing.assert_array_equal(np.asarray(gen.image), expected)


def test_image_generation_without_guidance(emu3):
    settings = GenerationSettings(image_do_sample=False, guidance_scale=1.0)
    gen = emu3.generate_image(TEXT, settings=settings, keep_generation_states=True)
    _check_image_generation(emu3, gen)


def test_image_generation_is_seeded_and_leaves_global_rng_alone(emu3):
    state = torch.get_rng_state()
    a = emu3.generate_image(TEXT, settings=GenerationSettings(seed=1))
    assert torch.equal(torch.get_rng_state(), state)
    b = emu3.generate_image(TEXT, settings=GenerationSettings(seed=1))
    c = emu3.generate_image(TEXT, settings=GenerationSettings(seed=2))
    assert a.response_ids.tolist() == b.response_ids.tolist()
    assert a.response_ids.tolist() != c.response_ids.tolist()
    assert a.generation_states is None
