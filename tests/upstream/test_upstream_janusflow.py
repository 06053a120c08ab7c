"""JanusFlow adapter against the real upstream classes (tiny random config, CPU).

Needs ``ENTPROBE_UPSTREAM_ROOT`` (a folder holding ``deepseek-ai+Janus``); skipped
without it. References are the upstream README's procedures written out here
(understanding: processor -> ``prepare_inputs_embeds`` -> ``language_model``;
generation: its rectified-flow loop), at the tiny model's sizes.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from entprobe.capture import Role, capture
from entprobe.models._multimodal import to_pil
from entprobe.models.base import GenerationSettings

ROOT = os.environ.get("ENTPROBE_UPSTREAM_ROOT")
pytestmark = pytest.mark.skipif(not ROOT, reason="ENTPROBE_UPSTREAM_ROOT is not set (upstream checkouts)")
STEPS, N_IMG = 3, 16  # 8 x 8 latent, UViT stride 2 -> 4 x 4 latent tokens
SETTINGS = GenerationSettings(max_new_tokens=4, guidance_scale=2.0, seed=5)


@pytest.fixture(scope="module")
def checkout() -> Path:
    path = Path(ROOT or ".") / "deepseek-ai+Janus"
    if not path.is_dir():
        pytest.skip(f"{path} is missing")
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, checkout) -> Path:
    from upstream_janusflow_tiny import build_tiny_janusflow

    return build_tiny_janusflow(tmp_path_factory.mktemp("janusflow"), checkout)


@pytest.fixture(scope="module")
def adapter(tiny, checkout):
    from entprobe.models.janusflow import JanusFlowAdapter

    a = JanusFlowAdapter.load(str(tiny), upstream_src=str(checkout))
    a.image_steps = STEPS
    return a


def _conv(content: str) -> list[dict]:
    return [{"role": "User", "content": content}, {"role": "Assistant", "content": ""}]


def _same_as_hidden(states, model, **inputs) -> None:
    with torch.no_grad():
        hidden = model.language_model.model(
            **inputs, output_hidden_states=True, use_cache=False
        ).hidden_states
    n = len(hidden) - 1  # embeddings, layers 1..N-1, final norm of layer N
    for i in range(n):
        torch.testing.assert_close(states[i], hidden[i][0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(model.language_model.model.norm(states[n]), hidden[n][0], rtol=1e-4, atol=1e-4)


def test_load_reads_the_release_folder(adapter, tiny):
    from safetensors.torch import load_file

    assert adapter.n_layers == 2 and adapter.layers_path == "language_model.model.layers"
    saved = load_file(tiny / "model.safetensors")
    key = "language_model.model.layers.1.mlp.down_proj.weight"
    torch.testing.assert_close(adapter.model.get_parameter(key), saved[key])
    assert adapter.vae is not None and adapter.identity()["vae"]


def test_text_prompt_states_equal_the_llm_outputs(adapter):
    proc, text = adapter.processor, "a red cube left of a blue ball"
    enc = adapter.encode_text(text)
    sft = proc.apply_sft_template_for_multi_turn_prompts(
        _conv(text), sft_format=proc.sft_format, system_prompt=proc.system_prompt
    )
    ids = proc.tokenizer.encode(sft)
    assert enc.input_ids.tolist() == ids
    _same_as_hidden(enc.states, adapter.model, input_ids=torch.tensor([ids]))
    # a BPE token straddling template and text (" a") counts as TEXT
    assert proc.tokenizer.decode([t for t, r in zip(ids, enc.roles) if r == Role.TEXT]).strip() == text


def _understanding(adapter, image, question):
    inputs = adapter.processor(
        conversations=_conv("<image_placeholder>\n" + question), images=[image], force_batchify=True
    )
    with torch.no_grad():
        embeds = adapter.model.prepare_inputs_embeds(**inputs)
    return inputs, embeds


def test_image_prompt_follows_the_readme(adapter):
    from PIL import Image

    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (30, 50, 3), dtype=np.uint8))
    enc = adapter.encode_image(image, "What is shown?")
    inputs, embeds = _understanding(adapter, image, "What is shown?")
    assert enc.input_ids.tolist() == inputs.input_ids[0].tolist()
    _same_as_hidden(enc.states, adapter.model, inputs_embeds=embeds, attention_mask=inputs.attention_mask)
    assert Counter(enc.roles)[Role.IMAGE] == N_IMG == adapter.processor.num_image_tokens
    boi = enc.input_ids.tolist().index(adapter.processor.image_start_id)
    assert enc.roles[boi] == Role.SPECIAL and enc.roles[boi + 1 : boi + 1 + N_IMG] == [Role.IMAGE] * N_IMG


def test_text_generation_is_hf_generate_then_teacher_forced(adapter):
    from PIL import Image

    image, tok = Image.new("RGB", (64, 64), (10, 200, 30)), adapter.tokenizer
    gen = adapter.generate_text("Describe it.", image=image, settings=SETTINGS)
    inputs, embeds = _understanding(adapter, image, "Describe it.")
    with torch.no_grad():
        ref = adapter.model.language_model.generate(
            inputs_embeds=embeds,
            attention_mask=inputs.attention_mask,
            pad_token_id=tok.eos_token_id,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            max_new_tokens=4,
            do_sample=False,
            use_cache=True,
        )[0]
    assert gen.response_ids.tolist() == ref.tolist()
    full = torch.cat([embeds, adapter.model.language_model.get_input_embeddings()(ref[None])], 1)
    _same_as_hidden(gen.encoded.states, adapter.model, inputs_embeds=full)


def _readme_generate(adapter, prompt_text: str, cfg_weight: float, seed: int):
    """The README's ``generate`` for one image (batchsize 1), at the tiny sizes, hooked.

    The README truncates the KV cache of an empty list, so every step is a full
    forward; the empty tuple it then passes breaks under transformers 4.49, so this
    passes ``None`` (the same computation)."""
    m, proc = adapter.model, adapter.processor
    sft = proc.apply_sft_template_for_multi_turn_prompts(
        conversations=_conv(prompt_text), sft_format=proc.sft_format, system_prompt=""
    )
    input_ids = torch.LongTensor(proc.tokenizer.encode(sft + proc.image_gen_tag))
    tokens = torch.stack([input_ids] * 2)
    tokens[1:, 1:] = proc.pad_id
    inputs_embeds = m.language_model.get_input_embeddings()(tokens)[:, :-1, :]
    torch.manual_seed(seed)
    z = torch.randn((1, 4, 8, 8))
    dt = torch.zeros_like(z) + 1.0 / STEPS
    attention_mask = torch.ones((2, inputs_embeds.shape[1] + 1 + N_IMG))
    attention_mask[1:, 1 : inputs_embeds.shape[1]] = 0
    attention_mask = attention_mask.int()
    with torch.no_grad(), capture(m, adapter.layers_path) as rec:
        for step in range(STEPS):
            z_input = torch.cat([z, z], dim=0)
            t = torch.tensor([step / STEPS * 1000.0] * 2).to(dt)
            z_emb, t_emb, hs = m.vision_gen_enc_model(z_input, t)
            z_emb = m.vision_gen_enc_aligner(z_emb.view(2, z_emb.shape[1], -1).permute(0, 2, 1))
            llm_emb = torch.cat([inputs_embeds, t_emb.unsqueeze(1), z_emb], dim=1)
            out = m.language_model.model(
                inputs_embeds=llm_emb, use_cache=True, attention_mask=attention_mask, past_key_values=None
            )
            h = m.vision_gen_dec_aligner(m.vision_gen_dec_aligner_norm(out.last_hidden_state[:, -N_IMG:, :]))
            v = m.vision_gen_dec_model(h.reshape(2, 4, 4, 768).permute(0, 3, 1, 2), hs, t_emb)
            v_cond, v_uncond = torch.chunk(v, 2)
            z = z + dt * (cfg_weight * v_cond - (cfg_weight - 1.0) * v_uncond)
        calls = [rec.states(i) for i in range(rec.n_calls)]
        decoded = adapter.vae.decode(z / adapter.vae.config.scaling_factor).sample
    return {
        "z": z,
        "calls": calls,
        "image": to_pil(decoded[0].clamp(-1, 1).permute(1, 2, 0)),
        "prompt": inputs_embeds[:1],
        "n_prompt": inputs_embeds.shape[1],
    }


def test_image_generation_reproduces_the_readme_loop(adapter):
    forwards = []
    hook = adapter.model.language_model.model.register_forward_pre_hook(lambda *a: forwards.append(1))
    try:
        gen = adapter.generate_image("a red cat", settings=SETTINGS, response_steps="all")
    finally:
        hook.remove()
    ref = _readme_generate(adapter, "a red cat", 2.0, SETTINGS.seed)
    assert np.array_equal(np.asarray(gen.image), np.asarray(ref["image"]))
    assert len(forwards) == STEPS + 1 and gen.model_calls == {"generation": STEPS, "teacher-forced": 1}
    assert sorted(gen.step_states) == list(range(1, STEPS + 1))
    for k, states in gen.step_states.items():
        assert states.shape[1] == N_IMG
        torch.testing.assert_close(states, ref["calls"][k - 1][:, 0, -N_IMG:], rtol=1e-4, atol=1e-4)
    # default response: [cond prompt; t_emb(t = 1000); latent tokens of the clean latent]
    m = adapter.model
    with torch.no_grad():
        z_emb, t_emb, _ = m.vision_gen_enc_model(ref["z"], torch.tensor([1000.0]))
        z_emb = m.vision_gen_enc_aligner(z_emb.flatten(2).permute(0, 2, 1))
    _same_as_hidden(gen.encoded.states, m, inputs_embeds=torch.cat([ref["prompt"], t_emb[:, None], z_emb], 1))
    assert Counter(gen.encoded.roles)[Role.GENERATED_IMAGE] == N_IMG == gen.n_response_tokens
    assert gen.n_prompt_tokens == ref["n_prompt"] + 1 and gen.encoded.roles[ref["n_prompt"]] == Role.SPECIAL


def test_conditional_rows_do_not_see_the_unconditional_prompt(adapter):
    # Without guidance (w = 1) the flow uses v_cond only, so every conditional state
    # must stay the same when the unconditional row's padding token changes.
    tok, settings = adapter.tokenizer, GenerationSettings(guidance_scale=1.0, seed=1)
    a = adapter.generate_image("a red cat", settings=settings, response_steps="all")
    before = tok.pad_token_id
    tok.pad_token_id = tok.eos_token_id
    try:
        b = adapter.generate_image("a red cat", settings=settings, response_steps="all")
    finally:
        tok.pad_token_id = before
    torch.testing.assert_close(a.encoded.states, b.encoded.states, rtol=1e-5, atol=1e-5)
    for k in a.step_states:
        torch.testing.assert_close(a.step_states[k], b.step_states[k], rtol=1e-5, atol=1e-5)


def test_fixed_seed_reproduces_and_another_seed_differs(adapter):
    a = adapter.generate_image("a blue bird", settings=SETTINGS, response_steps=(2,))
    b = adapter.generate_image("a blue bird", settings=SETTINGS, response_steps=(2,))
    c = adapter.generate_image("a blue bird", settings=GenerationSettings(guidance_scale=2.0, seed=6))
    assert torch.equal(a.encoded.states, b.encoded.states) and torch.equal(a.step_states[2], b.step_states[2])
    assert sorted(a.step_states) == [2] and c.step_states is None
    assert not torch.equal(a.response_states(), c.response_states())


# --- end to end: CLI probe at every level, report, kill + resume -------------------------
@pytest.fixture(scope="module")
def clean_store(tiny, checkout, tmp_path_factory) -> Path:
    from upstream_probe_checks import cli, probe_args

    store = tmp_path_factory.mktemp("janusflow-cli") / "clean.duckdb"
    cli(probe_args("janusflow", tiny, checkout, store, image_steps=STEPS))
    return store


def test_cli_probe_writes_every_level_and_step_and_the_report_renders(clean_store, tmp_path):
    from upstream_probe_checks import check_report, check_store

    check_store(clean_store, n_layers=2, n_steps=STEPS)
    check_report(clean_store, tmp_path / "report", "clean latent at the data end")


def test_a_killed_run_resumes_without_losing_anything(clean_store, tiny, checkout, tmp_path):
    from upstream_probe_checks import killed_then_resumed

    killed_then_resumed("janusflow", tiny, checkout, tmp_path / "killed.duckdb", STEPS, clean_store)


def test_bfloat16_follows_the_authors_load_path(tiny, checkout):
    """The README loads, then casts the whole model (`.to(torch.bfloat16)`), rotary
    inv_freq included: the default. `cast_after_load=False` keeps the buffers float32."""
    import janus.janusflow.models as up  # imported by the adapter from the checkout

    from entprobe.models.janusflow import JanusFlowAdapter

    ours = JanusFlowAdapter.load(str(tiny), upstream_src=str(checkout), dtype="bfloat16")
    theirs = up.MultiModalityCausalLM.from_pretrained(str(tiny)).to(torch.bfloat16).eval()
    buffers = dict(theirs.named_buffers())
    for name, buf in ours.model.named_buffers():
        assert buf.dtype == buffers[name].dtype and torch.equal(buf, buffers[name]), name
    key = "language_model.model.layers.1.mlp.down_proj.weight"
    assert torch.equal(ours.model.get_parameter(key), theirs.get_parameter(key))
    assert ours.identity()["dtype_path"] == "cast after load"
    kept = JanusFlowAdapter.load(
        str(tiny), upstream_src=str(checkout), dtype="bfloat16", cast_after_load=False
    )
    inv = [b for n, b in kept.model.named_buffers() if n.endswith("inv_freq")]
    assert inv and all(b.dtype == torch.float32 for b in inv)
    assert kept.identity()["dtype_path"] == "torch_dtype at load"
