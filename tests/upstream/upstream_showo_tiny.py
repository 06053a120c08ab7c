"""A tiny random Show-o of the REAL upstream classes, saved in the release layout.

``out/showo`` (``config.json`` + ``pytorch_model.bin``, as ``showlab/show-o``) with
``llm_model_path`` pointing at ``out/phi`` (Phi config + tokenizer: 2 layers, width 32),
and ``out/magvitv2`` (the upstream's MAGVITv2, whose sizes are hard-coded: about 95 M
random parameters, stored in float16 to halve the file). ``num_vq_tokens=4``: a 2 x 2
grid of VQ codes, 32 px images.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

N_VQ = 4
CODEBOOK = 8192


def build_showo_tiny(checkout: Path, out: Path, *, seed: int = 0) -> dict[str, Path]:
    from transformers import PhiConfig

    from entprobe.models.tiny._tokenizer import build_tokenizer

    if str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    from models.modeling_magvitv2 import MAGVITv2
    from models.modeling_showo import Showo

    out = Path(out)
    phi, showo, vq = out / "phi", out / "showo", out / "magvitv2"
    tok = build_tokenizer(special_tokens=("<|endoftext|>",))
    tok.bos_token = tok.eos_token = tok.unk_token = "<|endoftext|>"
    tok.save_pretrained(phi)
    PhiConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=512,
        partial_rotary_factor=0.5,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    ).save_pretrained(phi)
    llm_vocab = len(tok)
    cfg = {
        "w_clip_vit": False,
        "vocab_size": llm_vocab + 10 + CODEBOOK + 1,
        "llm_vocab_size": llm_vocab,
        "llm_model_path": str(phi),
        "codebook_size": CODEBOOK,
        "num_vq_tokens": N_VQ,
        "load_from_showo": True,
    }
    torch.manual_seed(seed)
    model = Showo(**cfg).eval()
    showo.mkdir(parents=True)
    torch.save(model.state_dict(), showo / "pytorch_model.bin")
    # The release's config.json (diffusers-style), as Showo.from_pretrained reads it.
    cfg["load_from_showo"] = False
    (showo / "config.json").write_text(
        json.dumps(
            {
                "_class_name": "Showo",
                "_diffusers_version": "0.30.1",
                **cfg,
                "mask_token_id": cfg["vocab_size"] - 1,
            }
        )
    )
    torch.manual_seed(seed + 1)
    magvit = MAGVITv2().eval()
    vq.mkdir(parents=True)
    torch.save({k: v.half() for k, v in magvit.state_dict().items()}, vq / "pytorch_model.bin")
    (vq / "config.json").write_text(json.dumps({"_class_name": "MAGVITv2", "_diffusers_version": "0.30.1"}))
    return {"showo": showo, "phi": phi, "vq": vq}
