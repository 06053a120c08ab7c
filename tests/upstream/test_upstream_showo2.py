"""The ``showo2`` adapter on a tiny random Show-o2 built from the real upstream classes.

Needs ``ENTPROBE_UPSTREAM_ROOT`` (with ``showlab+Show-o``) and Show-o2's environment
(transformers 4.x, torchdiffeq): ``make test-upstream``. Skips, saying why, otherwise.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from entprobe.capture import Role
from entprobe.errors import ProbeInputError
from entprobe.models.base import GenerationSettings

transformers = pytest.importorskip("transformers")
if int(transformers.__version__.split(".")[0]) >= 5:
    pytest.skip(
        "Show-o2 pins transformers 4.47; run these tests with `make test-upstream` (transformers 4.49)",
        allow_module_level=True,
    )
pytest.importorskip("torchdiffeq", reason="Show-o2's sampler imports torchdiffeq")

TEXT = "A red circle left of a blue square."
STEPS = 3  # --image-steps: LLM forwards per image (ODE grid of 4 points)
# Show-o2 builds SigLIP on the meta device inside from_pretrained; the checkpoint then fills it.
pytestmark = pytest.mark.filterwarnings("ignore:for .*copying from a non-meta parameter")


@pytest.fixture(scope="module")
def src() -> Path:
    root = os.environ.get("ENTPROBE_UPSTREAM_ROOT")
    if not root or not (Path(root) / "showlab+Show-o" / "show-o2").is_dir():
        pytest.skip(f"needs $ENTPROBE_UPSTREAM_ROOT/showlab+Show-o/show-o2 (ENTPROBE_UPSTREAM_ROOT={root!r})")
    return Path(root) / "showlab+Show-o"


@pytest.fixture(scope="module")
def checkpoint(src, tmp_path_factory) -> Path:
    from entprobe.models._upstream import import_upstream
    from entprobe.models.showo2 import Showo2Adapter

    import_upstream(Showo2Adapter.upstream, src)  # puts show-o2/ on sys.path for the builder
    from upstream_showo2_tiny import save_tiny_showo2

    return save_tiny_showo2(tmp_path_factory.mktemp("showo2"))


@pytest.fixture(scope="module")
def showo2(checkpoint, src):
    from entprobe.models.showo2 import Showo2Adapter

    return Showo2Adapter.load(str(checkpoint), upstream_src=str(src))


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a.float(), b.float(), rtol=1e-4, atol=1e-5)


class _LLMOutputs:
    """Counts the LLM forwards and keeps the hidden states it returns itself."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.n, self.last = 0, None
        self.handle = model.showo.register_forward_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs, output) -> None:
        self.n += 1
        self.last = output.hidden_states

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.handle.remove()


def _compare_with_own_hidden(showo2, states: torch.Tensor, hidden: tuple) -> None:
    assert len(hidden) == showo2.n_layers + 1
    for layer in range(showo2.n_layers):
        _close(states[layer], hidden[layer][0])
    # the LLM's own last entry has the final norm applied; the hooks give the raw output
    _close(showo2.model.showo.model.norm(states[-1]), hidden[-1][0])


def test_text_prompt_states_equal_the_llm_outputs(showo2):
    enc = showo2.encode_text(TEXT)
    with torch.no_grad():
        out = showo2.model.showo(input_ids=enc.input_ids[None], output_hidden_states=True)
    _compare_with_own_hidden(showo2, enc.states, out.hidden_states)
    assert showo2.processor.decode(enc.input_ids[[r == Role.TEXT for r in enc.roles]]) == TEXT


def _image(size=(70, 50)):
    from PIL import Image

    return Image.new("RGB", size, (200, 30, 30))


@pytest.mark.parametrize("size", [(70, 50), (48, 48), (20, 90)])
def test_image_prompt_states_roles_and_embeddings(showo2, size):
    """Hooked == the LLM's own hidden states on the same inputs; IMAGE positions == the
    3 x 3 grid, in one block whose layer-0 states are Show-o2's fused image embeddings."""
    m = showo2.model
    enc = showo2.encode_image(_image(size), TEXT)
    p = showo2._prompt(TEXT, _image(size))
    with torch.no_grad():
        out = m.showo(
            inputs_embeds=p["embeds"],
            attention_mask=showo2._mask(p["pos"], p["embeds"].shape[1]),
            output_hidden_states=True,
        )
    _compare_with_own_hidden(showo2, enc.states, out.hidden_states)
    at = [k for k, r in enumerate(enc.roles) if r == Role.IMAGE]
    assert len(at) == 9 and at == list(range(at[0], at[0] + 9)) and at[0] == int(p["pos"][0, 0, 0])
    assert showo2.processor.decode(enc.input_ids[[r == Role.TEXT for r in enc.roles]]) == TEXT
    # inference_mmu.py's steps, written out: VAE latent -> dual path -> fusion
    x = torch.tensor(np.asarray(_center(_image(size)))).permute(2, 0, 1)[None, :, None] / 127.5 - 1
    with torch.no_grad():
        lat = showo2.vae.sample(x.float(), deterministic=True).squeeze(2)
        und = m.und_trans(m.image_embedder_und(lat) + m.position_embedding(m.image_position_ids))[
            "last_hidden_state"
        ]
        fused = m.fusion_proj(torch.cat([und, m.image_embedder_gen(lat)], dim=-1))[0]
    _close(enc.states[0, at], fused)


def _center(img):
    """torchvision's Resize(48) + CenterCrop(48) on a PIL image, written out."""
    w, h = img.size
    img = img.resize((48, int(48 * h / w)) if w <= h else (int(48 * w / h), 48), 3)  # 3 = bicubic
    left, top = int(round((img.width - 48) / 2)), int(round((img.height - 48) / 2))
    return img.crop((left, top, left + 48, top + 48))


def test_image_generation_states_roles_and_forward_count(showo2):
    """Teacher-forced states == the upstream forward's own hidden states; roles follow the
    grid; LLM forwards == the upstream generator's own + 1."""
    from models.misc import prepare_gen_input  # Show-o2's own
    from transport import Sampler, create_transport

    settings = GenerationSettings(seed=3, image_steps=STEPS)
    with _LLMOutputs(showo2.model) as spy:
        gen = showo2.generate_image(TEXT, settings=settings)
    _compare_with_own_hidden(showo2, gen.encoded.states, spy.last)
    assert gen.image.size == (48, 48)  # decoded by the Wan2.1 VAE

    grid = showo2.model.config.image_latent_height * showo2.model.config.image_latent_width
    roles = gen.encoded.roles
    assert roles.count(Role.GENERATED_IMAGE) == grid == gen.n_response_tokens == 9
    n_text = len(showo2.processor(TEXT, add_special_tokens=False)["input_ids"])
    _, _, pos, _ = prepare_gen_input([TEXT], showo2.processor, grid + 1, *[0] * 6, n_text, "cpu")
    offset = int(pos[0, 0, 0])  # the time-embedding slot, then the image
    assert (
        roles[offset] == Role.SPECIAL
        and roles[offset + 1 : offset + 1 + grid] == [Role.GENERATED_IMAGE] * grid
    )
    assert roles.count(Role.TEXT) == n_text

    # the upstream's own generation (inference_t2i.py's calls) on the same model
    flow = create_transport(
        path_type="Linear",
        prediction="velocity",
        loss_weight=None,
        train_eps=None,
        sample_eps=None,
        snr_type="lognorm",
        do_shift=True,
        seq_len=grid + 1,
    )
    sample = Sampler(flow).sample_ode(
        sampling_method="euler",
        num_steps=STEPS + 1,
        atol=1e-6,
        rtol=1e-3,
        reverse=False,
        time_shifting_factor=3.0,
    )
    prompt = showo2.image_gen_prompt(TEXT, settings)
    tokens = torch.cat([prompt["cond"], prompt["uncond"]])
    mods = torch.cat([prompt["pos"], prompt["pos_null"]])
    z = torch.randn(2, 16, 6, 6)
    with _LLMOutputs(showo2.model) as own:
        sample(
            z,
            showo2.model.t2i_generate,
            text_tokens=tokens,
            attention_mask=showo2._mask(mods, tokens.shape[1]),
            modality_positions=mods,
            max_seq_len=tokens.shape[1],
            guidance_scale=5.0,
        )
    assert (
        gen.model_calls
        == {"generation": own.n, "teacher-forced": 1}
        == {"generation": STEPS, "teacher-forced": 1}
    )
    assert spy.n == own.n + 1


def test_conditional_states_do_not_depend_on_the_unconditional_row(showo2):
    """Step 1 sees the same noise and t with or without the [uncond] row (guidance 0
    runs the conditional row alone): its conditional states must not change."""
    guided = showo2.generate_image(
        TEXT, settings=GenerationSettings(guidance_scale=5.0, image_steps=STEPS), response_steps=(1,)
    )
    alone = showo2.generate_image(
        TEXT, settings=GenerationSettings(guidance_scale=0.0, image_steps=STEPS), response_steps=(1,)
    )
    _close(guided.step_states[1], alone.step_states[1])
    assert guided.step_states[1].shape == (showo2.n_layers + 1, 9, 32)


def test_seeded_runs_reproduce(showo2):
    a = showo2.generate_image(
        TEXT, settings=GenerationSettings(seed=1, image_steps=STEPS), response_steps="all"
    )
    b = showo2.generate_image(
        TEXT, settings=GenerationSettings(seed=1, image_steps=STEPS), response_steps="all"
    )
    c = showo2.generate_image(TEXT, settings=GenerationSettings(seed=2, image_steps=STEPS))
    assert torch.equal(a.encoded.states, b.encoded.states)
    assert sorted(a.step_states) == [1, 2, 3] and all(
        torch.equal(a.step_states[k], b.step_states[k]) for k in a.step_states
    )
    assert not torch.equal(a.response_states(), c.response_states())


@pytest.mark.parametrize("with_image", [False, True], ids=["text", "image"])
def test_text_generation_own_loop(showo2, with_image):
    image = _image() if with_image else None
    gen = showo2.generate_text(
        TEXT, image=image, settings=GenerationSettings(max_new_tokens=5), keep_generation_states=True
    )
    n = gen.n_prompt_tokens
    assert gen.encoded.input_ids[n:].tolist() == gen.response_ids.tolist() and 1 <= len(gen.response_ids) <= 5
    assert gen.model_calls == {"generation": len(gen.response_ids), "teacher-forced": 1}
    k = gen.generation_states.shape[1]
    _close(gen.generation_states, gen.response_states()[:, :k])
    prompt = showo2.encode_image(image, TEXT) if with_image else showo2.encode_text(TEXT)
    assert gen.prompt.roles == prompt.roles
    _close(gen.prompt.states, prompt.states)


def _run(store: Path, checkpoint: Path, src: Path, mode: str) -> subprocess.CompletedProcess:
    here = Path(__file__).parent
    path = [str(here / "standins"), str(here), os.environ.get("PYTHONPATH", "")]
    return subprocess.run(
        [
            sys.executable,
            str(here / "upstream_showo2_kill_run.py"),
            str(store),
            str(checkpoint),
            str(src),
            mode,
        ],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(path)},
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_probe_every_level_per_step_rows_report_and_resume_after_kill(checkpoint, src, tmp_path):
    """`entprobe probe` (`--image-steps 3`, steps 1 and 3 kept) is
    SIGKILLed when the 2nd sample's image generation starts; the rerun finishes it
    with nothing lost or duplicated and equals an uninterrupted run; the report renders."""
    import duckdb
    from click.testing import CliRunner

    from entprobe.cli import main

    store, clean = tmp_path / "s.duckdb", tmp_path / "clean.duckdb"
    assert _run(store, checkpoint, src, "kill").returncode == -signal.SIGKILL
    with duckdb.connect(str(store), read_only=True) as con:
        # the first text prompt's three levels are in; the sample in flight (its earlier
        # levels, depending on how the pipeline groups writes) at most partly; no image prompt yet
        rows = con.execute("select sample_id, level from samples").fetchall()
        assert {lv for sid, lv in rows if sid == "C-MI-001"} == {"prompt", "text-gen", "image-gen"}
        assert len(rows) in (3, 5)
    for path in (store, clean):
        done = _run(path, checkpoint, src, "run")
        assert done.returncode == 0, done.stderr[-3000:]

    def read(path: Path):
        with duckdb.connect(str(path), read_only=True) as con:
            levels = con.execute(
                "select level, status, count(*) from samples group by all order by all"
            ).fetchall()
            lm = con.execute(
                "select sample_id, level, layer, metric, value from layer_metrics order by all"
            ).fetchall()
            steps = con.execute(
                "select sample_id, step, n_steps, layer, metric, value from step_metrics order by all"
            ).fetchall()
        return levels, lm, steps

    levels, lm, steps = read(store)
    assert levels == [("image-gen", "ok", 2), ("prompt", "ok", 4), ("text-gen", "ok", 4)]
    assert {(r[1], r[2]) for r in steps} == {(1, 3), (3, 3)}
    assert len(steps) == 2 * 2 * (3 + 1)  # samples x kept steps x (layers + 1), one metric
    assert read(clean) == (levels, lm, steps)
    out = tmp_path / "report"
    result = CliRunner().invoke(main, ["report", "--store", str(store), "--out", str(out), "--n-boot", "20"])
    assert result.exit_code == 0, result.output
    assert (out / "report.html").stat().st_size > 0


def test_without_the_vae_image_prompts_are_refused_before_any_sample(checkpoint, src, tmp_path):
    from entprobe.datasets import load_prompts
    from entprobe.errors import UnsupportedError
    from entprobe.models.showo2 import Showo2Adapter
    from entprobe.pipeline import run_probe
    from entprobe.store import ResultStore

    bare = tmp_path / "no-vae"
    bare.mkdir()
    for name in ("config.json", "pytorch_model.bin"):
        (bare / name).symlink_to(checkpoint / name)
    adapter = Showo2Adapter.load(str(bare), upstream_src=str(src))
    assert "image-prompt" not in adapter.capabilities and "image-gen" in adapter.capabilities
    with pytest.raises(UnsupportedError, match="Wan2.1_VAE.pth"):
        adapter.encode_image(_image(), TEXT)
    with ResultStore(tmp_path / "s.duckdb") as store, pytest.raises(UnsupportedError, match="Wan2.1 VAE"):
        run_probe(
            adapter, [load_prompts("sample:mmbench", limit=1)], levels=["prompt"], store=store, progress=False
        )
    # Show-o2's default sampler: 50 grid points, 49 LLM forwards; nothing to decode with
    gen = adapter.generate_image(TEXT)
    assert (
        gen.image is None and gen.model_calls == {"generation": 49, "teacher-forced": 1} and gen.n_steps == 49
    )


def test_the_upstream_posterior_draw_is_an_option_seeded_and_recorded(checkpoint, src):
    """vae_posterior='sample' draws from the VAE posterior as inference_mmu.py does
    (deterministic=False), seeded by vae_seed; the default mean stays out of the run id."""
    from entprobe.models.showo2 import Showo2Adapter

    drawn = Showo2Adapter.load(str(checkpoint), upstream_src=str(src), vae_posterior="sample", vae_seed=3)
    again = Showo2Adapter.load(str(checkpoint), upstream_src=str(src), vae_posterior="sample", vae_seed=3)
    mean = Showo2Adapter.load(str(checkpoint), upstream_src=str(src))
    a, b = drawn.encode_image(_image(), TEXT), again.encode_image(_image(), TEXT)
    torch.testing.assert_close(a.states, b.states, rtol=0, atol=0)  # seeded: reproducible
    at = [k for k, r in enumerate(a.roles) if r == Role.IMAGE]
    assert not torch.allclose(a.states[0, at], mean.encode_image(_image(), TEXT).states[0, at])
    # the draw is upstream's own: the same seed around WanVAE.sample(deterministic=False)
    x = torch.tensor(np.asarray(_center(_image()))).permute(2, 0, 1)[None, :, None] / 127.5 - 1
    torch.manual_seed(3)
    with torch.no_grad():
        lat = drawn.vae.sample(x.float(), deterministic=False).squeeze(2)
        m = drawn.model
        und = m.und_trans(m.image_embedder_und(lat) + m.position_embedding(m.image_position_ids))[
            "last_hidden_state"
        ]
        fused = m.fusion_proj(torch.cat([und, m.image_embedder_gen(lat)], dim=-1))[0]
    _close(a.states[0, at], fused)
    assert drawn.identity()["vae_posterior"] == "sample (seed 3)" and "vae_posterior" not in mean.identity()
    with pytest.raises(ProbeInputError, match="vae_posterior must be 'mean' or 'sample'"):
        Showo2Adapter.load(str(checkpoint), upstream_src=str(src), vae_posterior="mode")
