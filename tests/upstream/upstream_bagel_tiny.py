"""A tiny, randomly initialised BAGEL built from the REAL upstream classes, saved offline
in the released checkpoint layout (``ByteDance-Seed/BAGEL-7B-MoT``, read by the
upstream ``app.py``):

- ``llm_config.json`` (Qwen2 config; the loader sets ``qk_norm``, ``layer_module``),
- ``vit_config.json`` (SigLIP config with one layer more than is built: the loader
  drops the last one, as upstream does),
- ``ema.safetensors`` (the whole ``Bagel`` state dict, ViT patch embedding as a linear),
- ``ae.safetensors`` (the VAE; here a tiny subset of its keys: the upstream
  ``load_ae`` loads non-strictly and the architecture is fixed, so the rest stays at
  its seeded random initialisation),
- ``vocab.json`` / ``merges.txt`` (a byte-level BPE trained offline; the loader adds
  ``<|im_start|>`` ... ``<|vision_end|>`` like upstream's ``add_special_tokens``).

Needs the upstream checkout on ``sys.path`` (see ``conftest.py``). Test-only.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

__all__ = ["TINY_IMAGE_SIZE", "save_tiny_bagel"]

#: Generated image side in pixels: latent side 2 * 16 px per latent token = 2 x 2 tokens.
TINY_IMAGE_SIZE = 32

_CORPUS = (
    "A red circle and a blue square on a white table.",
    "How many triangles are in the picture? Answer with a number.",
    "Draw a cat sitting to the left of a tall green lamp at sunset.",
    "The quick brown fox jumps over the lazy dog 0123456789.",
)


def _save_tokenizer(out: Path) -> int:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(_CORPUS), trainer=trainer)
    tok.model.save(str(out))  # vocab.json + merges.txt, what Qwen2Tokenizer reads
    merges = (out / "merges.txt").read_text().splitlines()
    if not merges or not merges[0].startswith("#"):
        (out / "merges.txt").write_text("\n".join(["#version: 0.2", *merges]) + "\n")
    return tok.get_vocab_size()


def save_tiny_bagel(out_dir: str | Path, *, seed: int = 0) -> Path:
    """Build and save the tiny BAGEL; returns the checkpoint folder."""
    from modeling.autoencoder import load_ae
    from modeling.bagel import (
        Bagel,
        BagelConfig,
        Qwen2Config,
        Qwen2ForCausalLM,
        SiglipVisionConfig,
        SiglipVisionModel,
    )
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n_vocab = _save_tokenizer(out)
    llm = Qwen2Config(
        vocab_size=n_vocab + 8,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        initializer_range=0.2,
        rope_theta=10000.0,
    )
    llm.to_json_file(out / "llm_config.json")
    vit = SiglipVisionConfig(
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=3,
        num_attention_heads=2,
        image_size=980,
        patch_size=14,
    )
    vit.to_json_file(out / "vit_config.json")
    (out / "config.json").write_text(json.dumps({"note": "tiny random BAGEL for entprobe tests"}))

    # Built exactly as the upstream app.py configures it before loading.
    llm.qk_norm, llm.tie_word_embeddings, llm.layer_module = True, False, "Qwen2MoTDecoderLayer"
    vit.rope, vit.num_hidden_layers = False, vit.num_hidden_layers - 1
    torch.manual_seed(seed)
    vae, vae_config = load_ae(local_path=None)
    config = BagelConfig(
        visual_gen=True,
        visual_und=True,
        llm_config=llm,
        vit_config=vit,
        vae_config=vae_config,
        vit_max_num_patch_per_side=70,
        connector_act="gelu_pytorch_tanh",
        latent_patch_size=2,
        max_latent_size=64,
    )
    model = Bagel(Qwen2ForCausalLM(llm), SiglipVisionModel(vit), config)
    model.vit_model.vision_model.embeddings.convert_conv2d_to_linear(vit)
    with torch.no_grad():
        # Upstream zero-initialises llm2vae (a trained model is not zero); random weights
        # make the flow actually move, and the und / gen experts differ.
        g = torch.Generator().manual_seed(seed + 1)
        for name, p in model.named_parameters():
            if "pos_embed" not in name:
                p.copy_(
                    torch.randn(p.shape, generator=g) * (0.3 if p.dim() > 1 else 0.05)
                    + (
                        1.0
                        if name.endswith("norm.weight") or "layernorm" in name and name.endswith("weight")
                        else 0.0
                    )
                )
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / "ema.safetensors"))
    # The VAE's architecture is fixed upstream (about 84M parameters); a few keys are
    # enough for the non-strict loader, and keep the test checkpoint small.
    vae_sd = vae.state_dict()
    save_file(
        {k: vae_sd[k].contiguous() for k in ("decoder.conv_out.weight", "decoder.conv_out.bias")},
        str(out / "ae.safetensors"),
    )
    return out
