"""The ``omnigen2`` adapter on a tiny random Qwen2.5-VL saved in OmniGen2's release layout.

Runs under transformers 5 (the main venv) and 4.49 (the upstream venv, ``make test-upstream``).
"""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from entprobe.capture import Role
from entprobe.cli import main
from entprobe.errors import ModelLoadError, UnsupportedError
from entprobe.models.base import GenerationSettings
from entprobe.models.omnigen2 import SUFFIX, SYSTEM, OmniGen2Adapter
from entprobe.models.registry import detect_adapter

QUESTION = "Which colour is the largest shape?"
GREEDY = GenerationSettings(max_new_tokens=6)


def _image(size: tuple[int, int] = (50, 40)) -> Image.Image:
    return Image.new("RGB", size, (200, 30, 30))


@pytest.fixture(scope="module")
def og2(tiny_dir) -> OmniGen2Adapter:
    return OmniGen2Adapter.load(str(tiny_dir("omnigen2")))


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a.float(), b.float(), rtol=1e-4, atol=1e-5)


def test_layout_detection_and_errors(og2, tiny_dir, tmp_path):
    root = tiny_dir("omnigen2")
    assert detect_adapter(str(root)) == "omnigen2"
    assert og2.n_layers == 3 and og2.layers_path in ("model.layers", "model.language_model.layers")
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "OmniGen2Pipeline"}))
    with pytest.raises(ModelLoadError, match="names no mllm, processor"):
        OmniGen2Adapter.load(str(tmp_path))
    with pytest.raises(ModelLoadError, match="model_index.json"):
        OmniGen2Adapter.load(str(root / "mllm"))


def _full_norm(og2: OmniGen2Adapter) -> torch.nn.Module:
    text = og2.model.get_submodule(og2.layers_path.rsplit(".", 1)[0])
    return text.norm


@pytest.mark.parametrize("with_image", [False, True], ids=["text", "image"])
def test_hooked_states_equal_output_hidden_states_and_the_pipeline_embedding(og2, with_image):
    """Layers 0..L-1 equal output_hidden_states; normed last layer equals hidden_states[-1],
    which is what OmniGen2's pipeline hands to its diffusion transformer."""
    enc = og2.encode_image(_image(), QUESTION) if with_image else og2.encode_text(QUESTION)
    inputs, _ = og2._prompt(QUESTION, _image() if with_image else None)
    with torch.no_grad():
        out = og2.model(**inputs, output_hidden_states=True)
    hidden = [h[0] for h in out.hidden_states]
    assert len(hidden) == og2.n_layers + 1
    for layer in range(og2.n_layers):
        _close(enc.states[layer], hidden[layer])
    _close(_full_norm(og2)(enc.states[-1]), hidden[-1])


@pytest.mark.parametrize("size", [(50, 40), (32, 32), (17, 60)])
def test_image_positions_equal_the_image_grid(og2, size):
    inputs, roles = og2._prompt(QUESTION, _image(size))
    grid = inputs["image_grid_thw"][0]
    merge = og2.image_processor.merge_size
    n_image = int(grid.prod()) // merge**2
    assert roles.count(Role.IMAGE) == n_image >= 1
    ids = inputs["input_ids"][0]
    assert int((ids == og2.model.config.image_token_id).sum()) == n_image
    image_at = [i for i, r in enumerate(roles) if r == Role.IMAGE]
    assert image_at == list(range(image_at[0], image_at[0] + n_image))  # one contiguous block
    text = og2.tokenizer.decode(ids[[i for i, r in enumerate(roles) if r == Role.TEXT]])
    assert text.strip() == QUESTION


def test_ids_equal_the_upstream_processor(og2):
    """OmniGen2 tokenises with Qwen2_5_VLProcessor; the adapter's own expansion must give
    the same ids and pixels (needs a processor that can be built: transformers 4.x, or
    5.x with torchvision)."""
    import transformers

    try:
        proc = transformers.Qwen2_5_VLProcessor(image_processor=og2.image_processor, tokenizer=og2.tokenizer)
    except (TypeError, ValueError, AttributeError, ImportError) as exc:
        pytest.skip(
            f"Qwen2_5_VLProcessor cannot be built under transformers {transformers.__version__}: {exc}"
        )
    for image in (None, _image()):
        prefix = SYSTEM + ("<img1>: <|vision_start|><|image_pad|><|vision_end|>" if image else "")
        ref = proc(
            text=[prefix + QUESTION + SUFFIX], images=None if image is None else [image], return_tensors="pt"
        )
        inputs, _ = og2._prompt(QUESTION, image)
        assert inputs["input_ids"].tolist() == ref["input_ids"].tolist()
        if image is not None:
            _close(inputs["pixel_values"], ref["pixel_values"])
            assert inputs["image_grid_thw"].tolist() == ref["image_grid_thw"].tolist()


def test_text_roles(og2):
    enc = og2.encode_text(QUESTION)
    text_ids = enc.input_ids[[r == Role.TEXT for r in enc.roles]]
    assert og2.tokenizer.decode(text_ids) == QUESTION
    assert Role.IMAGE not in enc.roles and enc.roles[0] == Role.SPECIAL


@pytest.mark.parametrize("with_image", [False, True], ids=["text", "image"])
def test_text_generation_states(og2, with_image):
    image = _image() if with_image else None
    gen = og2.generate_text(QUESTION, image=image, settings=GREEDY, keep_generation_states=True)
    n = gen.n_prompt_tokens
    prompt = og2.encode_image(image, QUESTION) if with_image else og2.encode_text(QUESTION)
    assert gen.prompt.roles == prompt.roles
    _close(gen.prompt.states, prompt.states)
    assert gen.encoded.input_ids[n:].tolist() == gen.response_ids.tolist()
    # Hooked during generate (KV cache, rope deltas of the prefill) == teacher-forced pass.
    k = gen.generation_states.shape[1]
    assert k >= 1
    _close(gen.generation_states, gen.response_states()[:, :k])


def test_generation_stops_at_omnigen2_stop_tokens(og2):
    cfg = og2._generation_config(GREEDY, 4)
    stops = {og2.tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>", "<|img|>")}
    assert stops <= set(cfg.eos_token_id)
    assert og2._response_roles(sorted(stops)) == [Role.SPECIAL] * 3


def test_image_gen_is_refused_with_the_reason(og2, tiny_dir, tmp_path):
    with pytest.raises(UnsupportedError, match="never sees the generated image"):
        og2.generate_image("a cat")
    result = CliRunner().invoke(
        main,
        [
            "probe",
            "--model",
            str(tiny_dir("omnigen2")),
            "--store",
            str(tmp_path / "s.duckdb"),
            "--text-prompts",
            "sample:t2i",
            "--levels",
            "image-gen",
        ],
    )
    assert result.exit_code != 0 and "never sees the generated image" in result.output
    assert not (tmp_path / "s.duckdb").exists()  # refused before any work
    listing = CliRunner().invoke(main, ["models", "--json"])
    entry = next(e for e in json.loads(listing.output) if e["name"] == "omnigen2")
    assert entry["capabilities"] == ["image-prompt", "text-gen", "text-prompt"]
    assert "image-gen" in entry["unsupported"]


def test_probe_every_supported_level_and_report(tiny_dir, tmp_path):
    import duckdb

    store, out = tmp_path / "s.duckdb", tmp_path / "report"
    args = [
        "probe",
        "--model",
        str(tiny_dir("omnigen2")),
        "--store",
        str(store),
        "--text-prompts",
        "sample:t2i",
        "--image-prompts",
        "sample:mmbench",
        "--limit",
        "2",
        "--max-new-tokens",
        "4",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    with duckdb.connect(str(store), read_only=True) as con:
        rows = con.execute(
            "select level, modality, status, count(*) from samples group by all order by all"
        ).fetchall()
        n_layers = con.execute("select distinct n_layers from layer_metrics").fetchall()
    assert rows == [
        ("prompt", "image", "ok", 2),
        ("prompt", "text", "ok", 2),
        ("text-gen", "image", "ok", 2),
        ("text-gen", "text", "ok", 2),
    ]
    assert n_layers == [(3,)]
    result = CliRunner().invoke(main, ["report", "--store", str(store), "--out", str(out), "--n-boot", "20"])
    assert result.exit_code == 0, result.output
    assert (out / "report.html").stat().st_size > 0
