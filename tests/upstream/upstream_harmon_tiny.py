"""A tiny random Harmon built from the REAL upstream classes, saved in the release layout.

The upstream path (``scripts/text2image.py`` / ``image2text.py`` of wusize/Harmon) is
``mmengine Config.fromfile(config)`` -> ``BUILDER.build(cfg.model)`` ->
``load_state_dict(torch.load(checkpoint), strict=False)``. The release gives
``checkpoints/kl16.ckpt`` (the KL-16 VAE as ``{"model": state_dict}``) and
``checkpoints/harmon_*.pth`` (a plain state dict of everything but ``vae.*``); the
config names the Qwen2.5 LLM and tokenizer by hub id. Here the config is a small
mmengine config of the same shape that names a tiny Qwen2 folder instead:

- LLM: ``Qwen2ForCausalLM``, hidden 32, 2 layers, a byte-level BPE tokenizer with
  Qwen's chat specials (eos ``<|im_end|>``, pad ``<|endoftext|>``, no BOS);
- MAR: ``src.models.mar.mar.MAR`` with 32-wide, 1-block encoder and decoder, a
  4-token buffer and a 2-block DiffLoss MLP sampling in 3 steps;
- VAE: ``AutoencoderKL(embed_dim=4, ch_mult=(1, 1, 1))`` (stride 4), so a 16 px
  image is a 4 x 4 latent grid (16 MAR tokens); the config's top-level
  ``image_size = 16`` and ``num_iter = 6`` are read by entprobe's adapter.

Every parameter gets seeded noise after building, and the ``.pth`` holds weights
that differ from the LLM folder's, so a loader that skipped the checkpoint would be
caught. The checkout must be importable as ``src`` (its root on ``sys.path``),
exactly as the upstream scripts run with ``PYTHONPATH=./``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from entprobe.models.tiny import build_tokenizer

__all__ = ["HARMON_SPECIALS", "build_tiny_harmon", "upstream_harmon"]

HARMON_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")

_CONFIG = """\
# Tiny Harmon for entprobe's integration tests; same structure as
# configs/models/qwen2_5_0_5b_kl16_mar_b.py of wusize/Harmon.
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from src.models.mar.mar import MAR
from src.models.mar.vae import AutoencoderKL
from src.models.harmon import Harmon

llm_name_or_path = {llm!r}
image_size = 16
num_iter = 6
prompt_template = dict(
    SYSTEM='<|im_start|>system\\n{{system}}<|im_end|>\\n',
    INSTRUCTION='<|im_start|>user\\n{{input}}<|im_end|>\\n<|im_start|>assistant\\n',
    SUFFIX='<|im_end|>',
    SUFFIX_AS_EOS=True,
    SEP='\\n',
    STOP_WORDS=['<|im_end|>', '<|endoftext|>'])
tokenizer = dict(type=AutoTokenizer.from_pretrained,
                 pretrained_model_name_or_path=llm_name_or_path,
                 trust_remote_code=True, padding_side='right')
model = dict(
    type=Harmon,
    tokenizer=tokenizer,
    prompt_template=prompt_template,
    vae=dict(type=AutoencoderKL, embed_dim=4, ch_mult=(1, 1, 1),
             ckpt_path='checkpoints/kl16.ckpt'),
    vae_scale=0.2325,
    llm=dict(type=AutoModelForCausalLM.from_pretrained,
             pretrained_model_name_or_path=llm_name_or_path,
             torch_dtype=torch.float32, attn_implementation='sdpa'),
    mar=dict(type=MAR, img_size=16, vae_stride=4, patch_size=1,
             encoder_embed_dim=32, encoder_depth=1, encoder_num_heads=2,
             decoder_embed_dim=32, decoder_depth=1, decoder_num_heads=2,
             vae_embed_dim=4, buffer_size=4, diffloss_d=2, diffloss_w=32,
             num_sampling_steps='3', diffusion_batch_mul=1,
             attn_dropout=0.0, proj_dropout=0.0, grad_checkpointing=False))
"""


def upstream_harmon(checkout: Path) -> None:
    """Make the checkout importable as ``src`` (as ``PYTHONPATH=./`` does upstream)."""
    root = str(Path(checkout).resolve())
    if root not in sys.path:
        sys.path.insert(0, root)


def _perturb(module: torch.nn.Module, gen: torch.Generator, std: float = 0.05) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * std)


def build_tiny_harmon(out: Path, checkout: Path, *, seed: int = 0) -> dict[str, Path]:
    """Build and save a tiny Harmon; return its paths.

    Returns:
        ``{"config": <mmengine config .py>, "checkpoint": <checkpoints/harmon_tiny.pth>,
        "vae": <checkpoints/kl16.ckpt>, "llm": <tiny Qwen2 folder>}``.
    """
    from transformers import Qwen2Config, Qwen2ForCausalLM

    upstream_harmon(checkout)
    from mmengine.config import Config
    from src.builder import BUILDER  # noqa: I001  (the upstream checkout)
    from src.models.mar.vae import AutoencoderKL

    out = Path(out)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)

    llm_dir = out / "llm"
    tok = build_tokenizer(
        vocab_size=320,
        special_tokens=HARMON_SPECIALS,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )
    torch.manual_seed(seed)
    llm_cfg = Qwen2Config(
        vocab_size=len(tok) + 8,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    Qwen2ForCausalLM(llm_cfg).save_pretrained(llm_dir)
    tok.save_pretrained(llm_dir)

    vae = AutoencoderKL(embed_dim=4, ch_mult=(1, 1, 1))
    _perturb(vae, gen, 0.02)
    torch.save({"model": vae.state_dict()}, out / "checkpoints" / "kl16.ckpt")

    # entprobe reads the config beside the checkpoint, named after it.
    config = out / "checkpoints" / "harmon_tiny.py"
    config.write_text(_CONFIG.format(llm=str(llm_dir)), encoding="utf-8")
    cfg = Config.fromfile(str(config))
    cfg.model.vae.ckpt_path = str(out / "checkpoints" / "kl16.ckpt")
    model = BUILDER.build(cfg.model)
    for name, child in model.named_children():
        if name != "vae":
            _perturb(child, gen)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("vae.")}
    torch.save(state, out / "checkpoints" / "harmon_tiny.pth")
    return {
        "config": config,
        "checkpoint": out / "checkpoints" / "harmon_tiny.pth",
        "vae": out / "checkpoints" / "kl16.ckpt",
        "llm": llm_dir,
    }
