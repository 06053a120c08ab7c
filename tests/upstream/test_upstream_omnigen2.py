"""The ``omnigen2`` adapter against OmniGen2's own pipeline code (VectorSpaceLab/OmniGen2).

OmniGen2's prompt layout, its text conditioning of the diffusion transformer
(``_get_qwen2_prompt_embeds``: the MLLM's last hidden state at the text positions) and its
text generation (``generate_text``) run on the same tiny MLLM as the adapter. Needs
``ENTPROBE_UPSTREAM_ROOT`` (with ``VectorSpaceLab+OmniGen2``) and transformers 4.x
(OmniGen2 pins 4.51.3; ``Qwen2_5_VLProcessor`` needs torchvision under 5.x).
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import pytest
import torch
from PIL import Image

from entprobe.capture import Role
from entprobe.models.base import GenerationSettings

transformers = pytest.importorskip("transformers")
if int(transformers.__version__.split(".")[0]) >= 5:
    pytest.skip("OmniGen2 pins transformers 4.51; run with `make test-upstream`", allow_module_level=True)

QUESTION = "Which colour is the largest shape?"


@pytest.fixture(scope="module")
def pipeline_cls():
    root = os.environ.get("ENTPROBE_UPSTREAM_ROOT")
    src = Path(root or "") / "VectorSpaceLab+OmniGen2"
    if not root or not src.is_dir():
        pytest.skip(
            f"needs $ENTPROBE_UPSTREAM_ROOT/VectorSpaceLab+OmniGen2 (ENTPROBE_UPSTREAM_ROOT={root!r})"
        )
    # Import stand-in: OmniGen2's triton RMSNorm asks CUDA for its warp size at import
    # time; the diffusion transformer that uses it is never built here.
    stub = types.ModuleType("omnigen2.ops.triton.layer_norm")

    class RMSNorm:  # noqa: D401 - placeholder
        def __init__(self, *args, **kwargs):
            raise RuntimeError("test stand-in: OmniGen2's triton RMSNorm is not available on a CPU")

    stub.RMSNorm = RMSNorm
    sys.modules.setdefault("omnigen2.ops.triton.layer_norm", stub)
    sys.path.insert(0, str(src))
    from omnigen2.pipelines.omnigen2.pipeline_omnigen2_chat import OmniGen2ChatPipeline

    return OmniGen2ChatPipeline


@pytest.fixture(scope="module")
def og2(tmp_path_factory):
    from entprobe.models.omnigen2 import OmniGen2Adapter
    from entprobe.models.tiny import build_tiny

    return OmniGen2Adapter.load(str(build_tiny("omnigen2", tmp_path_factory.mktemp("omnigen2"))))


@pytest.fixture(scope="module")
def upstream(og2, pipeline_cls):
    """A stand-in ``self`` holding what the pipeline's methods use: mllm, processor."""
    proc = transformers.Qwen2_5_VLProcessor(image_processor=og2.image_processor, tokenizer=og2.tokenizer)
    ns = types.SimpleNamespace(mllm=og2.model, processor=proc, _execution_device=og2.device)
    ns.prepare_inputs_for_text_generation = types.MethodType(
        pipeline_cls.prepare_inputs_for_text_generation, ns
    )
    return ns


def _image() -> Image.Image:
    return Image.new("RGB", (50, 40), (200, 30, 30))


@pytest.mark.parametrize("with_image", [False, True], ids=["text", "image"])
def test_prompt_layout_and_conditioning_equal_the_pipeline(og2, pipeline_cls, upstream, with_image):
    images = [_image()] if with_image else None
    rendered = pipeline_cls._apply_chat_template(upstream, QUESTION, images)
    ref = upstream.processor(text=[rendered], images=images, return_tensors="pt")
    inputs, roles = og2._prompt(QUESTION, images[0] if images else None)
    assert inputs["input_ids"].tolist() == ref["input_ids"].tolist()
    # What OmniGen2 hands to its diffusion transformer: the last hidden state (final norm
    # applied) at the non-image positions.
    cond, mask = pipeline_cls._get_qwen2_prompt_embeds(upstream, rendered, images, og2.device)
    enc = og2.encode_image(images[0], QUESTION) if with_image else og2.encode_text(QUESTION)
    text_model = og2.model.get_submodule(og2.layers_path.rsplit(".", 1)[0])
    keep = torch.tensor([r != Role.IMAGE for r in enc.roles])
    torch.testing.assert_close(text_model.norm(enc.states[-1])[keep], cond[0], rtol=1e-4, atol=1e-5)
    assert int(mask.sum()) == int(keep.sum())


@pytest.mark.parametrize("with_image", [False, True], ids=["text", "image"])
def test_text_generation_equals_the_pipeline(og2, pipeline_cls, upstream, with_image):
    images = [_image()] if with_image else None
    rendered = pipeline_cls._apply_chat_template(upstream, QUESTION, images)
    theirs = pipeline_cls.generate_text(upstream, rendered, images)[0]  # greedy, stop strings
    ours = og2.generate_text(
        QUESTION, image=images[0] if images else None, settings=GenerationSettings(max_new_tokens=8)
    )
    decoded = og2.tokenizer.decode(
        ours.response_ids, skip_special_tokens=False, clean_up_tokenization_spaces=False
    )
    assert theirs.startswith(decoded) and len(decoded) > 0
