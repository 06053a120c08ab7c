"""``janusflow``: DeepSeek JanusFlow (``janus.janusflow`` of deepseek-ai/Janus) over the user's code.

Loading as the upstream README: ``VLChatProcessor.from_pretrained`` and
``MultiModalityCausalLM.from_pretrained`` on the release folder
(``deepseek-ai/JanusFlow-1.3B``). Generated latents are decoded with the SDXL VAE the
README loads separately: a diffusers ``AutoencoderKL`` in ``<model>/vae`` or
``stabilityai/sdxl-vae`` in the local Hugging Face cache; without one the image is
not decoded (probing does not need it).

Decoder layers: ``language_model.model.layers`` (stock Llama). Prompts use the
``deepseek`` SFT template (``User: ...\\n\\nAssistant:``, the processor's system prompt
for understanding, none for generation); the user's text is TEXT, the rest SPECIAL.
Image prompts: the processor expands ``<image_placeholder>`` into
``<begin_of_image>`` + ``num_image_tokens`` placeholders + ``<end_of_image>``;
``prepare_inputs_embeds`` puts the SigLIP features at the placeholders (IMAGE) and a
learned embedding at ``<begin_of_image>`` (SPECIAL). Text generation: HF ``generate``.

Image generation (rectified flow): the loop lives only in the upstream README/demo,
so the adapter runs it around the upstream modules: the prompt (ending in the
generation tag, which is replaced by the timestep embedding) as [cond; uncond] rows
(uncond: all but BOS padded and masked), ``image_steps`` Euler steps (30) from
``t = 0`` (noise) towards ``t = 1`` (data), each one full LLM forward over
``[prompt; t_emb; z_emb]`` (the demo's cache truncation is a no-op: it iterates an
empty list), velocity ``w * v_cond - (w - 1) * v_uncond``. Step ``k``'s response
positions are the latent tokens. Default response: one teacher-forced forward of the
clean latent at the data end with its timestep (``t = 1000``), conditional row only:
prompt, ``t_emb`` (SPECIAL), latent tokens (GENERATED_IMAGE).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..capture import Role
from ..errors import ModelLoadError, ProbeInputError
from ._embeds import EmbedPrompt, EmbedsFamily, label_text
from ._hf import _SENTINEL, resolve_dtype, seeded
from ._multimodal import to_pil
from ._stepwise import StepwiseImageAdapter, StepwiseOutput
from ._upstream import Upstream, import_upstream
from .base import CAPABILITIES, GenerationSettings
from .requests import LoadOptions

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

__all__ = ["JanusFlowAdapter"]

UPSTREAM = Upstream(
    family="janusflow",
    repo="deepseek-ai/Janus",
    checked=("1daa72fa4090 (2025-02-01)",),
    install="git clone https://github.com/deepseek-ai/Janus && pip install -e ./Janus diffusers",
    modules=("janus.janusflow.models",),
)
_SDXL_VAE_STRIDE = 8  # the README's 48 x 48 latent of a 384 px image


def _load_vae(source: str, device: str, dtype: torch.dtype) -> Any:
    from diffusers.models import AutoencoderKL

    local = Path(source) / "vae"
    for where, kw in ((str(local), {}), ("stabilityai/sdxl-vae", {"local_files_only": True})):
        if where == str(local) and not local.is_dir():
            continue
        try:
            return AutoencoderKL.from_pretrained(where, **kw).to(device=device, dtype=dtype).eval()
        except (OSError, ValueError):
            continue
    return None


@dataclass
class JanusFlowAdapter(EmbedsFamily, StepwiseImageAdapter):
    """JanusFlow; see the module docstring."""

    name = "janusflow"
    description = (
        "DeepSeek JanusFlow (deepseek-ai/Janus, janus.janusflow): text and image "
        "prompts, text generation, rectified-flow image generation"
    )
    # The release's config.json (MultiModalityConfig); the original-format Janus-Pro
    # shares the model_type but has gen_vision_config instead of these.
    model_types = ("multi_modality",)
    config_keys = ("vision_gen_enc_config", "vision_gen_dec_config")
    capabilities = frozenset(CAPABILITIES)
    layer_paths = ("language_model.model.layers",)
    upstream = UPSTREAM
    image_generator = "rectified flow"
    image_response = "teacher-forced pass of the clean latent at the data end (t = 1000)"
    image_options = frozenset({"image_steps"})
    load_extras = {
        "cast_after_load": "True (default): load, then cast the whole model to --dtype, as the authors' "
        "README does (rotary buffers too); False: pass --dtype to from_pretrained (buffers stay float32)"
    }
    vae: Any = None
    image_steps: int = 30

    @classmethod
    def load_from(cls, source: str, options: LoadOptions) -> JanusFlowAdapter:
        up = import_upstream(UPSTREAM, options.upstream_src)
        mods = up["modules"]["janus.janusflow.models"]
        want = resolve_dtype(options.dtype)
        # The authors' README and demo load, then cast the whole model (`.to(bfloat16)`),
        # rotary `inv_freq` included: the default. `cast_after_load=False` passes the
        # dtype to from_pretrained instead, which keeps non-persistent buffers in float32
        # (up to 2e-3 bits apart from layer 1 on in bfloat16).
        after = bool(options.extras.get("cast_after_load", True)) and want != "auto"
        try:
            processor = mods.VLChatProcessor.from_pretrained(str(source))
            model = mods.MultiModalityCausalLM.from_pretrained(
                str(source), torch_dtype="auto" if after else want
            )
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load JanusFlow from {source!r}: {exc}") from exc
        model.to(device=options.device, **({"dtype": want} if after else {})).eval()
        vae = _load_vae(str(source), options.device, model.dtype)
        extra = {"upstream": up["identity"], "vae": None if vae is None else str(vae.config._name_or_path)}
        if want != "auto":  # how the reduced precision came about shapes the states
            extra["dtype_path"] = "cast after load" if after else "torch_dtype at load"
        return cls(model=model, processor=processor, source=str(source), extra_identity=extra, vae=vae)

    @property
    def tokenizer(self) -> Any:
        return self.processor.tokenizer

    @property
    def max_context(self) -> int | None:
        return getattr(self.model.language_model.config, "max_position_embeddings", None)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    # --- prompts ----------------------------------------------------------------------
    def _labelled(self, content: str, system: str, tail: str = "") -> tuple[list[int], list[Role]]:
        def render(text: str) -> str:
            conv = [{"role": "User", "content": text}, {"role": "Assistant", "content": ""}]
            return (
                self.processor.apply_sft_template_for_multi_turn_prompts(
                    conv, sft_format=self.processor.sft_format, system_prompt=system
                )
                + tail
            )

        content = content.strip()
        prefix, suffix = render(_SENTINEL).split(_SENTINEL)
        if render(content) != prefix + content + suffix:
            raise ProbeInputError("janusflow: cannot locate the prompt text in the SFT template")
        ids, roles = label_text(
            self.tokenizer,
            prefix + content + suffix,
            (len(prefix), len(prefix) + len(content)),
            add_special_tokens=True,
        )
        if ids != self.tokenizer.encode(prefix + content + suffix):
            raise RuntimeError("janusflow: the labelled prompt differs from the processor's tokenisation")
        return ids, roles

    def _embed(self, ids: list[int], roles: list[Role]) -> EmbedPrompt:
        t = torch.tensor(ids, device=self.device)
        return EmbedPrompt(self.model.language_model.get_input_embeddings()(t)[None], roles, t.cpu())

    def image_prompt(self, image: Image.Image, question: str, settings: Any = None) -> EmbedPrompt:
        proc = self.processor
        tag = f"{proc.image_tag}\n"
        ids, roles = self._labelled(tag + question.strip(), proc.system_prompt)
        at = ids.index(proc.image_id)
        n = proc.num_image_tokens
        ids = ids[:at] + [proc.image_start_id] + [proc.image_id] * n + [proc.image_end_id] + ids[at + 1 :]
        roles = roles[:at] + [Role.SPECIAL] + [Role.IMAGE] * n + [Role.SPECIAL] + roles[at + 1 :]
        conv = [{"role": "User", "content": tag + question.strip()}, {"role": "Assistant", "content": ""}]
        inputs = proc(conversations=conv, images=[image.convert("RGB")], force_batchify=True)
        if inputs.input_ids[0].tolist() != ids:
            raise RuntimeError("janusflow: the labelled image prompt differs from the processor's")
        inputs = inputs.to(self.device, dtype=self.model.dtype)
        with torch.no_grad():
            embeds = self.model.prepare_inputs_embeds(
                input_ids=inputs.input_ids,
                pixel_values=inputs.pixel_values,
                images_seq_mask=inputs.images_seq_mask,
                images_emb_mask=inputs.images_emb_mask,
            )
        return EmbedPrompt(embeds, roles, torch.tensor(ids))

    # --- prompts (the prompt level and text generation: EmbedsFamily) ------------------
    @property
    def causal_lm(self) -> Any:
        return self.model.language_model

    def text_prompt(self, text: str) -> EmbedPrompt:
        return self._embed(*self._labelled(text, self.processor.system_prompt))

    # --- rectified-flow image generation ----------------------------------------------
    def n_image_steps(self, settings: GenerationSettings) -> int:
        return settings.image_steps or self.image_steps

    def image_gen_prompt(self, text: str, settings: GenerationSettings) -> dict[str, Any]:
        ids, roles = self._labelled(text, "", tail=self.processor.image_gen_tag)
        tokens = torch.tensor([ids, ids], device=self.device)
        tokens[1, 1:] = self.processor.pad_id  # the unconditional row keeps BOS only
        embeds = self.model.language_model.get_input_embeddings()(tokens)[:, :-1]  # tag -> t_emb
        return {"embeds": embeds, "roles": roles[:-1], "cfg": float(settings.guidance_scale or 1.0)}

    def _latent_tokens(self, z: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list]:
        z_emb, t_emb, hs = self.model.vision_gen_enc_model(z, t)
        z_emb = self.model.vision_gen_enc_aligner(z_emb.flatten(2).permute(0, 2, 1))
        return z_emb, t_emb, hs

    def denoise(self, prompt: dict[str, Any], settings: GenerationSettings) -> StepwiseOutput:
        m, embeds, cfg = self.model, prompt["embeds"], prompt["cfg"]
        side = self.processor.image_processor.image_size // self._vae_stride
        channels = m.vision_gen_enc_model.in_conv.in_channels
        n_steps = self.n_image_steps(settings)
        n_prompt, dt = embeds.shape[1], 1.0 / n_steps
        with seeded(settings.seed, self.device):
            z = torch.randn((1, channels, side, side), dtype=m.dtype).to(self.device)
            for step in range(n_steps):
                t = torch.full((2,), step / n_steps * 1000.0, dtype=m.dtype, device=self.device)
                z_emb, t_emb, hs = self._latent_tokens(torch.cat([z, z]), t)
                n_img = z_emb.shape[1]
                mask = torch.ones((2, n_prompt + 1 + n_img), dtype=torch.int, device=self.device)
                mask[1, 1:n_prompt] = 0
                rows = {"cond": slice(0, 1), "uncond": slice(1, 2)}
                with self.llm_call(step=step + 1, branches=rows, positions=slice(n_prompt + 1, None)):
                    hidden = m.language_model.model(
                        inputs_embeds=torch.cat([embeds, t_emb[:, None], z_emb], 1),
                        attention_mask=mask,
                        use_cache=False,
                    ).last_hidden_state
                h = m.vision_gen_dec_aligner(m.vision_gen_dec_aligner_norm(hidden[:, -n_img:]))
                g = int(n_img**0.5)
                v = m.vision_gen_dec_model(h.reshape(2, g, g, -1).permute(0, 3, 1, 2), hs, t_emb)
                v_cond, v_uncond = v.chunk(2)
                z = z + dt * (cfg * v_cond - (cfg - 1.0) * v_uncond)
        image = None
        if self.vae is not None:
            pixels = self.vae.decode(z / self.vae.config.scaling_factor).sample[0].clamp(-1, 1)
            image = to_pil(pixels.permute(1, 2, 0))
        return StepwiseOutput(response_ids=torch.empty(0, dtype=torch.long), image=image, clean=z)

    @property
    def _vae_stride(self) -> int:
        if self.vae is None:
            return _SDXL_VAE_STRIDE
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def teacher_force(
        self, prompt: dict[str, Any], out: StepwiseOutput
    ) -> tuple[list[Role], torch.Tensor | None]:
        t = torch.full((1,), 1000.0, dtype=self.model.dtype, device=self.device)  # the data end
        z_emb, t_emb, _ = self._latent_tokens(out.clean, t)
        embeds = torch.cat([prompt["embeds"][:1], t_emb[:, None], z_emb], 1)
        with self.llm_call(phase="teacher-forced", branches={"cond": slice(0, 1)}):
            self.model.language_model.model(
                inputs_embeds=embeds,
                use_cache=False,
                attention_mask=torch.ones(embeds.shape[:2], device=self.device),
            )
        return prompt["roles"] + [Role.SPECIAL] + [Role.GENERATED_IMAGE] * z_emb.shape[1], None
