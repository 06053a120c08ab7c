"""Inline prompts (what a notebook passes) as prompt sets: kinds, errors, and spec hashes
that must not change (they enter run ids)."""

from __future__ import annotations

import pytest
from PIL import Image

import entprobe
from entprobe.datasets import INLINE_DATASET, PromptRecord, load_prompts, prompt_sets, split_by_modality
from entprobe.errors import ProbeInputError


def test_spec_hashes_are_pinned():
    # Values from the code as it was in entprobe.api; a change here changes run ids.
    assert [s.spec for s in prompt_sets(["a red cube", "two cats"])] == ["prompts:sha256=70a192b828158f24"]
    assert [s.spec for s in prompt_sets(["a", "b", "c"], limit=2)] == ["prompts:sha256=6dd212495496043e"]
    recs = [PromptRecord(id="r1", dataset="mine", modality="text", text="hello")]
    assert [s.spec for s in prompt_sets(recs)] == ["mine:sha256=baef3960692baa83"]


def test_kinds_of_inline_prompts():
    red = Image.new("RGB", (8, 8), (200, 30, 30))
    sets = prompt_sets(["a cube", red, (red, "What colour?"), {"text": "a tree", "id": "t", "category": "C"}])
    assert [ps.name for ps in sets] == [INLINE_DATASET]
    recs = sets[0].records
    assert [r.id for r in recs] == ["0", "1", "2", "t"]
    assert [r.modality for r in recs] == ["text", "image", "image", "text"]
    assert recs[2].text == "What colour?" and recs[3].category == "C"
    assert recs[1].load_image().getpixel((0, 0)) == (200, 30, 30)
    assert recs[1].image_source.startswith("<in-memory PNG, ")
    # the image content enters the hash
    blue = prompt_sets([Image.new("RGB", (8, 8), (30, 30, 200))])[0].spec
    assert prompt_sets([red])[0].spec == prompt_sets([red.copy()])[0].spec != blue
    # the notebook API re-exports the same function
    assert entprobe.prompt_sets is prompt_sets


def test_split_by_modality_gives_mixed_sets_to_both():
    red = Image.new("RGB", (8, 8))
    mixed = prompt_sets(["a cube", red])[0]
    text_only = load_prompts("sample:t2i", limit=2)
    text, image = split_by_modality([mixed, text_only])
    assert [len(ps.records) for ps in text] == [1, 2] and text[1] is text_only
    assert [len(ps.records) for ps in image] == [1] and image[0].spec == mixed.spec


@pytest.mark.parametrize(
    "prompts, match",
    [
        ([3], "prompt 0 is a int"),
        ([{"text": "x", "colour": "red"}], r"unknown key\(s\) \['colour'\]"),
        ([{"text": 3}], "text must be a string"),
        ([{"image": "x.png"}], "image must be a PIL image"),
        ([], "no prompts given"),
    ],
)
def test_bad_prompts_raise(prompts, match):
    with pytest.raises(ProbeInputError, match=match):
        prompt_sets(prompts)
