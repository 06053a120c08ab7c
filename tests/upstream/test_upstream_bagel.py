"""``bagel`` on a tiny random BAGEL built from the real upstream classes
(``$ENTPROBE_UPSTREAM_ROOT/ByteDance-Seed+Bagel``), loaded through the adapter's ``load``.

Checked against the upstream model's own forward (``forward_inference``, whose output
is the final norm of the last layer, per expert): running it through the first ``n``
layers gives the final norm of the hooked states of layer ``n``.
"""

from __future__ import annotations

import copy
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from entprobe.capture import Role
from entprobe.errors import ProbeInputError
from entprobe.models.base import GenerationSettings

transformers = pytest.importorskip("transformers")
if int(transformers.__version__.split(".")[0]) >= 5:
    pytest.skip(
        "BAGEL pins transformers 4.49; run these tests with `make test-upstream` (transformers 4.49)",
        allow_module_level=True,
    )

HERE = Path(__file__).resolve().parent
ROOT = os.environ.get("ENTPROBE_UPSTREAM_ROOT")
SRC = Path(ROOT, "ByteDance-Seed+Bagel") if ROOT else None
pytestmark = pytest.mark.skipif(
    SRC is None or not SRC.is_dir(),
    reason="needs the BAGEL upstream checkout: set ENTPROBE_UPSTREAM_ROOT to a folder holding ByteDance-Seed+Bagel",
)
SHAPE = (32, 48)  # pixels; 16 px per latent token -> a 2 x 3 latent grid
TEXT = "A red circle and a blue square"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    from upstream_bagel_tiny import save_tiny_bagel

    from entprobe.models._upstream import import_upstream
    from entprobe.models.bagel import BagelAdapter

    import_upstream(BagelAdapter.upstream, SRC)
    return save_tiny_bagel(tmp_path_factory.mktemp("bagel") / "ckpt")


@pytest.fixture(scope="module")
def bagel(ckpt):
    from entprobe.models.bagel import BagelAdapter

    adapter = BagelAdapter.load(str(ckpt), upstream_src=str(SRC))
    adapter.image_shape, adapter.num_timesteps = SHAPE, 8
    return adapter


def _truncated_forward(adapter, n_layers: int, **inputs) -> torch.Tensor:
    """Upstream's ``forward_inference`` through its first ``n_layers`` decoder layers."""
    lm = adapter.model.language_model.model
    full = lm.layers
    lm.layers = full[:n_layers]
    try:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            return adapter.model.language_model.forward_inference(**inputs).packed_query_sequence
    finally:
        lm.layers = full


def test_text_prompt_states_equal_the_upstream_forward_at_every_layer(bagel):
    enc = bagel.encode_text(TEXT)
    ids = [bagel.token_ids["bos_token_id"], *bagel.processor.encode(TEXT), bagel.token_ids["eos_token_id"]]
    n = len(ids)
    assert enc.roles == [Role.SPECIAL] + [Role.TEXT] * (n - 2) + [Role.SPECIAL]
    assert enc.experts == ["und"] * n and enc.states.shape == (bagel.n_layers + 1, n, 32)
    norm = bagel.model.language_model.model.norm
    with torch.no_grad():
        embedded = bagel.model.language_model.model.embed_tokens(torch.tensor(ids))
    for layer in range(bagel.n_layers + 1):
        out = _truncated_forward(
            bagel,
            layer,
            packed_query_sequence=embedded,
            query_lens=torch.tensor([n], dtype=torch.int),
            packed_query_position_ids=torch.arange(n),
            packed_query_indexes=torch.arange(n),
            past_key_values=bagel.up["NaiveCache"](bagel.n_layers),
            key_values_lens=torch.tensor([0], dtype=torch.int),
            packed_key_value_indexes=torch.arange(0),
            update_past_key_values=False,
            is_causal=True,
            mode="und",
        )
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            torch.testing.assert_close(norm(enc.states[layer]), out, rtol=0, atol=0)


def test_image_response_states_equal_the_upstream_forward_per_expert(bagel):
    settings = GenerationSettings(guidance_scale=4.0)
    with torch.no_grad(), bagel._recording(()) as rec:
        prompt = bagel.image_gen_prompt(TEXT, settings)
        out = bagel.denoise(prompt, settings)
        roles, _ = bagel.teacher_force(prompt, out)
    latent_in, clean = out.clean
    response = rec.states(rec.n_calls - 1)[:, 0]  # the teacher-forced call: markers + latents
    text_idx, vae_idx = latent_in["packed_text_indexes"], latent_in["packed_vae_token_indexes"]
    assert len(vae_idx) == math.prod(s // 16 for s in SHAPE) == roles.count(Role.GENERATED_IMAGE)
    m, lm = bagel.model, bagel.model.language_model.model
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        # Layer 0 is what _forward_flow builds: marker embeddings, latent at t = 0 (the data end).
        seq = torch.zeros(len(text_idx) + len(vae_idx), 32, dtype=torch.bfloat16)
        seq[text_idx] = m.language_model.model.embed_tokens(latent_in["packed_text_ids"])
        seq[vae_idx] = (
            m.vae2llm(clean)
            + m.time_embedder(torch.zeros(len(clean)))
            + m.latent_pos_embed(latent_in["packed_vae_position_ids"])
        ).to(torch.bfloat16)
    torch.testing.assert_close(response[0], seq, rtol=0, atol=0)
    cond = prompt["cond"]
    for layer in range(bagel.n_layers + 1):
        ref = _truncated_forward(
            bagel,
            layer,
            packed_query_sequence=seq,
            query_lens=latent_in["packed_seqlens"],
            packed_query_position_ids=latent_in["packed_position_ids"],
            packed_query_indexes=latent_in["packed_indexes"],
            past_key_values=cond.cache,
            key_values_lens=latent_in["key_values_lens"],
            packed_key_value_indexes=latent_in["packed_key_value_indexes"],
            update_past_key_values=False,
            is_causal=False,
            mode="gen",
            packed_vae_token_indexes=vae_idx,
            packed_text_indexes=text_idx,
        )
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            und, gen = lm.norm(response[layer][text_idx]), lm.norm_moe_gen(response[layer][vae_idx])
            torch.testing.assert_close(und, ref[text_idx], rtol=0, atol=0)
            torch.testing.assert_close(gen, ref[vae_idx], rtol=0, atol=0)
            if layer == bagel.n_layers:  # the experts' norms differ: the check tells them apart
                assert not torch.allclose(
                    lm.norm(response[layer][vae_idx]).float(), ref[vae_idx].float(), atol=1e-2
                )


def test_image_prompt_roles_follow_the_vit_grid_and_the_question_follows(bagel):
    image = Image.fromarray((np.random.default_rng(0).random((224, 280, 3)) * 255).astype("uint8"))
    alone = bagel.encode_image(image)
    # InterleaveInferencer: VAE resize (1024, 512, 16) 280 x 224 -> 640 x 512, then the ViT
    # transform (980, 224, 14) -> 644 x 518: 46 x 37 patches (not 20 x 16 from the ViT alone)
    assert alone.roles == [Role.SPECIAL] + [Role.IMAGE] * (46 * 37) + [Role.SPECIAL]
    asked = bagel.encode_image(image, "How many?")
    n_q = len(bagel.processor.encode("How many?"))
    assert asked.roles[: len(alone.roles)] == alone.roles
    assert asked.roles[len(alone.roles) :] == [Role.SPECIAL] + [Role.TEXT] * n_q + [Role.SPECIAL]
    # the image segment is causal-free and comes first: the question does not change it
    torch.testing.assert_close(asked.states[:, : len(alone.roles)], alone.states, rtol=0, atol=0)
    small = Image.fromarray((np.random.default_rng(1).random((50, 70, 3)) * 255).astype("uint8"))
    # 70 x 50 -> short edge to 512: 716.8 -> 717 -> 720 x 512 (stride 16) -> 714 x 518 (stride 14)
    assert bagel.encode_image(small).roles.count(Role.IMAGE) == 51 * 37


def _upstream_resize(size, max_size, min_size, stride, max_pixels=14 * 14 * 9 * 1024):
    """data/transforms.py's MaxLongEdgeMinShortEdgeResize size rule, written out plainly."""
    w, h = size

    def fit(w, h, s):
        return [max(stride, int(round(round(v * s) / stride) * stride)) for v in (w, h)]

    s = max(min(max_size / max(w, h), 1.0), min_size / min(w, h))
    w, h = fit(w, h, s)
    if w * h > max_pixels:
        w, h = fit(w, h, max_pixels / (w * h))
    if max(w, h) > max_size:
        w, h = fit(w, h, max_size / max(w, h))
    return w, h


@pytest.mark.parametrize("size", [(640, 480), (300, 200), (500, 500), (1920, 1080), (31, 700), (1, 1)])
def test_image_prompts_follow_the_inferencer_and_eval_transforms(bagel, size):
    """The pixels prepare_vit_images gets are the inferencer's two resizes (or, with
    image_transform='eval', the eval scripts' one); transparency goes onto white."""
    from entprobe.models.bagel import _IMAGE_TRANSFORMS, _image_rgb

    image = Image.fromarray((np.random.default_rng(3).random((size[1], size[0], 3)) * 255).astype("uint8"))
    first = image.resize(_upstream_resize(image.size, 1024, 512, 16), Image.BICUBIC)
    second = first.resize(_upstream_resize(first.size, 980, 224, 14), Image.BICUBIC)
    want = (torch.tensor(np.asarray(second), dtype=torch.float32).permute(2, 0, 1) / 255 - 0.5) / 0.5
    torch.testing.assert_close(_IMAGE_TRANSFORMS["inferencer"](image), want, rtol=0, atol=0)
    ev = image.resize(_upstream_resize(image.size, 980, 378, 14, max_pixels=2_007_040), Image.BICUBIC)
    want = (torch.tensor(np.asarray(ev), dtype=torch.float32).permute(2, 0, 1) / 255 - 0.5) / 0.5
    torch.testing.assert_close(_IMAGE_TRANSFORMS["eval"](image), want, rtol=0, atol=0)
    rgba = image.convert("RGBA")
    rgba.putalpha(0)  # fully transparent: white, as data_utils.pil_img2rgb gives
    assert set(np.asarray(_image_rgb(rgba)).reshape(-1).tolist()) == {255}


def test_the_eval_transform_is_a_named_option_recorded_in_the_run(ckpt):
    from entprobe.models.bagel import BagelAdapter

    ev = BagelAdapter.load(str(ckpt), upstream_src=str(SRC), image_transform="eval")
    image = Image.fromarray((np.random.default_rng(0).random((224, 280, 3)) * 255).astype("uint8"))
    # 280 x 224 -> short edge to 378: 472.5 -> 472 -> 476 x 378: 34 x 27 patches
    assert ev.encode_image(image).roles.count(Role.IMAGE) == 34 * 27
    assert ev.identity()["image_transform"] == "eval"
    with pytest.raises(ProbeInputError, match="image_transform must be one of"):
        BagelAdapter.load(str(ckpt), upstream_src=str(SRC), image_transform="vit")


def _schedule(n_timesteps: int, shift: float) -> list[float]:
    s = np.linspace(1, 0, n_timesteps)[:-1]
    return list(shift * s / (1 + (shift - 1) * s))


def _count_llm_forwards(adapter):
    calls = []
    handle = adapter.model.language_model.model.register_forward_pre_hook(lambda *a: calls.append(1))
    return calls, handle


def test_image_generation_runs_its_own_forwards_plus_one_and_cfg_does_not_touch_cond(bagel):
    steps = _schedule(bagel.num_timesteps, bagel.timestep_shift)
    lo, hi = bagel.cfg_interval
    in_cfg = [lo < t <= hi for t in steps]
    assert any(in_cfg) and not all(in_cfg)  # the interval makes the forwards per step vary
    calls, handle = _count_llm_forwards(bagel)
    try:
        gen = bagel.generate_image(
            TEXT, settings=GenerationSettings(guidance_scale=4.0), response_steps="all"
        )
    finally:
        handle.remove()
    expected = 2 + sum(3 if c else 1 for c in in_cfg)  # two prompt contexts, cond (+ text-, image-CFG)
    assert gen.model_calls == {"generation": expected, "teacher-forced": 1} and len(calls) == expected + 1
    assert sorted(gen.step_states) == list(range(1, len(steps) + 1)) and gen.n_steps == len(steps)
    n_img = math.prod(s // 16 for s in SHAPE)
    assert all(v.shape == (bagel.n_layers + 1, n_img, 32) for v in gen.step_states.values())
    assert gen.encoded.roles.count(Role.GENERATED_IMAGE) == n_img and gen.image.size == SHAPE[::-1]
    assert gen.encoded.experts == ["gen" if r is Role.GENERATED_IMAGE else "und" for r in gen.encoded.roles]

    # No CFG at all: the conditional forwards of step 1 (same noise) are the same states.
    plain = bagel.generate_image(TEXT, settings=GenerationSettings(guidance_scale=1.0), response_steps=(1, 2))
    torch.testing.assert_close(plain.step_states[1], gen.step_states[1], rtol=0, atol=0)
    # the prompt (text segment, KV cache) is the same; <|vision_start|> sees the latent
    torch.testing.assert_close(plain.prompt.content(), gen.prompt.content(), rtol=0, atol=0)
    assert not torch.equal(plain.step_states[2], gen.step_states[2])  # CFG did steer the flow

    # Other CFG contexts (a negative prompt): the conditional branch of step 1 is untouched.
    class Negative(type(bagel)):
        def image_gen_prompt(self, text, settings):
            prompt = super().image_gen_prompt(text, settings)
            with self._running():
                self._add_text(prompt["text-cfg"], "blurry, ugly")
            return prompt

    other = copy.copy(bagel)
    other.__class__ = Negative
    neg = other.generate_image(TEXT, settings=GenerationSettings(guidance_scale=4.0), response_steps=(1, 2))
    torch.testing.assert_close(neg.step_states[1], gen.step_states[1], rtol=0, atol=0)
    assert not torch.equal(neg.step_states[2], gen.step_states[2])


def test_a_fixed_seed_reproduces_image_and_text_generation(bagel):
    a, b, c = (bagel.generate_image(TEXT, settings=GenerationSettings(seed=s)) for s in (3, 3, 4))
    torch.testing.assert_close(a.encoded.states, b.encoded.states, rtol=0, atol=0)
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    assert not torch.equal(a.response_states(), c.response_states())
    sampled = GenerationSettings(do_sample=True, max_new_tokens=6, seed=5)
    t1, t2 = (bagel.generate_text(TEXT, settings=sampled) for _ in range(2))
    assert torch.equal(t1.response_ids, t2.response_ids) and t1.text == t2.text


def test_text_generation_is_bagels_loop_plus_one_teacher_forced_segment(bagel):
    image = Image.fromarray((np.random.default_rng(2).random((224, 224, 3)) * 255).astype("uint8"))
    for img, n_prompt_calls in ((None, 1), (image, 2)):
        calls, handle = _count_llm_forwards(bagel)
        try:
            gen = bagel.generate_text(
                "Which colour?",
                image=img,
                settings=GenerationSettings(max_new_tokens=5),
                keep_generation_states=True,
            )
        finally:
            handle.remove()
        m = len(gen.response_ids)
        assert 1 <= m <= 5 and gen.n_response_tokens == m
        # the prompt's forwards, one per fed token (<|im_start|>, t1 .. tm), one teacher-forced
        assert (
            gen.model_calls["generation"] == n_prompt_calls + m + 1 and len(calls) == n_prompt_calls + m + 2
        )
        assert gen.encoded.roles[gen.n_prompt_tokens :] == [Role.SPECIAL] + [Role.GENERATED_TEXT] * m
        torch.testing.assert_close(gen.generation_states, gen.response_states(), rtol=0, atol=0)
        assert gen.text == bagel.processor.decode(gen.response_ids)


# --- the whole pipeline through the command line ------------------------------------
LEVELS = "prompt,text-gen,image-gen"


def _probe_args(ckpt, store) -> list[str]:
    return [
        "probe",
        "--model",
        str(ckpt),
        "--adapter",
        "bagel",
        "--upstream-src",
        str(SRC),
        "--text-prompts",
        "sample:t2i",
        "--image-prompts",
        "sample:mmbench",
        "--limit",
        "2",
        "--levels",
        LEVELS,
        "--store",
        str(store),
        "--max-new-tokens",
        "3",
        "--image-steps",
        "3",
        "--image-size",
        "32",
        "--image-response-step",
        "all",
        "--no-progress",
    ]


def _cli(*args):
    from click.testing import CliRunner

    from entprobe.cli import main

    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def _tables(store):
    from entprobe.store import ResultStore

    with ResultStore(store, read_only=True) as s:
        return s.samples(), s.layer_metrics(), s.runs()


def _stable(df: pd.DataFrame, key) -> pd.DataFrame:
    drop = [c for c in ("created_at", "model_seconds", "estimate_seconds") if c in df.columns]
    return df.drop(columns=drop).sort_values(key).reset_index(drop=True)


@pytest.fixture(scope="module")
def probed(ckpt, tmp_path_factory):
    """One full run at every level over the bundled samples (two of each)."""
    store = tmp_path_factory.mktemp("probe") / "s.duckdb"
    _cli(*_probe_args(ckpt, store), "--save-images", store.parent / "images")
    return store


def test_a_full_probe_at_every_level_writes_a_store_that_report_renders(probed, tmp_path):
    samples, lm, runs = _tables(probed)
    assert set(samples["status"]) == {"ok"}, samples[["sample_id", "level", "error"]]
    per_level = samples.groupby(["modality", "level"]).size().to_dict()
    assert per_level == {
        ("text", "prompt"): 2,
        ("text", "text-gen"): 2,
        ("text", "image-gen"): 2,
        ("image", "prompt"): 2,
        ("image", "text-gen"): 2,
    }
    assert set(lm["n_layers"]) == {3} and len(lm) == 10 * 4
    image_gen = samples[samples["level"] == "image-gen"]
    assert set(image_gen["n_response_tokens"]) == {4}  # 32 px / 16 px per token, squared
    assert all(Path(p).is_file() for p in image_gen["image_path"])
    config = runs["config"].iloc[0]
    assert config["image_response"]["n_steps"] == 3 and config["generation"]["image_size"] == 32
    assert (
        config["model"]["upstream"]["repo"] == "ByteDance-Seed/Bagel"
        and "gen: latents" in config["model"]["experts"]
    )
    from entprobe.store import ResultStore

    with ResultStore(probed, read_only=True) as s:
        steps = s.step_metrics()
    assert sorted(set(steps["step"])) == [1, 2, 3] and len(steps) == 2 * 3 * 4
    _cli("report", "--store", probed, "--out", tmp_path / "report")
    assert "bagel" in (tmp_path / "report" / "report.html").read_text()


def test_a_killed_run_resumes_without_losing_anything(ckpt, probed, tmp_path):
    store = tmp_path / "killed.duckdb"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(HERE.parents[1] / "src"), str(HERE / "standins"), os.environ.get("PYTHONPATH", "")]
        ),
    }
    done = subprocess.run(
        [sys.executable, str(HERE / "upstream_bagel_kill_run.py"), "2", *_probe_args(ckpt, store)],
        env=env,
        capture_output=True,
        timeout=600,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]
    partial, _, _ = _tables(store)
    assert 0 < len(partial) < 10 and set(partial["status"]) == {"ok"}
    _cli(*_probe_args(ckpt, store))
    samples, lm, _ = _tables(store)
    ref_samples, ref_lm, _ = _tables(probed)
    key = ["dataset", "sample_id", "level"]
    assert len(samples) == 10 and set(samples["status"]) == {"ok"}
    pd.testing.assert_frame_equal(
        _stable(lm, key + ["layer", "metric"]), _stable(ref_lm, key + ["layer", "metric"])
    )
    cols = key + ["n_prompt_tokens", "n_response_tokens", "generated_text"]
    pd.testing.assert_frame_equal(_stable(samples[cols], key), _stable(ref_samples[cols], key))
