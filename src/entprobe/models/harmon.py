"""``harmon``: Harmon and Harmon-RecA (wusize/Harmon) over the user's own checkout.

Loading follows the upstream scripts: ``mmengine Config.fromfile`` -> ``BUILDER.build``
-> ``load_state_dict(torch.load(<checkpoint>.pth), strict=False)``. ``source`` is the
release's ``harmon_*.pth`` (or its folder); ``kl16.ckpt`` must lie beside it. The
config is ``<checkpoint stem>.py`` beside it when present, else the checkout's
``configs/models/qwen2_5_{0_5b,1_5b}_kl16_mar_{b,h}.py`` by the size in the file name.
Optional top-level config keys ``image_size`` (default 512, as the scripts) and
``num_iter`` (64) set the resolution and the MAR iterations. A config asking for
flash-attention gets ``sdpa`` when flash_attn or CUDA is missing.

Decoder layers: ``llm.model.layers`` (stock Qwen2.5). Prompts use the config's chat
template; the user's text is TEXT, the template SPECIAL. Image prompts put
``<image>`` x (grid + buffer) in the template (as ``scripts/image2text.py``): the
grid positions hold the MAR encoder's features (IMAGE), the ``mar.buffer_size`` buffer
tokens moved to the end are SPECIAL. Text generation: HF ``generate``.

Image generation (MAR): the prompt ``"Generate an image: " + text`` and the
unconditional ``"Generate an image."`` are prefilled once as [cond; uncond] rows, then
``num_iter`` forwards over buffer + revealed tokens; the DiffLoss MLP samples outside
the LLM. The loop is the adapter's (upstream ``Harmon.sample`` hard-codes ``.cuda()``
in its DiffLoss sampler), built from the upstream modules in the same order and with
the same random draws; the DiffLoss timestep loop is run with tensors on the model's
device. Step ``k``'s response positions are the image part of that forward: the
tokens revealed so far and the buffer (at step 1 the buffer alone). Default response: one
teacher-forced pass with every token revealed (upstream ``forward_mae_encoder`` with an
empty mask): prompt, grid (GENERATED_IMAGE), buffer (SPECIAL).
"""

from __future__ import annotations

import importlib
import math
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..capture import Role
from ..errors import EntprobeWarning, ModelLoadError
from ._embeds import EmbedPrompt, EmbedsFamily, label_text
from ._hf import resolve_dtype, seeded
from ._multimodal import to_pil
from ._stepwise import StepwiseImageAdapter, StepwiseOutput
from ._upstream import Upstream, import_upstream
from .base import CAPABILITIES, Encoded, GenerationSettings
from .requests import LoadOptions, Request

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

__all__ = ["HarmonAdapter"]

UPSTREAM = Upstream(
    family="harmon",
    repo="wusize/Harmon",
    checked=("4eb608765629 (2025-05-21)",),
    install="git clone https://github.com/wusize/Harmon && pip install mmengine timm einops",
    modules=("src.builder", "src.models.harmon", "mmengine.config"),
)
_CONFIGS = {"0.5b": "qwen2_5_0_5b_kl16_mar_b.py", "1.5b": "qwen2_5_1_5b_kl16_mar_h.py"}


def _release_files(source: str, checkout: Path) -> tuple[Path, Path, Path]:
    path = Path(source).expanduser()
    if path.is_dir():
        found = sorted(p for p in path.glob("*.pth"))
        if len(found) != 1:
            raise ModelLoadError(f"{source!r} holds {len(found)} .pth checkpoints; name the one to load")
        path = found[0]
    if not path.is_file():
        raise ModelLoadError(f"no Harmon checkpoint at {source!r} (expected checkpoints/harmon_*.pth)")
    vae = path.parent / "kl16.ckpt"
    if not vae.is_file():
        raise ModelLoadError(
            f"the Harmon VAE {vae} is missing (kl16.ckpt of wusize/harmon, beside the checkpoint)"
        )
    config = path.with_suffix(".py")
    if not config.is_file():
        size = next((s for s in _CONFIGS if s in path.name.lower().replace("_", ".")), None)
        if size is None:
            raise ModelLoadError(
                f"cannot tell the size of {path.name}: put its mmengine config beside it as {config.name}"
            )
        config = checkout / "configs" / "models" / _CONFIGS[size]
    return path, vae, config


@contextmanager
def _numpy_seeded(seed: int):
    # MAR draws its generation orders from NumPy's global RNG.
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


@dataclass
class HarmonAdapter(EmbedsFamily, StepwiseImageAdapter):
    """Harmon / Harmon-RecA; see the module docstring."""

    name = "harmon"
    description = (
        "Harmon and Harmon-RecA (wusize/Harmon; RecA checkpoints use this adapter): text and image "
        "prompts, text generation, MAR image generation"
    )
    capabilities = frozenset(CAPABILITIES)
    layer_paths = ("llm.model.layers",)
    upstream = UPSTREAM
    image_generator = "MAR"
    image_response = "teacher-forced pass with all MAR tokens revealed"
    image_options = frozenset({"image_steps", "image_size"})
    image_size: int = 512
    num_iter: int = 64
    #: the config's own ``image_size`` (None: it has none, and 512 is the scripts' default)
    configured_image_size: int | None = None
    cfg_prompt: str = "Generate an image."

    @classmethod
    def load_from(cls, source: str, options: LoadOptions) -> HarmonAdapter:
        up = import_upstream(UPSTREAM, options.upstream_src)
        checkout = Path(up["modules"]["src.builder"].__file__).resolve().parents[1]
        ckpt, vae, config = _release_files(str(source), checkout)
        cfg = up["modules"]["mmengine.config"].Config.fromfile(str(config))
        cfg.model.vae.ckpt_path = str(vae)
        if options.dtype != "auto":
            cfg.model.llm.torch_dtype = resolve_dtype(options.dtype)
        if cfg.model.llm.get("attn_implementation") == "flash_attention_2" and not (
            str(options.device).startswith("cuda") and _has("flash_attn")
        ):
            cfg.model.llm.attn_implementation = "sdpa"
        model = up["modules"]["src.builder"].BUILDER.build(cfg.model)
        info = model.load_state_dict(torch.load(ckpt, map_location="cpu"), strict=False)
        missing = [k for k in info.missing_keys if not k.startswith("vae.")]
        if missing or info.unexpected_keys:
            raise ModelLoadError(
                f"{ckpt} is not a Harmon checkpoint for {config.name}: {len(missing)} missing "
                f"keys (e.g. {missing[:2]}), {len(info.unexpected_keys)} unexpected"
            )
        model.to(device=options.device, dtype=model.dtype).eval()
        model.tokenizer.add_special_tokens(
            {"additional_special_tokens": ["<image>"]}, replace_additional_special_tokens=False
        )
        extra = {
            "config": str(config),
            "checkpoint": str(ckpt),
            "upstream": up["identity"],
            "image_size": int(cfg.get("image_size", 512)),
            "num_iter": int(cfg.get("num_iter", 64)),
            "attn_implementation": cfg.model.llm.get("attn_implementation"),
        }
        return cls(
            model=model,
            processor=model.tokenizer,
            source=str(source),
            extra_identity=extra,
            image_size=extra["image_size"],
            configured_image_size=None if cfg.get("image_size") is None else int(cfg.get("image_size")),
            num_iter=extra["num_iter"],
        )

    @property
    def tokenizer(self) -> Any:
        return self.model.tokenizer

    @property
    def max_context(self) -> int | None:
        return getattr(self.model.llm.config, "max_position_embeddings", None)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    # --- prompts ----------------------------------------------------------------------
    def _prompt(self, text: str, image_tokens: int = 0) -> tuple[list[int], list[Role]]:
        prefix, suffix = self.model.prompt_template["INSTRUCTION"].split("{input}")
        prefix += "<image>" * image_tokens + ("\n" if image_tokens else "")
        return label_text(
            self.tokenizer,
            prefix + text + suffix,
            (len(prefix), len(prefix) + len(text)),
            add_special_tokens=True,
        )

    def _embed(self, ids: list[int], roles: list[Role], features: torch.Tensor | None = None) -> EmbedPrompt:
        t = torch.tensor(ids, device=self.device)
        embeds = self.model.llm.get_input_embeddings()(t)[None]
        if features is not None:
            embeds[0, t == self.tokenizer.convert_tokens_to_ids("<image>")] = features.to(embeds.dtype)
        return EmbedPrompt(embeds, roles, t.cpu())

    def prompt_config(self, settings: GenerationSettings) -> dict[str, Any] | None:
        """``--image-size`` sets the image-prompt size too (image2text.py's ``--image_size``),
        recorded in the run; a size other than the checkpoint configuration's warns."""
        if settings.image_size is None:
            return None
        if self.configured_image_size is not None and settings.image_size != self.configured_image_size:
            warnings.warn(
                f"--image-size {settings.image_size}: the checkpoint's configuration says "
                f"image_size={self.configured_image_size}; image prompts and generation use "
                f"{settings.image_size} px",
                EntprobeWarning,
                stacklevel=2,
            )
        return {"image_size": int(settings.image_size)}

    def prompt_pass(self, request: Request) -> Encoded:
        if request.image is None:
            return self.encode_text(request.text)
        self.require("image-prompt")
        return self._encode(self.image_prompt(request.image, request.text, request.settings))

    def image_prompt(self, image: Image.Image, question: str, settings: Any = None) -> EmbedPrompt:
        from PIL import Image as PILImage

        s = (settings.image_size if settings is not None else None) or self.image_size
        side = max(image.size)
        square = PILImage.new("RGB", (side, side), (127, 127, 127))  # expand2square, as image2text.py
        square.paste(image.convert("RGB"), ((side - image.size[0]) // 2, (side - image.size[1]) // 2))
        pixels = torch.from_numpy(np.array(square.resize(size=(s, s)))).to(self.device, self.model.dtype)
        pixels = 2 * (pixels.permute(2, 0, 1)[None] / 255) - 1
        with torch.no_grad():
            _, z_enc = self.model.extract_visual_feature(self.model.encode(pixels))
        n_grid, buffer = z_enc.shape[1] - self.model.mar.buffer_size, self.model.mar.buffer_size
        ids, roles = self._prompt(question, n_grid + buffer)
        image_id = self.tokenizer.convert_tokens_to_ids("<image>")
        slots = iter([Role.IMAGE] * n_grid + [Role.SPECIAL] * buffer)
        roles = [next(slots) if t == image_id else r for t, r in zip(ids, roles)]
        return self._embed(ids, roles, z_enc[0])

    # --- prompts (the prompt level and text generation: EmbedsFamily) ------------------
    @property
    def causal_lm(self) -> Any:
        return self.model.llm

    def text_prompt(self, text: str) -> EmbedPrompt:
        return self._embed(*self._prompt(text))

    # --- MAR image generation ---------------------------------------------------------
    def n_image_steps(self, settings: GenerationSettings) -> int:
        return settings.image_steps or self.num_iter

    def image_gen_prompt(self, text: str, settings: GenerationSettings) -> dict[str, Any]:
        text = f"Generate an image: {text}"
        cond = self.model.prepare_text_conditions(text, self.cfg_prompt)  # [cond; uncond], right-padded
        ids, roles = self._prompt(text)
        if cond["input_ids"][0, : len(ids)].tolist() != ids:
            raise RuntimeError("harmon: the labelled prompt differs from upstream prepare_text_conditions")
        guided = settings.guidance_scale is not None and settings.guidance_scale != 1.0
        rows = 2 if guided else 1
        return {
            "input_ids": cond["input_ids"][:rows],
            "attention_mask": cond["attention_mask"][:rows],
            "prompt": self._embed(ids, roles),
            "cfg": settings.guidance_scale if guided else 1.0,
        }

    def denoise(self, prompt: dict[str, Any], settings: GenerationSettings) -> StepwiseOutput:
        from transformers.cache_utils import DynamicCache

        m, mar = self.model, self.model.mar
        mask_by_order = importlib.import_module("src.models.harmon").mask_by_order
        g = (settings.image_size or self.image_size) // mar.vae_stride
        n_tok, bsz, cfg = g * g, prompt["input_ids"].shape[0], prompt["cfg"]
        n_iter = self.n_image_steps(settings)
        rows = {"cond": slice(0, 1)} | ({"uncond": slice(1, 2)} if bsz == 2 else {})
        with seeded(settings.seed, self.device), _numpy_seeded(settings.seed):
            embeds = m.llm.get_input_embeddings()(prompt["input_ids"])
            mask = torch.ones(bsz, n_tok, device=self.device, dtype=m.dtype)
            tokens = torch.zeros(bsz, n_tok, m.token_embed_dim, device=self.device, dtype=m.dtype)
            orders = mar.sample_orders(bsz, seq_len=n_tok)  # row 1's order is unused: masks are copied
            with self.llm_call(phase="prefill", branches=rows):
                cache = m.llm_model(
                    inputs_embeds=embeds, past_key_values=DynamicCache(), use_cache=True, return_dict=True
                ).past_key_values
            for step in range(n_iter):
                # the image part of this forward: revealed tokens, then the buffer
                with self.llm_call(step=step + 1, branches=rows, positions=slice(0, None)):
                    x_enc = m.forward_mae_encoder(
                        tokens.view(bsz, g, g, -1),
                        mask.to(m.dtype),
                        past_key_values=cache,
                        attention_mask=prompt["attention_mask"],
                    )
                cache.crop(embeds.shape[1])  # keep the prompt only, as upstream curtail_cache
                z = mar.forward_mae_decoder(x_enc, mask.to(m.dtype), image_shape=(g, g))
                ratio = np.cos(math.pi / 2.0 * (step + 1) / n_iter)
                n_masked = torch.Tensor([np.floor(n_tok * ratio)]).to(self.device)
                n_masked = torch.maximum(
                    torch.Tensor([1]).to(self.device),
                    torch.minimum(mask.sum(dim=-1, keepdims=True) - 1, n_masked),
                )
                nxt = mask_by_order(n_masked[0], orders, bsz, n_tok).to(self.device)
                if bsz == 2:
                    nxt[1:] = nxt[:1]
                last = step >= n_iter - 1
                pred = mask.bool() if last else torch.logical_xor(mask.bool(), nxt.bool())
                mask = nxt
                where = pred.nonzero(as_tuple=True)
                tokens = tokens.clone()
                tokens[where] = self._diffloss(z[where], settings.image_temperature, cfg).to(m.dtype)
                if bsz == 2:
                    tokens[1:] = tokens[:1]
            pixels = m.decode(tokens[:1].clone().view(1, g, g, -1))[0].permute(1, 2, 0)
        return StepwiseOutput(
            response_ids=torch.empty(0, dtype=torch.long),
            image=to_pil(pixels),
            clean=tokens[:1].view(1, g, g, -1),
        )

    def _diffloss(self, z: torch.Tensor, temperature: float, cfg: float) -> torch.Tensor:
        """DiffLoss sampling as upstream ``DiffLoss.sample``, on ``z``'s device."""
        loss = self.model.mar.diffloss
        if cfg != 1.0:
            half = torch.randn(z.shape[0] // 2, loss.in_channels)
            x, fn, kw = torch.cat([half, half]), loss.net.forward_with_cfg, {"c": z, "cfg_scale": cfg}
        else:
            x, fn, kw = torch.randn(z.shape[0], loss.in_channels), loss.net.forward, {"c": z}
        x, diffusion = x.to(z.device), loss.gen_diffusion
        for i in reversed(range(diffusion.num_timesteps)):
            t = torch.full((x.shape[0],), i, dtype=torch.long, device=z.device)
            x = diffusion.p_sample(fn, x, t, clip_denoised=False, model_kwargs=kw, temperature=temperature)[
                "sample"
            ]
        return x

    def teacher_force(
        self, prompt: dict[str, Any], out: StepwiseOutput
    ) -> tuple[list[Role], torch.Tensor | None]:
        p: EmbedPrompt = prompt["prompt"]
        clean, grid = out.clean, out.clean.shape[1] * out.clean.shape[2]
        visible = torch.zeros(1, grid, device=self.device, dtype=self.model.dtype)  # nothing masked
        with self.llm_call(phase="teacher-forced", branches={"cond": slice(0, 1)}):
            self.model.forward_mae_encoder(
                clean,
                visible,
                inputs_embeds=p.embeds,
                attention_mask=torch.ones(p.embeds.shape[:2], device=self.device),
            )
        return p.roles + [Role.GENERATED_IMAGE] * grid + [Role.SPECIAL] * self.model.mar.buffer_size, None


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
