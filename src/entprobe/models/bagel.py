"""``bagel``: BAGEL and BAGEL-RecA (ByteDance-Seed/Bagel) over the user's upstream code.

Checkpoint folder as released (``ByteDance-Seed/BAGEL-7B-MoT``; RecA checkpoints have
the same layout, its ``model_bf16.safetensors`` in place of ``ema.safetensors``):
``llm_config.json``, ``vit_config.json``, ``ema.safetensors``,
``ae.safetensors`` and the Qwen2 tokenizer files, configured as upstream's ``app.py``
does. BAGEL's attention runs in bfloat16 (its code casts), so every call runs under
``torch.autocast(bfloat16)``, as upstream's inferencer does; ``--dtype auto`` loads
bfloat16 weights.

Sequences are packed, ``(n_tokens, d)``, and built segment by segment into a KV cache
(one LLM forward per segment, as upstream's inferencer): a text segment is
``<|im_start|> text <|im_end|>``, an image ``<|vision_start|> ViT patches
<|vision_end|>`` (image prompts: image first, then the question). Roles: markers
SPECIAL, patches IMAGE, text TEXT. Text generation is BAGEL's own ``generate_text``
loop on a copy of the cache; the response is teacher-forced as one more text segment
(the loop's inputs: ``<|im_start|>`` SPECIAL, then the tokens GENERATED_TEXT).

Image generation is upstream's ``generate_image`` (flow matching, Euler steps) on the
contexts its inferencer builds for a text prompt: conditional = the prompt, text-CFG =
empty, image-CFG = the prompt; the LLM runs once per context per step, the CFG ones
only inside ``cfg_interval``. Each forward is tagged by which of the adapter's KV
caches it was given and by the step (counted at the time embedder, which runs once
per step), so the varying number of forwards cannot misalign states. The default
response is one forward of ``<|vision_start|> latent <|vision_end|>`` with the clean
final latent at t = 0 (the data end), conditional context, generation mode.

Experts (mixture of transformers): every prompt position and the image markers go
through the understanding expert ("und"), latent positions through the generation
expert ("gen"); ``Encoded.experts`` says so per position.
"""

from __future__ import annotations

import copy
import itertools
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..capture import Role, capture
from ..errors import ModelLoadError, ProbeInputError, UnsupportedError
from ._hf import seeded
from ._stepwise import StepwiseImageAdapter, StepwiseOutput
from ._upstream import Upstream, import_upstream
from .base import CAPABILITIES, Encoded, Generation, GenerationSettings
from .requests import LoadOptions, Request

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

__all__ = ["BagelAdapter"]

_FILES = ("llm_config.json", "vit_config.json", "ae.safetensors", "vocab.json")
#: The LLM + ViT weights: BAGEL-7B-MoT's ``ema.safetensors``, or BAGEL-RecA's
#: ``model_bf16.safetensors`` put in a BAGEL-7B-MoT folder (the RecA README's layout).
_WEIGHTS = ("ema.safetensors", "model_bf16.safetensors")


@dataclass
class _Context:
    """One packed KV-cache context (upstream's ``gen_context``) and what it holds."""

    cache: Any
    kv_len: int = 0
    rope: int = 0
    roles: list[Role] = field(default_factory=list)


@dataclass
class BagelAdapter(StepwiseImageAdapter):
    name = "bagel"
    description = (
        "BAGEL 7B-MoT and BAGEL-RecA (same adapter): Qwen2 mixture-of-transformers, packed "
        "sequences; flow-matching image generation"
    )
    capabilities = frozenset(CAPABILITIES)
    layer_paths = ("language_model.model.layers",)
    layers_input = "packed_query_sequence"
    image_generator = "flow matching (Euler), separate cond / text-CFG / image-CFG forwards"
    image_response = "one generation-mode forward of the clean final latent at t=0"
    image_options = frozenset({"image_steps", "image_size"})
    # Images arrive in their stored mode: upstream composites transparency onto white.
    image_mode = None
    load_extras = {
        "weights": "the weights file in the folder (default: ema.safetensors, or BAGEL-RecA's "
        "model_bf16.safetensors when that is the one there)",
        "image_transform": "image prompts: 'inferencer' (default; InterleaveInferencer's VAE resize "
        "(1024, 512, 16), then the ViT transform (980, 224, 14)) or 'eval' (the eval/vlm scripts' "
        "transform (980, 378, 14), max 2,007,040 pixels)",
    }
    upstream = Upstream(
        family="bagel",
        repo="ByteDance-Seed/Bagel",
        checked=("056b5fd51a88 (2025-10-27)",),
        install="git clone https://github.com/ByteDance-Seed/Bagel && pip install -r Bagel/requirements.txt",
        modules=(
            "modeling.bagel",
            "modeling.bagel.qwen2_navit",
            "modeling.autoencoder",
            "modeling.qwen2",
            "data.data_utils",
            "inferencer",
        ),
        requires={"transformers": "4.49"},
    )

    up: dict[str, Any] = field(default_factory=dict)
    vae: Any = None
    token_ids: dict[str, int] = field(default_factory=dict)
    # Upstream's text-to-image defaults (app.py / inferencer.py).
    image_shape: tuple[int, int] = (1024, 1024)
    num_timesteps: int = 50
    timestep_shift: float = 3.0
    cfg_interval: tuple[float, float] = (0.4, 1.0)
    cfg_img_scale: float = 1.5
    image_transform: str = "inferencer"

    @classmethod
    def load_from(cls, source: str, options: LoadOptions) -> BagelAdapter:
        folder = Path(source)
        missing = [f for f in _FILES if not (folder / f).is_file()]
        named = options.extras.get("weights")
        weights = [named] if named else [w for w in _WEIGHTS if (folder / w).is_file()]
        if not weights or not (folder / weights[0]).is_file():
            missing.append(named or " or ".join(_WEIGHTS))
        if missing:
            raise ModelLoadError(f"{source!r} is not a BAGEL checkpoint folder: it lacks {missing}")
        if len(weights) > 1:
            raise ModelLoadError(
                f"{source!r} holds both {weights}: say which weights to load with load(..., weights=NAME)"
            )
        if options.dtype == "float16":
            raise ModelLoadError(
                "BAGEL runs its attention in bfloat16; use --dtype bfloat16 (auto) or float32"
            )
        import transformers

        if int(transformers.__version__.split(".")[0]) >= 5:  # BAGEL's code breaks on 5.x
            raise ModelLoadError(
                f"BAGEL's upstream code pins transformers 4.49; this environment has "
                f"{transformers.__version__} (run entprobe in BAGEL's own environment)"
            )
        found = import_upstream(cls.upstream, options.upstream_src)
        m = found["modules"]
        bagel, navit = m["modeling.bagel"], m["modeling.bagel.qwen2_navit"]
        from accelerate import init_empty_weights
        from safetensors.torch import load_file

        llm = bagel.Qwen2Config.from_json_file(str(folder / "llm_config.json"))
        llm.qk_norm, llm.tie_word_embeddings, llm.layer_module = True, False, "Qwen2MoTDecoderLayer"
        vit = bagel.SiglipVisionConfig.from_json_file(str(folder / "vit_config.json"))
        vit.rope, vit.num_hidden_layers = False, vit.num_hidden_layers - 1
        vae, vae_config = m["modeling.autoencoder"].load_ae(local_path=str(folder / "ae.safetensors"))
        config = bagel.BagelConfig(
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
        with init_empty_weights():
            model = bagel.Bagel(bagel.Qwen2ForCausalLM(llm), bagel.SiglipVisionModel(vit), config)
            model.vit_model.vision_model.embeddings.convert_conv2d_to_linear(vit, meta=True)
        torch_dtype = torch.float32 if options.dtype == "float32" else torch.bfloat16
        state = {
            k: v.to(torch_dtype) if v.is_floating_point() else v
            for k, v in load_file(str(folder / weights[0]), device=str(options.device)).items()
        }
        absent, _ = model.load_state_dict(state, strict=False, assign=True)
        if absent:
            raise ModelLoadError(f"{folder / weights[0]} lacks {len(absent)} weights, e.g. {absent[:3]}")
        tokenizer, token_ids, _ = m["data.data_utils"].add_special_tokens(
            m["modeling.qwen2"].Qwen2Tokenizer.from_pretrained(str(folder))
        )
        transform = str(options.extras.get("image_transform", "inferencer"))
        if transform not in _IMAGE_TRANSFORMS:
            raise ProbeInputError(
                f"image_transform must be one of {sorted(_IMAGE_TRANSFORMS)}; got {transform!r}"
            )
        up = {"NaiveCache": navit.NaiveCache, "Inferencer": m["inferencer"].InterleaveInferencer}
        return cls(
            model=model.to(options.device).eval(),
            processor=tokenizer,
            source=str(source),
            up=up,
            vae=vae.to(options.device).eval(),
            token_ids=token_ids,
            image_transform=transform,
            extra_identity={
                "upstream": found["identity"],
                "experts": "und: prompt and markers; gen: latents",
                "image_transform": transform,
                # only when not BAGEL-7B-MoT's own file, so its run ids hold
                **({} if weights[0] == "ema.safetensors" else {"weights": weights[0]}),
            },
        )

    # --- packed contexts ------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        return len(self.processor.encode(text))

    def _context(self) -> _Context:
        return _Context(self.up["NaiveCache"](self.model.config.llm_config.num_hidden_layers))

    def _on(self, inputs: dict[str, Any]) -> dict[str, Any]:
        return {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}

    @contextmanager
    def _running(self):
        with torch.no_grad(), torch.autocast(self.device.type, dtype=torch.bfloat16):
            yield

    def _add_text(
        self, ctx: _Context, text: str | None = None, ids: torch.Tensor | None = None, generated: bool = False
    ) -> None:
        """One causal text segment: upstream's ``<|im_start|> text <|im_end|>``, or the
        given ``ids`` as they are (a generated response, teacher-forced)."""
        if ids is None:
            inputs, _, _ = self.model.prepare_prompts(
                curr_kvlens=[ctx.kv_len],
                curr_rope=[ctx.rope],
                prompts=[text],
                tokenizer=self.processor,
                new_token_ids=self.token_ids,
            )
            ids = inputs["packed_text_ids"]
        n, kv, at = len(ids), ctx.kv_len, ctx.rope
        inputs = {
            "packed_text_ids": ids.long(),
            "packed_text_position_ids": torch.arange(at, at + n),
            "text_token_lens": torch.tensor([n], dtype=torch.int),
            "packed_text_indexes": torch.arange(kv, kv + n),
            "packed_key_value_indexes": torch.arange(kv),
            "key_values_lens": torch.tensor([kv], dtype=torch.int),
        }
        self.model.forward_cache_update_text(ctx.cache, **self._on(inputs))
        ctx.kv_len, ctx.rope = kv + n, at + n
        inner = Role.GENERATED_TEXT if generated else Role.TEXT
        ctx.roles += (
            [Role.SPECIAL] + [inner] * (n - 1 if generated else n - 2) + ([] if generated else [Role.SPECIAL])
        )

    def _add_image(self, ctx: _Context, image: Image.Image) -> None:
        """One ViT segment, ``<|vision_start|> patches <|vision_end|>`` at one RoPE position."""
        inputs, kv, rope = self.model.prepare_vit_images(
            curr_kvlens=[ctx.kv_len],
            curr_rope=[ctx.rope],
            images=[_image_rgb(image)],
            transforms=_IMAGE_TRANSFORMS[self.image_transform],
            new_token_ids=self.token_ids,
        )
        self.model.forward_cache_update_vit(ctx.cache, **self._on(inputs))
        ctx.kv_len, ctx.rope = kv[0], rope[0]
        ctx.roles += [Role.SPECIAL] + [Role.IMAGE] * int(inputs["vit_token_seqlens"][0]) + [Role.SPECIAL]

    def _encoded(self, rec: Any, calls: range, roles: list[Role], ids: Any = None) -> Encoded:
        states = torch.cat([rec.states(i)[:, 0] for i in calls], dim=-2)
        return Encoded(states, list(roles), ids, experts=["und"] * len(roles))

    # --- prompt level -------------------------------------------------------------
    def encode_text(self, text: str) -> Encoded:
        ctx = self._context()
        with self._running(), capture(self.model, self.layers_path, input_name=self.layers_input) as rec:
            self._add_text(ctx, text)
        return self._encoded(rec, range(1), ctx.roles)

    def encode_image(self, image: Image.Image, question: str = "") -> Encoded:
        """The image segment, then the question's text segment (as upstream's chat)."""
        ctx = self._context()
        with self._running(), capture(self.model, self.layers_path, input_name=self.layers_input) as rec:
            self._add_image(ctx, image)
            if question.strip():
                self._add_text(ctx, question)
        return self._encoded(rec, range(rec.n_calls), ctx.roles)

    # --- text generation: BAGEL's own loop ----------------------------------------
    def text_generation(self, request: Request, keep_generation_states: bool = False) -> Generation:
        text, image, settings = request.text, request.image, request.settings
        self.require("text-gen")
        if settings.top_p < 1.0:
            raise UnsupportedError("BAGEL's decoding loop has no nucleus sampling; leave --top-p at 1")
        ctx = self._context()
        with (
            self._running(),
            capture(self.model, self.layers_path, input_name=self.layers_input) as rec,
            seeded(settings.seed, self.device),
        ):
            if image is not None:
                self._add_image(ctx, image)
            self._add_text(ctx, text)
            n_prompt, n_prompt_calls = len(ctx.roles), rec.n_calls
            start = self.model.prepare_start_tokens([ctx.kv_len], [ctx.rope], self.token_ids)
            fed = self.model.generate_text(
                past_key_values=copy.deepcopy(ctx.cache),
                max_length=settings.max_new_tokens + 1,
                do_sample=settings.do_sample,
                temperature=settings.temperature,
                end_token_id=self.token_ids["eos_token_id"],
                **self._on(start),
            )[:, 0].cpu()
            n_generation = rec.n_calls
            self._add_text(ctx, ids=fed, generated=True)  # the loop's inputs: <|im_start|> t1 ... tm
        calls = [*range(n_prompt_calls), rec.n_calls - 1]
        kept = None
        if keep_generation_states:  # the step that fed t_i holds t_i's states; skip <|im_start|>'s
            kept = (
                torch.cat([rec.states(i)[:, 0] for i in range(n_prompt_calls + 1, n_generation)], dim=-2)
                if n_generation > n_prompt_calls + 1
                else None
            )
        return Generation(
            self._encoded(rec, calls, ctx.roles),
            n_prompt,
            fed[1:],
            text=self.processor.decode(fed[1:]),
            generation_states=kept,
            model_calls={"generation": n_generation, "teacher-forced": 1},
        )

    # --- image generation: upstream's flow loop, tagged per forward -----------------
    def n_image_steps(self, settings: GenerationSettings) -> int:
        # generate_image steps through all points of its schedule but the last (t = 0)
        return settings.image_steps or self.num_timesteps - 1

    def image_gen_prompt(self, text: str, settings: GenerationSettings) -> dict[str, _Context]:
        """The three contexts upstream's inferencer builds for a text prompt."""
        cond, text_cfg, image_cfg = self._context(), self._context(), self._context()
        with self._running():
            with self.llm_call(phase="prompt", branches={"cond": slice(0, 1)}):
                self._add_text(cond, text)
            with self.llm_call(phase="prompt", branches={"image-cfg": slice(0, 1)}):
                self._add_text(image_cfg, text)
        return {"cond": cond, "text-cfg": text_cfg, "image-cfg": image_cfg}

    def denoise(self, prompt: dict[str, _Context], settings: GenerationSettings) -> StepwiseOutput:
        cond = prompt["cond"]
        shape = (settings.image_size,) * 2 if settings.image_size else tuple(self.image_shape)
        if any(side % 16 for side in shape):
            raise ProbeInputError(f"BAGEL images have sides in multiples of 16 pixels; got {shape}")
        with seeded(settings.seed, self.device):
            latent_in = self.model.prepare_vae_latent(
                curr_kvlens=[cond.kv_len],
                curr_rope=[cond.rope],
                image_sizes=[shape],
                new_token_ids=self.token_ids,
            )
        args = {
            **self._on(latent_in),
            "past_key_values": cond.cache,
            "num_timesteps": self.n_image_steps(settings) + 1,
            "timestep_shift": self.timestep_shift,
            "cfg_interval": self.cfg_interval,
            "cfg_text_scale": settings.guidance_scale,
            "cfg_img_scale": self.cfg_img_scale,
        }
        for name, branch in (("text", "text-cfg"), ("img", "image-cfg")):
            ctx = prompt[branch]
            args[f"cfg_{name}_past_key_values"] = ctx.cache
            extra = self.model.prepare_vae_latent_cfg(
                curr_kvlens=[ctx.kv_len], curr_rope=[ctx.rope], image_sizes=[shape]
            )
            args.update({f"cfg_{name}_{k[4:]}": v for k, v in self._on(extra).items()})
        branch_of = {id(prompt[b].cache): b for b in prompt}
        positions = latent_in["packed_vae_token_indexes"].tolist()
        step = [0]
        steps = itertools.count(1)

        def tag_of(kwargs: dict[str, Any]) -> dict[str, Any] | None:
            branch = branch_of.get(id(kwargs.get("past_key_values")))
            return (
                None
                if branch is None
                else {"step": step[0], "branches": {branch: slice(0, 1)}, "positions": positions}
            )

        # The time embedder runs once per step, before that step's forwards.
        hook = self.model.time_embedder.register_forward_pre_hook(lambda *_: step.__setitem__(0, next(steps)))
        try:
            with self._running(), self.llm_calls(tag_of):
                latent = self.model.generate_image(**args)[0]
        finally:
            hook.remove()
        decoder = self.up["Inferencer"](self.model, self.vae, self.processor, None, None, self.token_ids)
        with torch.no_grad():
            image = decoder.decode_image(latent.float(), shape)
        return StepwiseOutput(torch.empty(0, dtype=torch.long), image=image, clean=(latent_in, latent))

    def teacher_force(self, prompt: dict[str, _Context], out: StepwiseOutput) -> tuple[list[Role], None]:
        """One generation-mode forward of the clean latent at t = 0, conditional context only."""
        latent_in, latent = out.clean
        inputs = {k: v for k, v in self._on(latent_in).items() if k != "packed_init_noises"}
        with self._running(), self.llm_call(phase="teacher-forced", branches={"cond": slice(0, 1)}):
            self.model._forward_flow(
                x_t=latent,
                timestep=torch.zeros(len(latent), device=self.device),
                past_key_values=prompt["cond"].cache,
                cfg_text_scale=1.0,
                cfg_img_scale=1.0,
                **inputs,
            )
        n = len(latent)
        return prompt["cond"].roles + [Role.SPECIAL] + [Role.GENERATED_IMAGE] * n + [Role.SPECIAL], None

    def image_generation(self, request: Request, keep_generation_states: bool = False) -> Generation:
        gen = super().image_generation(request, keep_generation_states)
        gen.encoded.experts = ["gen" if r is Role.GENERATED_IMAGE else "und" for r in gen.encoded.roles]
        return gen


def _image_rgb(image: Image.Image) -> Image.Image:
    """RGB as upstream's ``pil_img2rgb``: a transparent image over white, others converted."""
    from PIL import Image as PILImage

    if image.mode == "RGBA" or image.info.get("transparency") is not None:
        rgba = image.convert("RGBA")
        out = PILImage.new("RGB", rgba.size, (255, 255, 255))
        out.paste(rgba, mask=rgba.getchannel("A"))
        return out
    return image.convert("RGB")


def _resized(
    image: Image.Image, max_size: int, min_size: int, stride: int, max_pixels: int = 14 * 14 * 9 * 1024
) -> Image.Image:
    """Upstream's ``MaxLongEdgeMinShortEdgeResize`` without torchvision (on a PIL image
    torchvision's bicubic resize is PIL's): long edge at most ``max_size``, short edge
    at least ``min_size``, both multiples of ``stride``."""
    from PIL import Image as PILImage

    def fit(w: float, h: float, scale: float) -> tuple[int, int]:
        return tuple(max(stride, int(round(round(v * scale) / stride) * stride)) for v in (w, h))  # type: ignore[return-value]

    w, h = image.size
    w, h = fit(w, h, max(min(max_size / max(w, h), 1.0), min_size / min(w, h)))
    if w * h > max_pixels:  # upstream scales both sides by the area ratio
        w, h = fit(w, h, max_pixels / (w * h))
    if max(w, h) > max_size:
        w, h = fit(w, h, max_size / max(w, h))
    return image.resize((w, h), PILImage.BICUBIC)


def _pixels(image: Image.Image) -> torch.Tensor:
    """``ToTensor`` then ``Normalize(0.5, 0.5)``: ``(3, H, W)`` in [-1, 1]."""
    import numpy as np

    return (torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1) - 0.5) / 0.5


#: The image-prompt transforms (``load_extras["image_transform"]``), each what an upstream
#: entry point applies before ``prepare_vit_images``.
_IMAGE_TRANSFORMS = {
    # InterleaveInferencer: the VAE transform's resize first, then the ViT transform.
    "inferencer": lambda im: _pixels(_resized(_resized(im, 1024, 512, 16), 980, 224, 14)),
    # eval/vlm (Bagel.chat): the training transform of data/configs/example.yaml.
    "eval": lambda im: _pixels(_resized(im, 980, 378, 14, max_pixels=2_007_040)),
}
