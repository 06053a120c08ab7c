"""JanusAdapter on the tiny random Janus (32 px images -> 16 image tokens, 3 layers)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from entprobe.capture import Role
from entprobe.errors import ModelLoadError, ProbeInputError
from entprobe.models._multimodal import label_offsets, template_parts
from entprobe.models.base import GenerationSettings
from entprobe.models.janus import JanusAdapter
from entprobe.models.tiny._tokenizer import TINY_CONTEXT

TEXT = "Draw a red circle on a white table."
QUESTION = "How many triangles are in the picture?"
GREEDY = GenerationSettings(max_new_tokens=6)
ATOL = 1e-5


@pytest.fixture(scope="module")
def janus(tiny_dir):
    return JanusAdapter.load(str(tiny_dir("janus")))


def _image(seed: int = 0) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(30, 40, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def _rendered(janus, text: str, *, image: bool) -> str:
    content = ([{"type": "image"}] if image else []) + [{"type": "text", "text": text}]
    return janus.processor.apply_chat_template(
        [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
    )


def _close(actual, expected, atol=ATOL):
    torch.testing.assert_close(actual, expected, rtol=0, atol=atol)


def _text_of(janus, enc) -> str:
    ids = [int(t) for t, r in zip(enc.input_ids, enc.roles) if r == Role.TEXT]
    return janus.tokenizer.decode(ids).strip()


# --- loading ------------------------------------------------------------------------------
def test_load_and_introspection(janus):
    assert janus.layers_path == "model.language_model.layers"
    assert janus.n_layers == 3
    assert janus.capabilities == {"text-prompt", "image-prompt", "text-gen", "image-gen"}
    assert janus.max_context == TINY_CONTEXT
    assert janus.num_image_tokens == 16
    assert janus.count_tokens(TEXT) == len(janus.tokenizer(TEXT, add_special_tokens=False)["input_ids"])
    ident = janus.identity()
    assert ident["model_type"] == "janus" and ident["n_layers"] == 3 and ident["num_image_tokens"] == 16


def test_load_rejects_other_family_and_missing_folder(tiny_dir, tmp_path):
    with pytest.raises(ModelLoadError, match="is a 'emu3' model, not janus"):
        JanusAdapter.load(str(tiny_dir("emu3")))
    with pytest.raises(ModelLoadError, match="cannot load the config"):
        JanusAdapter.load(str(tmp_path / "nothing-here"))


# --- prompt helpers (shared with Emu3) ---------------------------------------------------------
class _Templated:
    """A stand-in processor whose chat template is plain Python."""

    def __init__(self, render):
        self.chat_template = "custom"
        self._render = render

    def apply_chat_template(self, messages, **kwargs):
        return self._render(messages[0]["content"][-1]["text"])


def test_template_parts():
    plain = _Templated(lambda t: f"User: {t.strip()}\nAssistant:")
    assert template_parts(plain, [], "  hi there ", ("", "")) == ("User: ", "hi there", "\nAssistant:")
    # The text rendered twice: the first occurrence after the template's prefix is the text.
    twice = _Templated(lambda t: f"Q: {t} (again: {t})")
    assert template_parts(twice, [], "hi", ("", "")) == ("Q: ", "hi", " (again: hi)")
    # A template that rewrites the text beyond recognition cannot be labelled.
    shouting = _Templated(lambda t: f"Say: {t.upper()}")
    with pytest.raises(ProbeInputError, match="cannot find the prompt text"):
        template_parts(shouting, [], "hi", ("", ""))
    no_template = _Templated(None)
    no_template.chat_template = None
    assert template_parts(no_template, [], " q ", ("<img>", "")) == ("<img>", "q", "")


def test_label_offsets():
    # "ab <I> cd" with "<I>" (3 chars at 3..6) expanded to "[xx]" (4 chars), user text "cd".
    replacements = [{"span": (3, 6), "new_span": (3, 7)}]
    ids = [10, 11, 1, 9, 9, 2, 12, 13]
    offsets = [(0, 2), (2, 3), (3, 4), (4, 5), (5, 6), (6, 7), (7, 8), (8, 10)]
    roles = label_offsets(ids, offsets, replacements, (7, 9), image_token_id=9, special_ids={1, 2})
    S, I, T = Role.SPECIAL, Role.IMAGE, Role.TEXT  # noqa: E741 (the roles read as letters)
    # " " at 7 (expanded) is 6 before expansion: outside "cd" (7..9); "cd" -> TEXT.
    assert roles == [S, S, S, I, I, S, S, T]


# --- prompt level ---------------------------------------------------------------------------
def test_text_prompt_ids_and_roles(janus):
    enc = janus.encode_text(f"  {TEXT} ")
    # The same ids as the processor's own pipeline (chat template, then processor).
    expected = janus.processor(text=_rendered(janus, TEXT, image=False), return_tensors="pt")["input_ids"][0]
    assert enc.input_ids.tolist() == expected.tolist()
    assert enc.roles[0] == Role.SPECIAL and enc.input_ids[0] == janus.tokenizer.bos_token_id
    assert Role.IMAGE not in enc.roles
    assert _text_of(janus, enc) == TEXT
    # Template text ("<|User|>: ", "\n\n<|Assistant|>:") is SPECIAL on both sides.
    text_at = [i for i, r in enumerate(enc.roles) if r == Role.TEXT]
    assert text_at == list(range(text_at[0], text_at[-1] + 1))
    assert 1 < text_at[0] and text_at[-1] < enc.n_tokens - 1
    assert enc.states.shape == (4, enc.n_tokens, 32)


def test_image_prompt_ids_and_roles(janus):
    enc = janus.encode_image(_image(), QUESTION)
    p = janus.processor
    rendered = _rendered(janus, QUESTION, image=True)
    expected = p(text=rendered, images=_image(), return_tensors="pt")["input_ids"][0]
    assert enc.input_ids.tolist() == expected.tolist()
    image_at = [i for i, r in enumerate(enc.roles) if r == Role.IMAGE]
    assert len(image_at) == janus.num_image_tokens == 16
    assert image_at == [i for i, t in enumerate(enc.input_ids.tolist()) if t == janus.image_token_id]
    first, last = image_at[0], image_at[-1]
    assert last - first + 1 == 16
    tok = janus.tokenizer
    assert enc.input_ids[first - 1] == tok.convert_tokens_to_ids(p.image_start_token)
    assert enc.input_ids[last + 1] == tok.convert_tokens_to_ids(p.image_end_token)
    assert enc.roles[first - 1] == enc.roles[last + 1] == Role.SPECIAL
    assert _text_of(janus, enc) == QUESTION
    # Only the question and the image are content; an image-only prompt has no text.
    assert janus.encode_image(_image()).roles.count(Role.TEXT) == 0


def test_default_system_prompt_is_special(janus, monkeypatch):
    monkeypatch.setattr(janus.processor, "use_default_system_prompt", True)
    enc = janus.encode_text(TEXT)
    expected = janus.processor(text=_rendered(janus, TEXT, image=False), return_tensors="pt")["input_ids"][0]
    assert enc.input_ids.tolist() == expected.tolist()
    assert enc.n_tokens > janus.count_tokens(TEXT) + 30  # the system prompt is long
    assert _text_of(janus, enc) == TEXT


@pytest.mark.parametrize("with_image", [False, True], ids=["text", "image"])
def test_hooked_states_match_output_hidden_states(janus, with_image):
    if with_image:
        enc = janus.encode_image(_image(), QUESTION)
        pixel_values = janus.processor.image_processor(_image(), return_tensors="pt")["pixel_values"]
    else:
        enc = janus.encode_text(TEXT)
        pixel_values = None
    with torch.no_grad():
        out = janus.model(input_ids=enc.input_ids[None], pixel_values=pixel_values, output_hidden_states=True)
    hidden = [h[0] for h in out.hidden_states]
    assert len(hidden) == janus.n_layers + 1
    for layer in range(janus.n_layers):
        _close(enc.states[layer], hidden[layer])
    # transformers' last entry has the final norm applied; the hooks give the raw output.
    _close(janus.model.model.language_model.norm(enc.states[-1]), hidden[-1])


# --- text generation -------------------------------------------------------------------------
@pytest.mark.parametrize("with_image", [False, True], ids=["text", "image"])
def test_text_generation_states(janus, with_image):
    image = _image() if with_image else None
    gen = janus.generate_text(QUESTION, image=image, settings=GREEDY, keep_generation_states=True)
    n = gen.n_prompt_tokens
    response = gen.response_ids.tolist()
    assert 1 <= len(response) <= GREEDY.max_new_tokens
    assert gen.encoded.input_ids[n:].tolist() == response
    assert gen.encoded.n_tokens == n + len(response)
    assert isinstance(gen.text, str) and gen.image is None
    # The prompt part of the teacher-forced pass is the prompt-level encoding.
    prompt = janus.encode_image(image, QUESTION) if with_image else janus.encode_text(QUESTION)
    assert gen.prompt.roles == prompt.roles
    _close(gen.prompt.states, prompt.states)
    assert gen.prompt.roles.count(Role.IMAGE) == (16 if with_image else 0)
    roles = gen.encoded.roles[n:]
    assert set(roles) <= {Role.GENERATED_TEXT, Role.SPECIAL}
    # States hooked while generating == teacher-forced states at the same positions.
    k = sum(r == Role.GENERATED_TEXT for r in roles[:-1])
    assert k >= 1
    assert gen.generation_states.shape == (4, k, 32)
    _close(gen.generation_states, gen.response_states()[:, :k])


def test_text_generation_without_states_and_image_token_suppressed(janus):
    gen = janus.generate_text(TEXT, settings=GenerationSettings(max_new_tokens=12))
    assert gen.generation_states is None
    assert janus.image_token_id not in gen.response_ids.tolist()


# --- image generation ------------------------------------------------------------------------
def test_image_generation(janus):
    gen = janus.generate_image(TEXT, keep_generation_states=True)
    n = gen.n_prompt_tokens
    p = janus.processor
    expected = p(text=_rendered(janus, TEXT, image=False), generation_mode="image", return_tensors="pt")
    assert gen.prompt.input_ids.tolist() == expected["input_ids"][0].tolist()
    assert gen.prompt.input_ids[-1] == janus.tokenizer.convert_tokens_to_ids(p.image_start_token)
    assert gen.prompt.roles[-1] == Role.SPECIAL and Role.IMAGE not in gen.prompt.roles
    # The full grid of image tokens, VQ codebook indices.
    codebook = janus.model.config.vq_config.num_embeddings
    assert gen.response_ids.shape == (16,)
    assert 0 <= int(gen.response_ids.min()) and int(gen.response_ids.max()) < codebook
    assert gen.encoded.roles[n:] == [Role.GENERATED_IMAGE] * 16
    assert gen.response_states().shape == (4, 16, 32)
    # The last image token never goes through a forward pass while generating.
    assert gen.generation_states.shape == (4, 15, 32)
    _close(gen.generation_states, gen.response_states()[:, :15])
    # The prompt part of the teacher-forced pass is a plain pass over the prompt ids.
    with torch.no_grad():
        out = janus.model(input_ids=gen.prompt.input_ids[None], output_hidden_states=True)
    for layer in range(janus.n_layers):
        _close(gen.prompt.states[layer], out.hidden_states[layer][0])
    # The image is the VQ decoding of the tokens, [-1, 1] -> 0..255.
    assert gen.image.mode == "RGB" and gen.image.size == (8, 8)
    with torch.no_grad():
        pixels = janus.model.decode_image_tokens(gen.response_ids[None])[0]
    expected_pixels = ((pixels.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    np.testing.assert_array_equal(np.asarray(gen.image), expected_pixels)


def test_image_generation_is_seeded_and_leaves_global_rng_alone(janus):
    state = torch.get_rng_state()
    a = janus.generate_image(TEXT, settings=GenerationSettings(seed=1))
    assert torch.equal(torch.get_rng_state(), state)
    b = janus.generate_image(TEXT, settings=GenerationSettings(seed=1))
    c = janus.generate_image(TEXT, settings=GenerationSettings(seed=2))
    assert a.response_ids.tolist() == b.response_ids.tolist()
    assert a.response_ids.tolist() != c.response_ids.tolist()
    assert a.generation_states is None


def test_image_generation_greedy_without_guidance(janus):
    settings = GenerationSettings(image_do_sample=False, guidance_scale=1.0)
    gen = janus.generate_image(TEXT, settings=settings, keep_generation_states=True)
    assert gen.response_ids.shape == (16,)
    _close(gen.generation_states, gen.response_states()[:, :15])
    again = janus.generate_image(TEXT, settings=GenerationSettings(**{**settings.to_dict(), "seed": 7}))
    assert again.response_ids.tolist() == gen.response_ids.tolist()
