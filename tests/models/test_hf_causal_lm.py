"""HFCausalLMAdapter on a tiny Llama (and a tiny GPT-2 for the layer search)."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import pytest
import torch
from PIL import Image
from torch import nn

from entprobe.capture import Role
from entprobe.errors import ModelLoadError, ProbeInputError, UnsupportedError
from entprobe.models._hf import find_layers_path, resolve_dtype
from entprobe.models.base import GenerationSettings
from entprobe.models.hf_causal_lm import HFCausalLMAdapter

TEXT = "A red circle and a blue square."
GREEDY = GenerationSettings(max_new_tokens=6)


@pytest.fixture(scope="module")
def llama(tiny_dir):
    return HFCausalLMAdapter.load(str(tiny_dir("llama")))


def _check_generation_states(gen, *, min_steps: int = 3) -> None:
    """States hooked during generate equal the teacher-forced ones."""
    k = gen.generation_states.shape[1]
    assert k >= min_steps
    torch.testing.assert_close(gen.generation_states, gen.response_states()[:, :k], rtol=0, atol=1e-5)


def test_load(llama):
    assert llama.layers_path == "model.layers"
    assert llama.n_layers == 3
    assert llama.max_context == 256
    assert llama.identity()["use_chat_template"] is False


def test_encode_text_roles_exclude_bos(llama):
    enc = llama.encode_text(TEXT)
    assert enc.input_ids[0] == llama.tokenizer.bos_token_id
    assert enc.roles[0] == Role.SPECIAL
    assert set(enc.roles[1:]) == {Role.TEXT}
    assert enc.content().shape == (4, llama.count_tokens(TEXT), 32)
    torch.testing.assert_close(enc.content(), enc.states[:, 1:], rtol=0, atol=0)


def test_generate_text_teacher_forced_pass(llama):
    prompt = llama.encode_text(TEXT)
    gen = llama.generate_text(TEXT, settings=GREEDY, keep_generation_states=True)
    n, r = gen.n_prompt_tokens, len(gen.response_ids)
    assert n == prompt.n_tokens and 1 <= r <= GREEDY.max_new_tokens
    assert gen.encoded.n_tokens == n + r
    assert gen.encoded.roles[:n] == prompt.roles
    # The prompt part of [prompt; response] is the prompt's own pass (causal attention).
    torch.testing.assert_close(gen.prompt.states, prompt.states, rtol=0, atol=1e-5)
    special = set(llama.tokenizer.all_special_ids)
    for tid, role in zip(gen.response_ids.tolist(), gen.encoded.roles[n:]):
        assert role == (Role.SPECIAL if tid in special else Role.GENERATED_TEXT)
    assert gen.text == llama.tokenizer.decode(gen.response_ids, skip_special_tokens=True)
    _check_generation_states(gen)


def test_generation_states_only_when_asked(llama):
    assert llama.generate_text(TEXT, settings=GREEDY).generation_states is None


def test_greedy_is_deterministic_and_sampling_is_seeded(llama):
    a = llama.generate_text(TEXT, settings=GREEDY)
    b = llama.generate_text(TEXT, settings=GenerationSettings(max_new_tokens=6, seed=7))
    assert torch.equal(a.response_ids, b.response_ids)

    rng = torch.get_rng_state()
    s1 = GenerationSettings(max_new_tokens=6, do_sample=True, temperature=1.5, seed=1)
    x = llama.generate_text(TEXT, settings=s1, keep_generation_states=True)
    y = llama.generate_text(TEXT, settings=s1)
    s2 = GenerationSettings(max_new_tokens=6, do_sample=True, temperature=1.5, seed=2)
    z = llama.generate_text(TEXT, settings=s2)
    assert torch.equal(x.response_ids, y.response_ids)
    assert not torch.equal(x.response_ids, z.response_ids)
    assert torch.equal(torch.get_rng_state(), rng)  # the caller's RNG is left alone
    _check_generation_states(x, min_steps=0)


def test_generated_eos_is_special(tiny_dir):
    adapter = HFCausalLMAdapter.load(str(tiny_dir("llama")))
    first = int(adapter.generate_text(TEXT, settings=GREEDY).response_ids[0])
    eos = adapter.tokenizer.eos_token_id
    with torch.no_grad():  # make EOS the greedy choice wherever `first` was
        adapter.model.lm_head.weight[eos] = 4 * adapter.model.lm_head.weight[first]
    gen = adapter.generate_text(TEXT, settings=GREEDY, keep_generation_states=True)
    assert gen.response_ids.tolist() == [eos]
    assert gen.encoded.roles[-1] == Role.SPECIAL
    assert gen.n_response_tokens == 0 and gen.text == ""
    assert gen.generation_states.shape[1] == 0


def test_chat_template_marks_template_tokens_special(tiny_dir):
    adapter = HFCausalLMAdapter.load(str(tiny_dir("llama")), use_chat_template=True)
    assert adapter.identity()["use_chat_template"] is True
    enc = adapter.encode_text(TEXT)
    text_ids = enc.input_ids[torch.tensor([r == Role.TEXT for r in enc.roles])]
    assert adapter.tokenizer.decode(text_ids) == TEXT
    assert enc.content().shape[1] == adapter.count_tokens(TEXT)
    decoded = adapter.tokenizer.decode(enc.input_ids)
    assert decoded.startswith("<|bos|><|user|>") and decoded.endswith("<|assistant|>\n")
    gen = adapter.generate_text(TEXT, settings=GREEDY, keep_generation_states=True)
    assert gen.encoded.roles[: gen.n_prompt_tokens] == enc.roles
    _check_generation_states(gen)


def test_chat_template_missing_raises(tiny_dir, tmp_path):
    for f in tiny_dir("llama").iterdir():
        if f.name != "chat_template.jinja":
            shutil.copy(f, tmp_path / f.name)
    with pytest.raises(ModelLoadError, match="has no chat template"):
        HFCausalLMAdapter.load(str(tmp_path), use_chat_template=True)


def test_errors(llama, tmp_path):
    with pytest.raises(UnsupportedError, match="does not support 'image-prompt'"):
        llama.generate_text(TEXT, image=Image.new("RGB", (8, 8)))
    with pytest.raises(UnsupportedError, match="does not support 'image-gen'"):
        llama.generate_image(TEXT)
    with pytest.raises(ProbeInputError, match="the prompt has 301 tokens; the model accepts at most 256"):
        llama.encode_text("a" * 300)
    with pytest.raises(ModelLoadError, match="cannot load the tokenizer"):
        HFCausalLMAdapter.load(str(tmp_path / "missing"))
    with pytest.raises(ModelLoadError, match="dtype='float8' is not supported"):
        resolve_dtype("float8")


def test_gpt2_layers_are_found(tiny_dir, tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    src = tiny_dir("llama")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(src / name, tmp_path / name)
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=300, n_embd=32, n_layer=2, n_head=4, n_positions=64)
    GPT2LMHeadModel(cfg).save_pretrained(tmp_path)
    adapter = HFCausalLMAdapter.load(str(tmp_path))
    assert adapter.layers_path == "transformer.h"
    assert adapter.max_context == 64
    gen = adapter.generate_text(TEXT, settings=GREEDY, keep_generation_states=True)
    _check_generation_states(gen)


def test_find_layers_path_fallback_and_error():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.config = SimpleNamespace(num_hidden_layers=3)
            self.heads = nn.ModuleList([nn.Linear(2, 2)])
            self.stack = nn.Sequential(nn.Identity(), nn.ModuleList([nn.Linear(2, 2) for _ in range(3)]))

    assert find_layers_path(Odd()) == "stack.1"
    odd = Odd()
    odd.config.num_hidden_layers = 5
    with pytest.raises(ModelLoadError, match="cannot find the decoder layers of Odd"):
        find_layers_path(odd)


def test_sampling_runs_with_the_recorded_settings_and_no_hidden_top_k(llama):
    """GenerationSettings has no top-k; transformers 5 fills an unset top_k with 50.
    What generate() will apply must be what the run records: temperature and top-p only,
    for the transformers adapters and for the families that generate from embeddings."""
    from transformers import TopKLogitsWarper

    from entprobe.models._batch import _effective, _warpers
    from entprobe.models._embeds import _generation_config

    settings = GenerationSettings(do_sample=True, temperature=0.7, top_p=0.9, max_new_tokens=4)
    tok = llama.tokenizer
    for cfg in (
        llama._generation_config(settings, 4),
        _generation_config(settings, 4, eos=tok.eos_token_id, pad=tok.pad_token_id),
    ):
        effective = _effective(cfg, llama.model)
        assert effective.top_k in (0, None) and effective.temperature == 0.7 and effective.top_p == 0.9
        assert not any(isinstance(w, TopKLogitsWarper) for w in _warpers(effective))
