"""Harmon adapter against the real upstream classes (tiny random config, CPU).

Needs ``ENTPROBE_UPSTREAM_ROOT`` (a folder holding ``wusize+Harmon``); skipped
without it. References are the upstream's own procedures, written out here from
``scripts/image2text.py`` / ``text2image.py`` and ``Harmon.sample``: the adapter must
reproduce them exactly.
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
GRID = 16  # 16 px image, VAE stride 4 -> 4 x 4 MAR tokens
SETTINGS = GenerationSettings(max_new_tokens=4, guidance_scale=3.0, seed=3)


@pytest.fixture(scope="module")
def checkout() -> Path:
    path = Path(ROOT or ".") / "wusize+Harmon"
    if not path.is_dir():
        pytest.skip(f"{path} is missing")
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, checkout) -> dict[str, Path]:
    from upstream_harmon_tiny import build_tiny_harmon

    return build_tiny_harmon(tmp_path_factory.mktemp("harmon"), checkout)


@pytest.fixture(scope="module")
def adapter(tiny, checkout):
    from entprobe.models.harmon import HarmonAdapter

    return HarmonAdapter.load(str(tiny["checkpoint"]), upstream_src=str(checkout))


def _hidden(model, **inputs) -> tuple[torch.Tensor, ...]:
    with torch.no_grad():
        return model.llm.model(**inputs, output_hidden_states=True, use_cache=False).hidden_states


def _same_as_hidden(states: torch.Tensor, hidden, norm) -> None:
    # output_hidden_states: embeddings, layers 1..N-1, then the final norm of layer N
    n = len(hidden) - 1
    for i in range(n):
        torch.testing.assert_close(states[i], hidden[i][0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(norm(states[n]), hidden[n][0], rtol=1e-5, atol=1e-5)


def test_load_reads_the_release_layout(adapter, tiny):
    m = adapter.model
    assert adapter.n_layers == 2 and adapter.layers_path == "llm.model.layers"
    saved = torch.load(tiny["checkpoint"])
    torch.testing.assert_close(
        m.llm.model.layers[0].mlp.up_proj.weight, saved["llm.model.layers.0.mlp.up_proj.weight"]
    )
    vae = torch.load(tiny["vae"])["model"]
    torch.testing.assert_close(m.vae.decoder.conv_out.weight, vae["decoder.conv_out.weight"])
    assert adapter.identity()["image_size"] == 16 and adapter.n_image_steps(SETTINGS) == 6


def test_missing_vae_and_unknown_size_are_named(tmp_path, checkout):
    from entprobe.errors import ModelLoadError
    from entprobe.models.harmon import HarmonAdapter

    (tmp_path / "harmon_x.pth").write_bytes(b"")
    with pytest.raises(ModelLoadError, match="kl16.ckpt"):
        HarmonAdapter.load(str(tmp_path / "harmon_x.pth"), upstream_src=str(checkout))
    (tmp_path / "kl16.ckpt").write_bytes(b"")
    with pytest.raises(ModelLoadError, match="cannot tell the size"):
        HarmonAdapter.load(str(tmp_path), upstream_src=str(checkout))


def test_text_prompt_states_equal_the_llm_outputs(adapter):
    m, text = adapter.model, "a red cube left of a blue ball"
    enc = adapter.encode_text(text)
    ids = m.tokenizer.encode(m.prompt_template["INSTRUCTION"].format(input=text), add_special_tokens=True)
    assert enc.input_ids.tolist() == ids
    _same_as_hidden(enc.states, _hidden(m, input_ids=torch.tensor([ids])), m.llm.model.norm)
    text_ids = [t for t, r in zip(ids, enc.roles) if r == Role.TEXT]
    assert m.tokenizer.decode(text_ids) == text


def _image2text_embeds(m, image, question: str, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """scripts/image2text.py, with the buffer size read from the MAR (64 upstream)."""
    from PIL import Image as PILImage

    w, h = image.size
    side = max(w, h)
    square = PILImage.new(image.mode, (side, side), (127, 127, 127))
    square.paste(image, ((side - w) // 2, (side - h) // 2))
    pixels = torch.from_numpy(np.array(square.resize(size=(size, size)))).to(m.dtype)
    pixels = 2 * (pixels.permute(2, 0, 1)[None] / 255) - 1
    prompt = m.prompt_template["INSTRUCTION"].format(input="<image>\n" + question)
    prompt = prompt.replace("<image>", "<image>" * ((size // m.mar.vae_stride) ** 2 + m.mar.buffer_size))
    ids = m.tokenizer.encode(prompt, add_special_tokens=True, return_tensors="pt")
    image_id = m.tokenizer.encode("<image>", add_special_tokens=False)[-1]
    with torch.no_grad():
        _, z_enc = m.extract_visual_feature(m.encode(pixels))
        embeds = z_enc.new_zeros(*ids.shape, m.llm.config.hidden_size)
        embeds[ids == image_id] = z_enc.flatten(0, 1)
        embeds[ids != image_id] = m.llm.get_input_embeddings()(ids[ids != image_id])
    return ids[0], embeds


def test_image_prompt_follows_image2text(adapter):
    from PIL import Image

    m = adapter.model
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (12, 20, 3), dtype=np.uint8))
    enc = adapter.encode_image(image, "What is shown?")
    ids, embeds = _image2text_embeds(m, image, "What is shown?", 16)
    assert enc.input_ids.tolist() == ids.tolist()
    _same_as_hidden(enc.states, _hidden(m, inputs_embeds=embeds), m.llm.model.norm)
    counts = Counter(enc.roles)
    assert counts[Role.IMAGE] == GRID
    image_pos = [i for i, t in enumerate(ids.tolist()) if t == m.tokenizer.convert_tokens_to_ids("<image>")]
    # the buffer tokens (moved to the end of the image run) are SPECIAL
    assert [enc.roles[i] for i in image_pos] == [Role.IMAGE] * GRID + [Role.SPECIAL] * m.mar.buffer_size


def test_text_generation_is_hf_generate_then_teacher_forced(adapter):
    from PIL import Image

    m = adapter.model
    image = Image.new("RGB", (16, 16), (10, 200, 30))
    gen = adapter.generate_text("Describe it.", image=image, settings=SETTINGS, keep_generation_states=True)
    ids, embeds = _image2text_embeds(m, image, "Describe it.", 16)
    with torch.no_grad():
        ref = m.llm.generate(
            inputs_embeds=embeds,
            do_sample=False,
            max_new_tokens=4,
            use_cache=True,
            eos_token_id=m.tokenizer.eos_token_id,
            pad_token_id=m.tokenizer.pad_token_id,
        )[0]
    assert gen.response_ids.tolist() == ref.tolist()
    full = torch.cat([embeds, m.llm.get_input_embeddings()(ref[None])], 1)
    _same_as_hidden(gen.encoded.states, _hidden(m, inputs_embeds=full), m.llm.model.norm)
    k = gen.generation_states.shape[1]
    torch.testing.assert_close(gen.generation_states, gen.response_states()[:, :k], rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="module")
def upstream_run(adapter):
    """``Harmon.sample`` itself (``.cuda()`` made a no-op for this CPU run), every LLM
    call hooked, and the final tokens caught on their way into ``decode``."""
    m = adapter.model
    cond = m.prepare_text_conditions("Generate an image: a red cat", "Generate an image.")
    caught = {}
    decode, cuda = m.decode, torch.Tensor.cuda

    def spy(z):
        caught["tokens"] = z.clone()
        return decode(z)

    m.decode, torch.Tensor.cuda = spy, lambda self, *a, **k: self
    try:
        torch.manual_seed(SETTINGS.seed)
        np.random.seed(SETTINGS.seed)
        with torch.no_grad(), capture(m, adapter.layers_path) as rec:
            pred = m.sample(
                **cond,
                num_iter=adapter.num_iter,
                cfg=3.0,
                cfg_schedule="constant",
                temperature=1.0,
                image_shape=(4, 4),
            )
    finally:
        del m.decode
        torch.Tensor.cuda = cuda
    return {
        "image": to_pil(pred[0].permute(1, 2, 0)),
        "calls": [rec.states(i) for i in range(rec.n_calls)],
        "tokens": caught["tokens"],
        "prompt_len": int(cond["attention_mask"][0].sum()),
    }


def test_image_generation_reproduces_upstream_sample(adapter, upstream_run):
    forwards = []
    hook = adapter.model.llm.model.register_forward_pre_hook(lambda *a: forwards.append(1))
    try:
        gen = adapter.generate_image("a red cat", settings=SETTINGS, response_steps="all")
    finally:
        hook.remove()
    assert np.array_equal(np.asarray(gen.image), np.asarray(upstream_run["image"]))
    # the generator's own forwards (prefill + one per MAR iteration) plus one teacher-forced pass
    assert len(upstream_run["calls"]) == 1 + adapter.num_iter
    assert len(forwards) == 1 + adapter.num_iter + 1
    assert gen.model_calls == {"generation": 1 + adapter.num_iter, "teacher-forced": 1}
    # per-step rows: the conditional row of that step's forward (revealed tokens + buffer)
    assert sorted(gen.step_states) == list(range(1, adapter.num_iter + 1))
    buffer = adapter.model.mar.buffer_size
    for k, states in gen.step_states.items():
        torch.testing.assert_close(states, upstream_run["calls"][k][:, 0], rtol=1e-5, atol=1e-5)
    sizes = [gen.step_states[k].shape[1] for k in sorted(gen.step_states)]
    assert sizes[0] == buffer and sizes == sorted(sizes) and sizes[-1] < GRID + buffer


def test_default_response_is_every_token_revealed(adapter, upstream_run):
    m = adapter.model
    gen = adapter.generate_image("a red cat", settings=SETTINGS)
    assert gen.step_states is None
    counts = Counter(gen.encoded.roles)
    assert counts[Role.GENERATED_IMAGE] == GRID and gen.n_response_tokens == GRID
    assert gen.encoded.roles[-m.mar.buffer_size :] == [Role.SPECIAL] * m.mar.buffer_size
    # reference: the LLM over [cond prompt; MAR features of the final tokens, none masked]
    n = upstream_run["prompt_len"]
    cond = m.prepare_text_conditions("Generate an image: a red cat", "Generate an image.")
    with torch.no_grad():
        _, z_enc = m.extract_visual_feature(upstream_run["tokens"][:1] * 1.0)
        prompt = m.llm.get_input_embeddings()(cond["input_ids"][:1, :n])
        hidden = _hidden(m, inputs_embeds=torch.cat([prompt, z_enc], 1))
    assert gen.n_prompt_tokens == n
    _same_as_hidden(gen.encoded.states, hidden, m.llm.model.norm)


def test_conditional_rows_do_not_see_the_unconditional_prompt(adapter):
    def run(cfg_prompt: str) -> list[torch.Tensor]:
        adapter.cfg_prompt = cfg_prompt
        try:
            with capture(adapter.model, adapter.layers_path) as rec:
                gen = adapter.generate_image("a red cat", settings=SETTINGS)
        finally:
            adapter.cfg_prompt = "Generate an image."
        n = gen.n_prompt_tokens
        return [rec.states(0)[:, 0, :n], rec.states(1)[:, 0]]  # prefill and step-1 conditional rows

    short, long = run("Generate an image."), run("Generate any image at all, of anything, in any style.")
    for a, b in zip(short, long):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_fixed_seed_reproduces_and_another_seed_differs(adapter):
    a = adapter.generate_image("a blue bird", settings=SETTINGS)
    b = adapter.generate_image("a blue bird", settings=SETTINGS)
    c = adapter.generate_image("a blue bird", settings=GenerationSettings(guidance_scale=3.0, seed=4))
    assert torch.equal(a.encoded.states, b.encoded.states)
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    assert not torch.equal(a.response_states(), c.response_states())


def test_requested_steps_only(adapter):
    gen = adapter.generate_image("a blue bird", settings=SETTINGS, response_steps=(2, 6))
    assert sorted(gen.step_states) == [2, 6]
    from entprobe.errors import ProbeInputError

    with pytest.raises(ProbeInputError, match="runs 6 steps"):
        adapter.generate_image("a blue bird", settings=SETTINGS, response_steps=(7,))
    small = adapter.generate_image("a blue bird", settings=GenerationSettings(image_size=8, image_steps=2))
    assert small.n_steps == 2 and small.n_response_tokens == (8 // 4) ** 2 and small.image.size == (8, 8)


# --- end to end: CLI probe at every level, report, kill + resume -------------------------
@pytest.fixture(scope="module")
def clean_store(tiny, checkout, tmp_path_factory) -> Path:
    from upstream_probe_checks import cli, probe_args

    store = tmp_path_factory.mktemp("harmon-cli") / "clean.duckdb"
    cli(probe_args("harmon", tiny["checkpoint"], checkout, store, image_steps=3))
    return store


def test_cli_probe_writes_every_level_and_step_and_the_report_renders(clean_store, tmp_path):
    from upstream_probe_checks import check_report, check_store

    check_store(clean_store, n_layers=2, n_steps=3)
    check_report(clean_store, tmp_path / "report", "all MAR tokens revealed")


def test_a_killed_run_resumes_without_losing_anything(clean_store, tiny, checkout, tmp_path):
    from upstream_probe_checks import killed_then_resumed

    killed_then_resumed("harmon", tiny["checkpoint"], checkout, tmp_path / "killed.duckdb", 3, clean_store)


def test_image_size_reaches_image_prompts_is_recorded_and_warns(adapter):
    """image2text.py takes the size as an argument: --image-size applies to image prompts
    (and text generation from them) as to generation, is part of the run configuration,
    and warns when the checkpoint's configuration (16 px here) says another size."""
    from PIL import Image

    from entprobe.errors import EntprobeWarning
    from entprobe.models.requests import Request

    m = adapter.model
    image = Image.fromarray(np.random.default_rng(1).integers(0, 255, (12, 20, 3), dtype=np.uint8))
    settings = GenerationSettings(image_size=32)
    enc = adapter.run([Request("prompt", "What is shown?", image, settings)])[0]
    ids, embeds = _image2text_embeds(m, image, "What is shown?", 32)  # upstream at --image_size 32
    assert enc.input_ids.tolist() == ids.tolist()
    _same_as_hidden(enc.states, _hidden(m, inputs_embeds=embeds), m.llm.model.norm)
    assert Counter(enc.roles)[Role.IMAGE] == 4 * GRID  # twice the side of the configured 16 px
    gen = adapter.run([Request("text-gen", "Describe it.", image, settings)])[0]
    assert Counter(gen.prompt.roles)[Role.IMAGE] == 4 * GRID
    with pytest.warns(EntprobeWarning, match="configuration says image_size=16"):
        assert adapter.prompt_config(settings) == {"image_size": 32}
    assert adapter.prompt_config(GenerationSettings()) is None  # unset: run ids as before
