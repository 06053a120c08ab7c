"""Test-only stand-in for ``flash_attn``: ``flash_attn_varlen_func`` on PyTorch SDPA.

Upstream code (BAGEL) imports flash_attn at module level; this lets it import and run
on a CPU. Same semantics as the real kernel for what BAGEL uses: packed
``(total_tokens, n_heads, head_dim)`` queries/keys/values split by cumulative sequence
lengths, grouped-query heads, and a causal mask aligned to the bottom-right corner
when a segment has more keys than queries (a query attends to every cached key).
Never part of the product.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__version__ = "0.0.0+entprobe-test-standin"


def flash_attn_varlen_func(
    q,
    k,
    v,
    cu_seqlens_q,
    cu_seqlens_k,
    max_seqlen_q=None,
    max_seqlen_k=None,
    dropout_p=0.0,
    softmax_scale=None,
    causal=False,
    **_ignored,
):
    """Attention per packed segment; returns ``(total_q, n_heads, head_dim)`` in q's dtype."""
    out = torch.empty_like(q)
    n_heads, n_kv = q.shape[1], k.shape[1]
    for i in range(len(cu_seqlens_q) - 1):
        qs, qe = int(cu_seqlens_q[i]), int(cu_seqlens_q[i + 1])
        ks, ke = int(cu_seqlens_k[i]), int(cu_seqlens_k[i + 1])
        qi = q[qs:qe].transpose(0, 1).float()
        ki = k[ks:ke].transpose(0, 1).float().repeat_interleave(n_heads // n_kv, dim=0)
        vi = v[ks:ke].transpose(0, 1).float().repeat_interleave(n_heads // n_kv, dim=0)
        mask = None
        if causal:
            nq, nk = qe - qs, ke - ks
            # bottom-right aligned: query j sees keys up to nk - nq + j
            mask = torch.arange(nk)[None, :] <= (torch.arange(nq)[:, None] + nk - nq)
        o = F.scaled_dot_product_attention(qi, ki, vi, attn_mask=mask, scale=softmax_scale)
        out[qs:qe] = o.transpose(0, 1).to(q.dtype)
    return out
