"""``showo2``: Show-o2 (showlab/Show-o, folder ``show-o2``) over the user's own checkout.

Loading: ``Showo2Qwen2_5.from_pretrained(FOLDER, use_safetensors=False)`` of the release
folder (``config.json`` + ``pytorch_model.bin``, e.g. ``showlab/show-o2-1.5B``); its
constructor reads the LLM config and SigLIP from the ``llm_model_path`` /
``clip_pretrained_model_path`` in that config (hub ids: they must be in the Hugging Face
cache). The tokenizer is Show-o2's ``get_text_tokenizer(llm_model_path)``. Decoder layers:
``showo.model.layers`` (Show-o2's own Qwen2 copy).

Text prompts and text generation use Show-o2's understanding template
(``<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n<|im_start|>user\\n`` +
text + ``\\n<|im_start|>assistant\\n``, as ``inference_mmu.py`` builds it); generation is
a loop with a full re-forward per token, as Show-o2's own ``lm_generate`` (greedy by
default), then one teacher-forced pass.

Image generation (rectified flow): the sequence is Show-o2's ``prepare_gen_input``
layout ``[<|im_start|>] text [<|vision_start|>] [time slot] image x N [<|vision_end|>]
[<|im_end|>]`` (no text padding: later positions cannot change earlier ones), with
bidirectional attention inside the image span (``omni_attn_mask_naive``), [cond;
uncond] rows (uncond: empty text) and the upstream ODE sampler (Euler, time shift 3,
50 grid points = 49 LLM forwards; ``--image-steps K``: K forwards, K + 1 points). The default response
is one teacher-forced forward of the clean latent at the data end (t = 1) through
Show-o2's own ``forward``. Roles: text TEXT; markers and the time slot SPECIAL; the N
image positions GENERATED_IMAGE. With the VAE, the final latent is decoded to an image.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..capture import Role, capture
from ..errors import ModelLoadError, ProbeInputError
from ._decode import reforward_generate
from ._hf import resolve_dtype, seeded
from ._multimodal import to_pil
from ._stepwise import StepwiseImageAdapter, StepwiseOutput
from ._upstream import Upstream, import_upstream
from .base import CAPABILITIES, Encoded, Generation, GenerationSettings
from .requests import LoadOptions, Request

__all__ = ["Showo2Adapter"]

SYSTEM = "system\nYou are a helpful assistant.<|im_end|>"
USER, ASSISTANT = "\n<|im_start|>user\n", "\n<|im_start|>assistant\n"
VAE_FILE = "Wan2.1_VAE.pth"
DEFAULT_GRID = 50  # ODE grid points of Show-o2's demos (num_inference_steps)
WHY_NO_VAE = (
    f"Show-o2 encodes images with the Wan2.1 VAE, a separate file: put {VAE_FILE} in the model "
    "folder or set $ENTPROBE_SHOWO2_VAE (without it: no image prompts, no decoded images)"
)


@dataclass
class Showo2Adapter(StepwiseImageAdapter):
    """Show-o2: text prompts, text generation, flow-matching image generation (see module)."""

    name = "showo2"
    description = (
        "Show-o2 1.5B/7B (showlab/Show-o, show-o2/): text prompts, text generation (own loop), "
        f"image prompts and image generation (rectified flow, [cond; uncond] rows). {WHY_NO_VAE}"
    )
    capabilities = frozenset(CAPABILITIES)
    layer_paths = ("showo.model.layers",)
    image_options = frozenset({"image_steps"})
    load_extras = {
        "vae": "the Wan2.1 VAE file (default: $ENTPROBE_SHOWO2_VAE, else Wan2.1_VAE.pth in the model folder)",
        "vae_posterior": "image prompts: 'mean' (default; the same image gives the same states) or 'sample' "
        "(a draw, as upstream's inference_mmu.py does; seeded by vae_seed, recorded in the run)",
        "vae_seed": "the seed of the 'sample' posterior draw, the same for every image (default 0)",
    }
    image_generator = "rectified flow (Show-o2 ODE sampler, Euler)"
    image_response = "teacher-forced pass of the clean final latent at t=1 (data end)"
    upstream = Upstream(
        family="showo2",
        repo="showlab/Show-o",
        checked=("45a5a2de01d1 (2026-01-09)",),
        install="git clone https://github.com/showlab/Show-o && pip install -r Show-o/show-o2/requirements.txt",
        modules=("models", "models.misc", "transport"),
        subdir="show-o2",
    )

    ids: dict[str, int] = field(default_factory=dict, kw_only=True)
    upstream_modules: dict[str, Any] = field(default_factory=dict, kw_only=True)
    vae: Any = field(default=None, kw_only=True)  # Show-o2's WanVAE, or None
    #: the image-prompt latent: the VAE posterior's mean, or a seeded draw (``vae_posterior``)
    posterior_seed: int | None = field(default=None, kw_only=True)

    @classmethod
    def load_from(cls, source: str, options: LoadOptions) -> Showo2Adapter:
        """Load a Show-o2 release folder with the upstream code (see module).

        Raises:
            ModelLoadError: the upstream code is missing or the folder cannot be loaded.
        """
        found = import_upstream(cls.upstream, options.upstream_src)
        mods = found["modules"]
        try:
            model = mods["models"].Showo2Qwen2_5.from_pretrained(str(source), use_safetensors=False)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise ModelLoadError(f"adapter 'showo2' cannot load {str(source)!r}: {exc}") from exc
        want = resolve_dtype(options.dtype)
        model.to(device=options.device, **({} if want == "auto" else {"dtype": want})).eval()
        vae_file = (
            options.extras.get("vae") or os.environ.get("ENTPROBE_SHOWO2_VAE") or Path(str(source)) / VAE_FILE
        )
        vae_model = None
        if Path(vae_file).is_file():
            vae_model = mods["models"].WanVAE(vae_pth=str(vae_file), dtype=model.dtype, device=options.device)
        elif options.extras.get("vae") or os.environ.get("ENTPROBE_SHOWO2_VAE"):
            raise ModelLoadError(f"adapter 'showo2': no Wan2.1 VAE file at {str(vae_file)!r}")
        posterior = str(options.extras.get("vae_posterior", "mean"))
        if posterior not in ("mean", "sample"):
            raise ProbeInputError(
                f"adapter 'showo2': vae_posterior must be 'mean' or 'sample'; got {posterior!r}"
            )
        seed = int(options.extras.get("vae_seed", 0)) if posterior == "sample" else None
        tok, ids = mods["models.misc"].get_text_tokenizer(
            model.config.llm_model_path,
            add_showo_tokens=True,
            return_showo_token_ids=True,
            llm_name="qwen2_5",
        )
        adapter = cls(
            model=model,
            processor=tok,
            source=str(source),
            ids=ids,
            upstream_modules=mods,
            vae=vae_model,
            posterior_seed=seed,
            extra_identity={
                "upstream": found["identity"],
                "llm": model.config.llm_model_path,
                "vae": str(vae_file) if vae_model is not None else None,
                # recorded only when not the default mean, so earlier run ids hold
                **({} if seed is None else {"vae_posterior": f"sample (seed {seed})"}),
            },
        )
        if vae_model is None:  # no image prompts, known before any sample runs
            adapter.capabilities = cls.capabilities - {"image-prompt"}
            adapter.unsupported = {"image-prompt": WHY_NO_VAE}
        return adapter

    @property
    def n_image_tokens(self) -> int:
        """Image positions per image (without the time slot)."""
        return int(self.model.config.image_latent_height * self.model.config.image_latent_width)

    def count_tokens(self, text: str) -> int:
        return len(self._ids(text))

    def _ids(self, text: str) -> list[int]:
        return self.processor(text, add_special_tokens=False)["input_ids"]

    # --- prompts (text, or image + question) and text generation ---------------------
    def _embed(self, ids: list[int]) -> torch.Tensor:
        return self.model.showo.model.embed_tokens(torch.tensor([ids], device=self.device))

    def _image_embeds(self, image: Image.Image) -> torch.Tensor:
        """``(1, N, d)``: the fused (SigLIP-semantic + patch) embeddings of the VAE latent of
        ``image`` (resized on its short side, centre-cropped to the model's resolution, in
        [-1, 1]), computed as Show-o2's ``inference_mmu.py`` does, but from the VAE
        posterior's mean rather than a sample of it."""
        m, cfg = self.model, self.model.config
        side = cfg.image_latent_height * cfg.patch_size * 8  # Wan2.1 compresses 8x
        img = image.convert("RGB")
        w, h = img.size  # torchvision's Resize(side) then CenterCrop(side), on PIL
        size = (side, int(side * h / w)) if w <= h else (int(side * w / h), side)
        img = img.resize(size, Image.BICUBIC)
        left, top = int(round((img.width - side) / 2)), int(round((img.height - side) / 2))
        img = img.crop((left, top, left + side, top + side))
        x = torch.tensor(np.asarray(img), dtype=torch.float32).permute(2, 0, 1) / 127.5 - 1
        # The posterior mean by default (Show-o2's script draws a sample): the same image gives
        # the same states. `vae_posterior="sample"` draws, seeded alike for every image.
        x = x[None, :, None].to(self.device)
        if self.posterior_seed is None:
            latents = self.vae.sample(x, deterministic=True)
        else:
            with seeded(self.posterior_seed, self.device):
                latents = self.vae.sample(x, deterministic=False)
        latents = latents.squeeze(2).to(m.dtype)
        und, gen = m.image_embedder_und(latents), m.image_embedder_gen(latents)
        if m.position_embedding.weight.shape[0] == m.image_position_ids.shape[-1]:
            und = und + m.position_embedding(m.image_position_ids)
        else:
            misc = self.upstream_modules["models.misc"]
            und = und + misc.interpolate_pos_encoding(
                cfg.clip_latent_dim, m.position_embedding, cfg.image_latent_height, cfg.image_latent_width, 1
            )
        return m.fusion_proj(torch.cat([m.und_trans(und)["last_hidden_state"], gen], dim=-1))

    def _prompt(self, text: str, image: Image.Image | None = None) -> dict[str, Any]:
        """Embeddings ``(1, L, d)``, the image's modality position (or None), roles, ids
        (image positions: the image pad id)."""
        i = self.ids
        head = [i["bos_id"]] + self._ids(SYSTEM) + self._ids(USER)
        body, tail = self._ids(text.strip()), self._ids(ASSISTANT)
        roles = [Role.SPECIAL] * len(head)
        ids, parts, pos = list(head), [self._embed(head)], None
        if image is not None:  # <|vision_start|> [time slot] image <|vision_end|>, then the question
            t = self.model.time_embed(torch.ones(1, 1, device=self.device), parts[0].dtype)
            t = self.model.time_embed_proj(t) if hasattr(self.model, "time_embed_proj") else t
            img = self._image_embeds(image)
            parts += [self._embed([i["boi_id"]]), t.reshape(1, 1, -1), img, self._embed([i["eoi_id"]])]
            # Show-o2's modality position for understanding: from the first image token,
            # the image plus one (inference_mmu.py)
            pos = torch.tensor([[[len(head) + 2, img.shape[1] + 1]]], device=self.device)
            ids += [i["boi_id"], i["img_pad_id"]] + [i["img_pad_id"]] * img.shape[1] + [i["eoi_id"]]
            roles += [Role.SPECIAL, Role.SPECIAL] + [Role.IMAGE] * img.shape[1] + [Role.SPECIAL]
        parts.append(self._embed(body + tail))
        return {
            "embeds": torch.cat(parts, dim=1),
            "pos": pos,
            "ids": ids + body + tail,
            "roles": roles + [Role.TEXT] * len(body) + [Role.SPECIAL] * len(tail),
        }

    def _forward(self, embeds: torch.Tensor, pos: torch.Tensor | None) -> torch.Tensor:
        """One LLM forward (causal; bidirectional inside the image); next-token logits."""
        mask = None if pos is None else self._mask(pos, embeds.shape[1])
        return self.model.showo(inputs_embeds=embeds, attention_mask=mask).logits[0, -1]

    def _encode_prompt(self, text: str, image: Image.Image | None) -> Encoded:
        with torch.no_grad(), capture(self.model, self.layers_path) as rec:
            p = self._prompt(text, image)
            self._forward(p["embeds"], p["pos"])
        return Encoded(rec.states(0)[:, 0], p["roles"], torch.tensor(p["ids"]))

    def encode_text(self, text: str) -> Encoded:
        self.require("text-prompt")
        return self._encode_prompt(text, None)

    def encode_image(self, image: Image.Image, question: str = "") -> Encoded:
        self.require("image-prompt")
        return self._encode_prompt(question, image)

    def text_generation(self, request: Request, keep_generation_states: bool = False) -> Generation:
        """Decoding with a full re-forward per token, as Show-o2's ``lm_generate`` /
        ``mmu_generate`` (greedy by default); then one teacher-forced pass."""
        text, image, settings = request.text, request.image, request.settings
        self.require("text-gen")
        if image is not None:
            self.require("image-prompt")
        with torch.no_grad():
            p = self._prompt(text, image)
        gen, response = reforward_generate(
            self.model,
            self.layers_path,
            lambda e: self._forward(e, p["pos"]),
            self._embed,
            p["embeds"],
            p["roles"],
            p["ids"],
            settings,
            {self.processor.eos_token_id},
            keep_generation_states=keep_generation_states,
        )
        gen.text = self.processor.decode(response, skip_special_tokens=True)
        return gen

    # --- image generation (the step-wise hooks) -----------------------------------------
    def n_image_steps(self, settings: GenerationSettings) -> int:
        """LLM forwards (denoising steps): ``--image-steps``, else Show-o2's 50-point grid's 49."""
        return settings.image_steps or DEFAULT_GRID - 1

    def image_gen_prompt(self, text: str, settings: GenerationSettings) -> dict[str, Any]:
        misc, n_img = self.upstream_modules["models.misc"], self.n_image_tokens + 1  # + time slot
        i = self.ids
        n_text = len(self._ids(text))
        cond, uncond, pos, pos_null = misc.prepare_gen_input(
            [text],
            self.processor,
            n_img,
            i["bos_id"],
            i["eos_id"],
            i["boi_id"],
            i["eoi_id"],
            self.processor.pad_token_id,
            i["img_pad_id"],
            n_text,
            self.device,
        )
        guided = settings.guidance_scale > 0
        return {
            "cond": cond,
            "uncond": uncond if guided else None,
            "pos": pos,
            "pos_null": pos_null,
            "n_text": n_text,
            "guided": guided,
        }

    def _mask(self, pos: torch.Tensor, length: int) -> torch.Tensor:
        omni = self.upstream_modules["models"].omni_attn_mask_naive
        return omni(pos.shape[0], length, pos, self.device).to(self.model.dtype)

    def denoise(self, prompt: dict[str, Any], settings: GenerationSettings) -> StepwiseOutput:
        cfg, transport = self.model.config, self.upstream_modules["transport"]
        guided = prompt["guided"]
        tokens = torch.cat([prompt["cond"], prompt["uncond"]]) if guided else prompt["cond"]
        pos = torch.cat([prompt["pos"], prompt["pos_null"]]) if guided else prompt["pos"]
        side = cfg.image_latent_height * cfg.patch_size
        with seeded(settings.seed, self.device):
            z = torch.randn(1, cfg.image_latent_dim, side, side, device=self.device, dtype=self.model.dtype)
        z = torch.cat([z, z]) if guided else z
        flow = transport.create_transport(
            path_type="Linear",
            prediction="velocity",
            loss_weight=None,
            train_eps=None,
            sample_eps=None,
            snr_type="lognorm",
            do_shift=True,
            seq_len=self.n_image_tokens + 1,
        )
        sample = transport.Sampler(flow).sample_ode(
            sampling_method="euler",
            num_steps=self.n_image_steps(settings) + 1,
            atol=1e-6,
            rtol=1e-3,
            reverse=False,
            time_shifting_factor=3.0,
        )
        start = 2 + prompt["n_text"] + 1  # bos, text, boi, time slot
        rows = {"cond": slice(0, 1), "uncond": slice(1, 2)} if guided else {"cond": slice(0, 1)}
        step = 0

        def velocity(x: torch.Tensor, t: torch.Tensor, **kw: Any) -> torch.Tensor:
            nonlocal step
            step += 1
            with self.llm_call(step=step, branches=rows, positions=slice(start, start + self.n_image_tokens)):
                return self.model.t2i_generate(x, t, **kw)

        out = sample(
            z,
            velocity,
            text_tokens=tokens,
            attention_mask=self._mask(pos, tokens.shape[1]),
            modality_positions=pos,
            output_hidden_states=True,
            max_seq_len=tokens.shape[1],
            guidance_scale=settings.guidance_scale if guided else 0.0,
        )[-1]
        clean, image = out[:1], None
        if self.vae is not None:  # as inference_t2i.py: Wan2.1 decode, then to 8-bit RGB
            pixels = self.vae.batch_decode(clean.to(self.model.dtype).unsqueeze(2)).squeeze(2)[0]
            image = to_pil(pixels.permute(1, 2, 0))
        return StepwiseOutput(response_ids=torch.empty(0, dtype=torch.long), image=image, clean=clean)

    def teacher_force(self, prompt: dict[str, Any], out: StepwiseOutput) -> tuple[list[Role], torch.Tensor]:
        tokens, pos = prompt["cond"], prompt["pos"]
        t = torch.ones(1, device=self.device, dtype=self.model.dtype)  # the data end
        with self.llm_call(phase="teacher-forced", branches={"cond": slice(0, 1)}):
            self.model(
                tokens,
                image_latents=out.clean.to(self.model.dtype),
                t=t,
                attention_mask=self._mask(pos, tokens.shape[1]),
                modality_positions=pos,
                output_hidden_states=True,
                max_seq_len=tokens.shape[1],
            )
        n = prompt["n_text"]
        roles = [Role.SPECIAL] + [Role.TEXT] * n + [Role.SPECIAL, Role.SPECIAL]
        roles += [Role.GENERATED_IMAGE] * self.n_image_tokens + [Role.SPECIAL] * (
            tokens.shape[1] - len(roles) - self.n_image_tokens
        )
        return roles, tokens[0]
