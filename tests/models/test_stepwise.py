"""The step-wise image generation contract (models/_stepwise.py) and tagged capture."""

from __future__ import annotations

import pytest
import torch
from stepwise_toy import GRID, ToyMaskGIT, tiny_llama

from entprobe.capture import Role, capture
from entprobe.errors import ProbeInputError
from entprobe.models._stepwise import parse_response_steps, resolve_response_steps
from entprobe.models.base import GenerationSettings

SETTINGS = GenerationSettings(guidance_scale=2.0, seed=3)


def _hidden(model, ids):
    """Reference: output_hidden_states, last entry replaced by the un-normed output
    of the last layer (what capture hooks)."""
    out = {}

    def keep(_m, _a, o):
        out["last"] = o[0] if isinstance(o, tuple) else o

    h = model.model.layers[-1].register_forward_hook(keep)
    try:
        hs = model(ids, output_hidden_states=True).hidden_states
    finally:
        h.remove()
    return torch.stack([*hs[:-1], out["last"]])


def test_parse_response_steps():
    assert parse_response_steps(None) == "final"
    assert parse_response_steps("FINAL") == "final"
    assert parse_response_steps("all") == "all"
    assert parse_response_steps("3,1, 3") == (1, 3)
    for bad in ("0", "x", "1,-2", ""):
        with pytest.raises(ProbeInputError, match="image-response-step"):
            parse_response_steps(bad)
    assert resolve_response_steps("all", 3) == (1, 2, 3)
    assert resolve_response_steps("final", 3) == ()
    with pytest.raises(ProbeInputError, match="runs 3 steps"):
        resolve_response_steps((2, 4), 3)


def test_tags_find_calls_by_what_they_are_not_their_order():
    model = tiny_llama()
    a, b = torch.tensor([[0, 5, 6, 7]]), torch.tensor([[0, 8, 9, 10]])
    with capture(model, "model.layers") as rec:
        with rec.tag(step=1, branches={"cond": slice(0, 1)}, positions=slice(1, 3)):
            model(a)
        with rec.tag(step=1, branches={"uncond": [0]}):
            model(b)
        model(b)  # untagged
        with rec.tag(step=2, branches={"cond": slice(1, 2), "uncond": slice(0, 1)}, phase="denoise"):
            model(torch.cat([b, a]))
        with rec.tag(step=3, keep=False):
            model(a)
    assert rec.n_calls == 5 and rec.tags[2] is None
    assert (
        rec.find(branch="cond") == [0, 3] and rec.find(step=1) == [0, 1] and rec.find(phase="denoise") == [3]
    )
    ref_a = _hidden(model, a)
    torch.testing.assert_close(rec.branch_states(0, "cond")[:, 0], ref_a[:, 0])
    torch.testing.assert_close(rec.branch_states(0, "cond", response_only=True)[:, 0], ref_a[:, 0, 1:3])
    torch.testing.assert_close(rec.branch_states(3, "cond")[:, 0], ref_a[:, 0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        rec.branch_states(3, "uncond")[:, 0], _hidden(model, b)[:, 0], atol=1e-5, rtol=1e-5
    )
    with pytest.raises(ProbeInputError, match="no branch 'cond'"):
        rec.branch_states(1, "cond")
    with pytest.raises(ProbeInputError, match="keep=False"):
        rec.states(4)
    with pytest.raises(ProbeInputError, match="without response positions"):
        rec.branch_states(1, "uncond", response_only=True)


@pytest.mark.parametrize("separate_cfg", [False, True])
def test_generate_image_default_response_is_one_teacher_forced_pass(separate_cfg):
    toy = ToyMaskGIT(separate_cfg=separate_cfg)
    gen = toy.generate_image("a red cube", settings=SETTINGS, response_steps="all")
    own = 3 if not separate_cfg else 5  # batched: one per step; separate: 2 + 1 + 2
    assert gen.model_calls == {"generation": own, "teacher-forced": 1}
    assert toy.forwards == own + 1  # counted by a plain hook, not by capture
    assert gen.n_steps == 3 and sorted(gen.step_states) == [1, 2, 3]
    assert gen.encoded.roles.count(Role.GENERATED_IMAGE) == GRID == gen.n_response_tokens
    assert gen.response_ids.shape == (GRID,) and (gen.response_ids >= 16).all()
    # Teacher-forced states = the model's own on [prompt; final ids].
    ids = gen.encoded.input_ids[None]
    torch.testing.assert_close(gen.encoded.states, _hidden(toy.model, ids)[:, 0])
    assert gen.prompt.roles[-1] == Role.SPECIAL and gen.n_prompt_tokens == 5
    for k, st in gen.step_states.items():
        assert st.shape == (3, GRID, 16), k


def test_conditional_states_ignore_the_unconditional_prompt_and_seeds_reproduce():
    # guidance 0: the sampled ids depend on the cond logits only, so changing the
    # unconditional prompt may change nothing of the conditional rows.
    s0 = GenerationSettings(guidance_scale=0.0, seed=1)
    a = ToyMaskGIT(uncond_id=4).generate_image("two birds", settings=s0, response_steps="all")
    b = ToyMaskGIT(uncond_id=9).generate_image("two birds", settings=s0, response_steps="all")
    torch.testing.assert_close(a.encoded.states, b.encoded.states)
    for k in a.step_states:
        torch.testing.assert_close(a.step_states[k], b.step_states[k])
    # With guidance the ids differ between runs with different uncond prompts, but a
    # fixed seed reproduces exactly.
    c = ToyMaskGIT().generate_image("two birds", settings=SETTINGS, response_steps=(2,))
    d = ToyMaskGIT().generate_image("two birds", settings=SETTINGS, response_steps=(2,))
    assert torch.equal(c.response_ids, d.response_ids) and sorted(c.step_states) == [2]
    torch.testing.assert_close(c.step_states[2], d.step_states[2])


def test_default_keeps_no_step_states():
    gen = ToyMaskGIT().generate_image("x", settings=SETTINGS)
    assert gen.step_states is None and gen.model_calls["generation"] == 3
    with pytest.raises(ProbeInputError, match="runs 3 steps"):
        ToyMaskGIT().generate_image("x", settings=SETTINGS, response_steps=(4,))
