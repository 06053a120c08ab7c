"""capture() on packed (n_tokens, d) sequences passed by keyword, as BAGEL's layers get them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from entprobe.capture import capture
from entprobe.errors import ProbeInputError


class PackedLayer(nn.Module):
    """A decoder layer in BAGEL's calling convention: keyword-only packed input, tuple output."""

    def __init__(self, d: int, seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.weight = nn.Parameter(torch.randn(d, d, generator=g) / d**0.5)

    def forward(self, *, packed_query_sequence, query_lens, position_bias=None, cache=None):
        out = torch.tanh(packed_query_sequence @ self.weight)
        if position_bias is not None:
            out = out + position_bias
        return out, cache


class PackedModel(nn.Module):
    def __init__(self, d: int = 6, n_layers: int = 3) -> None:
        super().__init__()
        self.layers = nn.ModuleList(PackedLayer(d, seed=i) for i in range(n_layers))

    def forward(self, packed, *, position_bias=None, bias_first=False):
        cache = object()
        for layer in self.layers:
            kwargs = {"packed_query_sequence": packed, "query_lens": torch.tensor([packed.shape[0]])}
            if position_bias is not None:
                # bias_first puts another float tensor ahead of the hidden states in the call
                kwargs = (
                    {"position_bias": position_bias, **kwargs}
                    if bias_first
                    else {**kwargs, "position_bias": position_bias}
                )
            packed, cache = layer(**kwargs, cache=cache)
        return packed


def _reference(model: PackedModel, packed: torch.Tensor, bias=None) -> list[torch.Tensor]:
    """Layer 0 = input, layer i = output of layer i, computed by hand."""
    out = [packed]
    x = packed
    for layer in model.layers:
        x = torch.tanh(x @ layer.weight)
        if bias is not None:
            x = x + bias
        out.append(x)
    return out


def test_packed_keyword_input_is_recorded_with_a_batch_axis_of_one():
    model = PackedModel()
    first = torch.randn(5, 6, generator=torch.Generator().manual_seed(0))
    step = torch.randn(1, 6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad(), capture(model, "layers") as rec:
        model(first)
        model(step)
    assert rec.n_calls == 2
    states = rec.states(0)
    assert states.shape == (4, 1, 5, 6)
    for layer, ref in enumerate(_reference(model, first)):
        torch.testing.assert_close(states[layer, 0], ref, rtol=0, atol=0)
    assert rec.stacked().shape == (4, 1, 6, 6)
    torch.testing.assert_close(rec.stacked()[:, 0, 5], torch.stack([r[0] for r in _reference(model, step)]))


def test_input_name_picks_the_keyword_when_another_float_tensor_comes_first():
    model = PackedModel()
    packed = torch.randn(4, 6, generator=torch.Generator().manual_seed(2))
    bias = torch.full((4, 6), 0.5)
    with torch.no_grad(), capture(model, "layers", input_name="packed_query_sequence") as rec:
        model(packed, position_bias=bias, bias_first=True)
    torch.testing.assert_close(rec.states(0)[0, 0], packed, rtol=0, atol=0)
    torch.testing.assert_close(rec.states(0)[3, 0], _reference(model, packed, bias)[3], rtol=0, atol=0)
    # Without the name the first float keyword is taken: here the bias, which is wrong,
    # which is why adapters whose layers take several float tensors name the keyword.
    with torch.no_grad(), capture(model, "layers") as rec:
        model(packed, position_bias=bias, bias_first=True)
    torch.testing.assert_close(rec.states(0)[0, 0], bias, rtol=0, atol=0)


def test_positional_and_hidden_states_keyword_still_win():
    lin = nn.Linear(3, 3)
    x = torch.randn(2, 4, 3)
    with torch.no_grad(), capture(lin, [lin]) as rec:
        lin(x)
    torch.testing.assert_close(rec.states(0)[0], x, rtol=0, atol=0)
    with torch.no_grad(), capture(lin, [lin]) as rec:
        lin(input=x)  # the only float tensor keyword
    assert rec.states(0).shape == (2, 2, 4, 3)


def test_no_tensor_input_names_what_arrived():
    class NoTensor(nn.Module):
        def forward(self, *, sizes):
            return torch.zeros(1, 2)

    m = NoTensor()
    with pytest.raises(
        TypeError, match=r"no hidden_states tensor: got 0 positional argument\(s\) and keywords \['sizes'\]"
    ):
        with capture(m, [m]):
            m(sizes=[1, 2])
    with pytest.raises(TypeError, match=r"no keyword 'packed_query_sequence'"):
        with capture(m, [m], input_name="packed_query_sequence"):
            m(sizes=[1, 2])


def test_tagging_names_calls_from_their_inputs_when_the_loop_is_not_ours():
    """An 'upstream' loop runs a varying number of forwards per step, each with its
    own cache object; tags come from which cache a call got, not from call order."""
    from entprobe.capture import CallTag

    model = PackedModel()
    caches = {"cond": object(), "uncond": object()}
    names = {id(c): n for n, c in caches.items()}
    step = [0]

    def upstream_loop():
        for k, guided in enumerate([True, True, False, True], start=1):
            step[0] = k
            for name in ("cond", "uncond") if guided else ("cond",):
                x = torch.full((3, 6), float(k) + (0.5 if name == "uncond" else 0.0))
                for layer in model.layers:
                    x, _ = layer(packed_query_sequence=x, query_lens=None, cache=caches[name])

    def tagger(args, kwargs):
        return CallTag(step=step[0], branches={names[id(kwargs["cache"])]: [0]}, keep=step[0] != 2)

    with torch.no_grad(), capture(model, "layers") as rec:
        with rec.tagging(tagger):
            upstream_loop()
        model(torch.zeros(2, 6))  # after the block: untagged
    assert rec.n_calls == 8 and rec.tags[-1] is None
    assert [rec.tags[i].step for i in rec.find(branch="cond")] == [1, 2, 3, 4]
    assert [rec.tags[i].step for i in rec.find(branch="uncond")] == [1, 2, 4]
    (cond4,) = rec.find(step=4, branch="cond")
    torch.testing.assert_close(rec.branch_states(cond4, "cond")[0, 0], torch.full((3, 6), 4.0))
    (uncond2,) = rec.find(step=2, branch="uncond")
    with pytest.raises(ProbeInputError, match="keep=False"):
        rec.states(uncond2)
    with pytest.raises(RuntimeError, match="do not nest"):
        with rec.tagging(tagger), rec.tagging(tagger):
            pass  # pragma: no cover
