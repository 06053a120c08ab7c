"""Tiny random Show-o2 built from the REAL upstream classes (showlab/Show-o, ``show-o2/``).

``Showo2Qwen2_5.__init__`` reads the LLM config with ``AutoConfig.from_pretrained`` and
the SigLIP tower with ``SiglipModel.from_pretrained`` from the paths in its config
(hub ids in the release: ``Qwen/Qwen2.5-1.5B-Instruct``,
``google/siglip-so400m-patch14-384``). Here both are tiny local folders:

- ``llm/``: a Qwen2 config (3 layers, hidden 32) and a byte-level BPE tokenizer with
  Qwen2.5's special tokens (Show-o2 takes its tokenizer from this folder too);
- ``siglip/``: Show-o2's own ``SiglipModel`` with a 2-layer vision tower of width 16
  whose 9 position embeddings match the 3 x 3 token grid (the fixed-resolution path);
- ``show-o2/``: the model, saved with ``save_pretrained`` (``config.json`` +
  ``pytorch_model.bin``) as the release is, so the adapter's ``from_pretrained`` runs,
  and a random ``Wan2.1_VAE.pth`` beside it (where the adapter looks for the VAE).

Latents are 16 x 6 x 6 (Wan2.1's 16 channels; patch 2 -> 3 x 3 = 9 image tokens,
plus the time-embedding slot). The diffusion head keeps Show-o2's hard-coded width
(2048) but none of its modulated attention blocks (only the final layer), to stay
small; they run after the LLM and do not touch the probed states. Numbers mean nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

SPECIALS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
GRID = 3  # image tokens per side
LATENT_DIM = 16
PATCH = 2


def save_tiny_llm(out: Path) -> Path:
    from transformers import Qwen2Config

    from entprobe.models.tiny import build_tokenizer

    out.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(
        vocab_size=330,
        special_tokens=SPECIALS,
        bos_token="<|endoftext|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )
    tok.save_pretrained(out)
    cfg_file = out / "tokenizer_config.json"
    tok_cfg = json.loads(cfg_file.read_text())
    tok_cfg["tokenizer_class"] = "Qwen2Tokenizer"  # as Qwen2.5's folder says
    tok_cfg.pop("bos_token", None)  # Qwen2.5 has none
    cfg_file.write_text(json.dumps(tok_cfg))
    Qwen2Config(
        # Padded beyond the tokenizer, like Qwen2.5 (151936 > 151665 tokens): Show-o2 then
        # shrinks the embeddings to its tokenizer, which works on meta tensors.
        vocab_size=len(tok) + 16,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
        tie_word_embeddings=False,
    ).save_pretrained(out)
    return out


def save_tiny_siglip(out: Path, *, seed: int = 0) -> Path:
    import torch
    from models.modeling_siglip import SiglipModel  # Show-o2's own copy
    from transformers import SiglipConfig

    config = SiglipConfig(
        text_config={
            "vocab_size": 64,
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 16,
        },
        vision_config={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": GRID * 4,
            "patch_size": 4,
        },
    )
    torch.manual_seed(seed)
    SiglipModel(config).save_pretrained(out)
    return out


def save_tiny_showo2(root: Path, *, seed: int = 0) -> Path:
    """Build ``root/{llm,siglip,show-o2}``; return the ``show-o2`` folder (the checkpoint).

    Show-o2's ``models`` package must be importable (the upstream checkout on sys.path).
    """
    import torch
    from models import Showo2Qwen2_5
    from models.misc import get_text_tokenizer

    llm = save_tiny_llm(root / "llm")
    siglip = save_tiny_siglip(root / "siglip", seed=seed)
    tokenizer = get_text_tokenizer(str(llm), add_showo_tokens=True, llm_name="qwen2_5")
    torch.manual_seed(seed)
    model = Showo2Qwen2_5(
        llm_vocab_size=len(tokenizer),
        llm_model_path=str(llm),
        load_from_showo=True,
        image_latent_dim=LATENT_DIM,
        image_latent_height=GRID,
        image_latent_width=GRID,
        video_latent_height=GRID,
        video_latent_width=GRID,
        patch_size=PATCH,
        hidden_size=32,
        clip_latent_dim=16,
        num_diffusion_layers=0,
        add_time_embeds=True,
        add_qk_norm=True,
        clip_pretrained_model_path=str(siglip),
    ).eval()
    # load_from_showo=True (as in the released config.json): the LLM is built from its
    # config and the checkpoint's weights fill it.
    out = root / "show-o2"
    model.save_pretrained(out, safe_serialization=False)
    save_random_wan_vae(out / "Wan2.1_VAE.pth", seed=seed)
    return out


def save_random_wan_vae(path: Path, *, seed: int = 0) -> Path:
    """A randomly initialised Wan2.1 VAE at its real size (Show-o2's ``WanVAE`` hard-codes
    the architecture; ~127 M parameters, a ~510 MB file, a few seconds), as the release's
    ``Wan2.1_VAE.pth`` state dict."""
    import torch
    from models.wan21_vae import WanVAE_

    torch.manual_seed(seed)
    vae = WanVAE_(
        dim=96,
        z_dim=LATENT_DIM,
        dim_mult=[1, 2, 4, 4],
        num_res_blocks=2,
        attn_scales=[],
        temperal_downsample=[False, True, True],
        dropout=0.0,
    )
    torch.save(vae.state_dict(), path)
    return path
