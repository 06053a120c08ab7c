"""End to end: a stored sample's numbers, at every level the model has, recomputed from
transformers' ``output_hidden_states`` with a plain NumPy estimator written here --
no entprobe estimator, no adapter position logic (positions come from the tokenizer's
own ids). The probe runs with ``--last-layer normed`` so that every layer it stores is
one that ``output_hidden_states`` gives.
"""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pytest
import torch
from click.testing import CliRunner

TEXTS = ["a small red cube on top of a large blue sphere", "three cats sleep beside a green lamp at night"]
MAX_NEW = 6


def renyi_bits(mat: np.ndarray, alpha: float = 1.01) -> float:
    lam = np.clip(np.linalg.eigvalsh(mat), 0.0, None)
    return float(np.log2(np.sum(lam**alpha)) / (1.0 - alpha))


def project(x: np.ndarray, k: int = 64) -> np.ndarray:
    x = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    return x @ vt[: min(k, *x.shape)].T


def gaussian(z: np.ndarray) -> np.ndarray:
    d2 = np.maximum(((z[:, None] - z[None]) ** 2).sum(-1), 0.0)
    sigma = np.median(np.sqrt(d2[np.triu_indices(len(z), 1)]))
    return np.exp(-d2 / (2 * sigma**2))


def entropy(x: np.ndarray, eps: float = 1e-6) -> float:
    k = gaussian(project(x)) + eps * np.eye(len(x))
    return renyi_bits(k / np.trace(k))


def proxy(p: np.ndarray, r: np.ndarray, eps: float = 1e-6) -> float:
    """H(joint) - H(prompt): PCA and sigma of [p; r], 'trace' normalisation (each side
    half of the mass), the prompt block with its own trace."""
    n_p, n_r = len(p), len(r)
    k = gaussian(project(np.concatenate([p, r])))
    joint = k + eps * np.eye(n_p + n_r)
    w = np.concatenate([np.full(n_p, 1 / np.sqrt(2 * n_p)), np.full(n_r, 1 / np.sqrt(2 * n_r))])
    joint = joint * w[:, None] * w[None, :]
    kp = k[:n_p, :n_p] + eps * np.eye(n_p)
    return renyi_bits(joint / np.trace(joint)) - renyi_bits(kp / np.trace(kp))


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    from entprobe.cli import main
    from entprobe.models.tiny import build_tiny

    root = tmp_path_factory.mktemp("e2e")
    model = build_tiny("llama", root / "llama")
    prompts = root / "p.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"s{i}", "text": t}) + "\n" for i, t in enumerate(TEXTS)))
    store = root / "s.duckdb"
    result = CliRunner().invoke(
        main,
        [
            "probe",
            "--model",
            str(model),
            "--text-prompts",
            f"jsonl:{prompts}",
            "--levels",
            "prompt,text-gen",
            "--store",
            str(store),
            "--max-new-tokens",
            str(MAX_NEW),
            "--last-layer",
            "normed",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    con = duckdb.connect(str(store), read_only=True)
    lm = con.execute("SELECT sample_id, level, layer, value FROM layer_metrics").df()
    samples = con.execute(
        "SELECT sample_id, level, prompt_text, generated_text, n_prompt_tokens, "
        "n_response_tokens, status FROM samples"
    ).df()
    con.close()
    return model, lm, samples


def test_every_stored_number_recomputed_from_output_hidden_states(probed):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path, lm, samples = probed
    assert set(samples["status"]) == {"ok"} and len(samples) == 2 * len(TEXTS)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    special = set(tok.all_special_ids)
    for i, text in enumerate(TEXTS):
        ids = tok(text, return_tensors="pt").input_ids
        with torch.no_grad():
            out = model.generate(
                ids,
                max_new_tokens=MAX_NEW,
                do_sample=False,
                pad_token_id=tok.pad_token_id or tok.eos_token_id,
            )
            hidden = model(out, output_hidden_states=True).hidden_states
        states = np.stack([h[0].double().numpy() for h in hidden])  # (n_layers + 1, n, d)
        seq = out[0].tolist()
        n_prompt = ids.shape[1]
        prompt_pos = [j for j in range(n_prompt) if seq[j] not in special]
        response_pos = [j for j in range(n_prompt, len(seq)) if seq[j] not in special]
        row = samples[(samples.sample_id == f"s{i}") & (samples.level == "text-gen")].iloc[0]
        assert row.n_prompt_tokens == len(prompt_pos) and row.n_response_tokens == len(response_pos)

        # Prompt level: the prompt positions of the same pass (docs/measurements.md: one teacher-forced
        # pass gives every layer of prompt and response). A pass over the prompt alone
        # agrees only to float32 attention round-off (~1e-8 bits here).
        want_prompt = [entropy(states[layer][prompt_pos]) for layer in range(len(states))]
        want_gen = [
            proxy(states[layer][prompt_pos], states[layer][response_pos]) for layer in range(len(states))
        ]
        for level, want in (("prompt", want_prompt), ("text-gen", want_gen)):
            got = lm[(lm.sample_id == f"s{i}") & (lm.level == level)].sort_values("layer")["value"].to_numpy()
            assert len(got) == len(want) == model.config.num_hidden_layers + 1
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-9, err_msg=f"s{i} {level}")
