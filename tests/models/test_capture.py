"""capture() on real transformers models: states against output_hidden_states, hook cleanup."""

from __future__ import annotations

import pytest
import torch

from entprobe.capture import capture
from entprobe.errors import ProbeInputError


@pytest.fixture(scope="module")
def llama(tiny_dir):
    from transformers import LlamaForCausalLM

    return LlamaForCausalLM.from_pretrained(tiny_dir("llama")).eval()


@pytest.fixture(scope="module")
def bert(tiny_dir):
    from transformers import BertModel

    return BertModel.from_pretrained(tiny_dir("bert")).eval()


IDS = torch.tensor([[0, 40, 41, 42, 43, 44, 45, 46, 47]])


def _hook_ids(layers) -> set[tuple[int, str, int]]:
    """Every forward / forward-pre hook id registered on ``layers``."""
    return {
        (i, kind, hid)
        for i, layer in enumerate(layers)
        for kind, hooks in (("fwd", layer._forward_hooks), ("pre", layer._forward_pre_hooks))
        for hid in hooks
    }


def test_llama_states_match_hidden_states_except_final_norm(llama):
    n = llama.config.num_hidden_layers
    with torch.no_grad():
        ref = llama(IDS, output_hidden_states=True).hidden_states
        with capture(llama, "model.layers") as rec:
            llama(IDS)
    states = rec.states(0)
    assert rec.n_calls == 1
    assert states.shape == (n + 1, 1, IDS.shape[1], llama.config.hidden_size)
    assert len(ref) == n + 1
    for layer in range(n):
        torch.testing.assert_close(states[layer], ref[layer], rtol=0, atol=1e-6)
    # transformers' last entry has the final norm applied; the hooks give the raw output.
    with torch.no_grad():
        torch.testing.assert_close(llama.model.norm(states[n]), ref[n], rtol=0, atol=1e-6)
    assert not torch.allclose(states[n], ref[n], atol=1e-3)


def test_bert_states_match_hidden_states_at_every_layer(bert):
    ids = torch.tensor([[2, 30, 31, 32, 33, 3]])
    n = bert.config.num_hidden_layers
    with torch.no_grad():
        ref = bert(ids, output_hidden_states=True).hidden_states
        with capture(bert, "encoder.layer") as rec:
            bert(ids)
    states = rec.states(0)
    assert states.shape[0] == len(ref) == n + 1
    # No final norm after BERT's last layer: layer N matches too.
    for layer in range(n + 1):
        torch.testing.assert_close(states[layer], ref[layer], rtol=0, atol=1e-6)


@pytest.mark.parametrize(("family", "path"), [("llama", "model.layers"), ("bert", "encoder.layer")])
def test_hooks_removed_after_normal_exit_and_after_an_error(family, path, llama, bert):
    model = {"llama": llama, "bert": bert}[family]
    layers = model.get_submodule(path)
    ids = IDS if family == "llama" else torch.tensor([[2, 30, 31, 3]])
    with torch.no_grad():
        model(ids, output_hidden_states=True)  # transformers installs its own hooks lazily, once
    before = _hook_ids(layers)

    with torch.no_grad(), capture(model, path):
        inside = _hook_ids(layers)
        model(ids)
    assert inside > before  # ours were there ...
    assert _hook_ids(layers) == before  # ... and are gone

    def boom(module, args):
        raise RuntimeError("boom in layer 1")

    handle = layers[1].register_forward_pre_hook(boom)
    try:
        with_boom = _hook_ids(layers)
        with pytest.raises(RuntimeError, match="boom in layer 1"):
            with torch.no_grad(), capture(model, path):
                model(ids)
        assert _hook_ids(layers) == with_boom
    finally:
        handle.remove()
    assert _hook_ids(layers) == before


def test_bad_layers_path_raises_probe_input_error(llama):
    with pytest.raises(ProbeInputError, match=r"layers='model\.nope' does not name a submodule"):
        with capture(llama, "model.nope"):
            pass  # pragma: no cover
