"""The showo adapter against the real upstream Show-o code (tiny random weights)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from PIL import Image
from upstream_paths import upstream_checkout
from upstream_showo_tiny import N_VQ, build_showo_tiny

from entprobe.capture import Role
from entprobe.models.base import GenerationSettings

SRC = Path(__file__).resolve().parents[2] / "src"
SET = GenerationSettings(guidance_scale=2.0, seed=5, max_new_tokens=4)


@pytest.fixture(scope="session")
def ckpt(tmp_path_factory) -> dict[str, Path]:
    checkout = upstream_checkout("showlab+Show-o")
    paths = build_showo_tiny(checkout, tmp_path_factory.mktemp("showo"))
    os.environ["ENTPROBE_SHOWO_VQ"] = str(paths["vq"])
    return {**paths, "checkout": checkout}


@pytest.fixture(scope="session")
def showo(ckpt):
    from entprobe.models.showo import ShowoAdapter

    return ShowoAdapter.load(str(ckpt["showo"]), upstream_src=str(ckpt["checkout"]))


def _upstream_states(adapter, ids, mask):
    """The upstream model's own hidden states: output_hidden_states for the layer
    inputs, a plain hook for the last layer's un-normed output."""
    last = {}
    h = adapter.model.showo.model.layers[-1].register_forward_hook(lambda m, a, o: last.update(x=o[0]))
    try:
        with torch.no_grad():
            out = adapter.model.showo(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    finally:
        h.remove()
    return torch.stack([*out.hidden_states[:-1], last["x"]])[:, 0]


def _count_forwards(module):
    calls = []
    return calls, module.register_forward_pre_hook(lambda *a: calls.append(1))


def test_prompt_levels_equal_upstream_states(showo):
    image = Image.new("RGB", (48, 36), (200, 30, 10))
    enc = showo.encode_image(image, "what colour is it?")
    assert enc.roles.count(Role.IMAGE) == N_VQ
    ids = enc.input_ids[None]
    mask = showo.up["training.prompting_utils"].create_attention_mask_for_mmu(
        ids, eoi_id=int(showo.processor.sptids_dict["<|eoi|>"])
    )
    torch.testing.assert_close(enc.states, _upstream_states(showo, ids, mask))
    # Question tokens are TEXT, template and markers SPECIAL.
    text = showo.tok.decode([t for t, r in zip(enc.input_ids.tolist(), enc.roles) if r == Role.TEXT])
    assert text.strip() == "what colour is it?"
    enc = showo.encode_text("a red cube")
    assert (
        showo.tok.decode([t for t, r in zip(enc.input_ids.tolist(), enc.roles) if r == Role.TEXT]).strip()
        == "a red cube"
    )
    torch.testing.assert_close(
        enc.states, _upstream_states(showo, enc.input_ids[None], showo._causal(enc.n_tokens))
    )


def test_image_gen_is_upstream_maskgit_plus_one_teacher_forced_pass(showo):
    calls, h = _count_forwards(showo.model)
    try:
        gen = showo.generate_image("a red cube", settings=SET, response_steps="all")
    finally:
        h.remove()
    assert gen.model_calls == {"generation": 18, "teacher-forced": 1} and len(calls) == 19
    assert gen.encoded.roles.count(Role.GENERATED_IMAGE) == N_VQ == gen.n_response_tokens
    assert sorted(gen.step_states) == list(range(1, 19)) and gen.image.size == (32, 32)
    # The upstream's own t2i_generate, same prompt and seed: same ids, 18 forwards.
    p = showo.image_gen_prompt("a red cube", SET)
    cfg = SimpleNamespace(
        model=SimpleNamespace(
            showo=SimpleNamespace(
                num_vq_tokens=N_VQ,
                num_new_special_tokens=10,
                llm_vocab_size=showo.model.config.llm_vocab_size,
            )
        ),
        dataset=SimpleNamespace(preprocessing=SimpleNamespace(max_seq_length=128)),
    )
    calls, h = _count_forwards(showo.model)
    try:
        with torch.no_grad():
            ids = showo.model.t2i_generate(
                input_ids=p["cond"].clone(),
                uncond_input_ids=p["uncond"],
                attention_mask=showo._mask(torch.cat([p["cond"], p["uncond"]])),
                guidance_scale=2.0,
                temperature=1.0,
                timesteps=18,
                generator=torch.Generator().manual_seed(5),
                config=cfg,
            )
    finally:
        h.remove()
    assert len(calls) == 18
    assert torch.equal(ids[0], gen.response_ids)
    # The teacher-forced states are the upstream model's on [prompt; final ids].
    full = gen.encoded.input_ids[None]
    torch.testing.assert_close(gen.encoded.states, _upstream_states(showo, full, showo._mask(full)))


def test_conditional_rows_ignore_the_unconditional_prompt_and_seeds_reproduce(showo, monkeypatch):
    a = showo.generate_image("two birds", settings=SET, response_steps=(1, 2))
    b = showo.generate_image("two birds", settings=SET, response_steps=(1, 2))
    assert torch.equal(a.response_ids, b.response_ids)
    torch.testing.assert_close(a.encoded.states, b.encoded.states, rtol=0, atol=0)
    original = type(showo).image_gen_prompt

    def other_uncond(self, text, settings):
        p = original(self, text, settings)
        p["uncond"] = original(self, "something else entirely", settings)["cond"]
        return p

    monkeypatch.setattr(type(showo), "image_gen_prompt", other_uncond)
    c = showo.generate_image("two birds", settings=SET, response_steps=(1, 2))
    # Step 1: the same conditional row, a different unconditional row in the batch.
    torch.testing.assert_close(c.step_states[1], a.step_states[1], rtol=0, atol=0)


def test_text_gen_is_upstream_mmu_generate_plus_one_pass(showo):
    image = Image.new("RGB", (32, 32), (10, 200, 30))
    calls, h = _count_forwards(showo.model)
    try:
        gen = showo.generate_text("what is it?", image=image, settings=SET)
    finally:
        h.remove()
    n = gen.model_calls["generation"]
    assert len(calls) == n + 1 and 1 <= n <= 4 and gen.model_calls["teacher-forced"] == 1
    assert gen.prompt.roles.count(Role.IMAGE) == N_VQ
    full = gen.encoded.input_ids[None]
    mask = showo.up["training.prompting_utils"].create_attention_mask_for_mmu(
        full, eoi_id=int(showo.processor.sptids_dict["<|eoi|>"])
    )
    torch.testing.assert_close(gen.encoded.states, _upstream_states(showo, full, mask))


def _probe(ckpt, store: Path, *extra: str, env_extra: dict | None = None, wrapper: str | None = None):
    args = [
        "probe",
        "--model",
        str(ckpt["showo"]),
        "--adapter",
        "showo",
        "--upstream-src",
        str(ckpt["checkout"]),
        "--text-prompts",
        "sample:t2i",
        "--image-prompts",
        "sample:mmbench",
        "--limit",
        "2",
        "--levels",
        "prompt,text-gen,image-gen",
        "--max-new-tokens",
        "3",
        "--guidance-scale",
        "1.5",
        "--image-response-step",
        "1,18",
        "--store",
        str(store),
        "--no-progress",
        *extra,
    ]
    code = wrapper or "from entprobe.cli import main; main()"
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{Path(__file__).parent}", **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=900
    )


KILL_ON_SECOND_IMAGE = """
import os, signal, sys
from entprobe.models.showo import ShowoAdapter
seen = []
real = ShowoAdapter.image_generation
def image_generation(self, *a, **k):
    seen.append(1)
    if len(seen) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(self, *a, **k)
ShowoAdapter.image_generation = image_generation
from entprobe.cli import main
sys.argv = ["entprobe", *sys.argv[1:]]
main()
"""


def test_probe_kill_resume_and_report(ckpt, tmp_path):
    from entprobe.store import ResultStore

    killed = _probe(ckpt, tmp_path / "k.duckdb", wrapper=KILL_ON_SECOND_IMAGE)
    assert killed.returncode == -9, killed.stderr[-3000:]
    with ResultStore(tmp_path / "k.duckdb", read_only=True) as store:
        before = store.samples()
    assert 0 < len(before) < 8
    resumed = _probe(ckpt, tmp_path / "k.duckdb")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    whole = _probe(ckpt, tmp_path / "w.duckdb")
    assert whole.returncode == 0, whole.stderr[-3000:]
    frames = {}
    for name in ("k", "w"):
        with ResultStore(tmp_path / f"{name}.duckdb", read_only=True) as store:
            frames[name] = (store.samples(), store.layer_metrics(), store.step_metrics(), store.runs())
    samples, lm, steps, runs = frames["k"]
    # 2 text prompts x 3 levels + 2 image prompts x 2 levels, all ok, once each.
    assert len(samples) == 10 and set(samples["status"]) == {"ok"}, samples[["sample_id", "level", "error"]]
    assert set(samples.groupby("level").size().items()) == {("prompt", 4), ("text-gen", 4), ("image-gen", 2)}
    img = samples[samples["level"] == "image-gen"]
    assert set(img["n_response_tokens"]) == {N_VQ}
    assert sorted(steps["step"].unique()) == [1, 18] and len(steps) == 2 * 2 * 3
    assert runs.loc[0, "config"]["image_response"]["steps"] == [1, 18]
    # Resume lost nothing: the same numbers as an uninterrupted run.
    key = ["dataset", "sample_id", "level", "layer"]
    k = lm.sort_values(key)["value"].to_numpy()
    w = frames["w"][1].sort_values(key)["value"].to_numpy()
    torch.testing.assert_close(torch.tensor(k), torch.tensor(w))
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from entprobe.cli import main; main()",
            "report",
            "--store",
            str(tmp_path / "k.duckdb"),
            "--out",
            str(tmp_path / "rep"),
            "--n-boot",
            "50",
        ],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "image_response" in html and "teacher-forced pass of the final VQ ids" in html
