"""Show-o (showlab/Show-o, root folder): Phi-1.5 LLM, MAGVITv2 VQ tokens, MaskGIT.

Loads the release layout: the model folder (``config.json`` + ``pytorch_model.bin``,
``Showo.from_pretrained``) whose ``llm_model_path`` names the Phi folder (config and
tokenizer; Phi's weights are not read: ``load_from_showo=True``), and the VQ model
(``showlab/magvitv2``, or ``$ENTPROBE_SHOWO_VQ``). Sequences, as the upstream builds them:

- image generation: ``pad… <|t2i|> <bos> text <eos> <|soi|> VQ×n <|eoi|>`` (text
  left-padded to 128), omni-attention mask, MaskGIT with ``[cond; uncond]`` rows
  (uncond: empty text); response = teacher-forced pass of the final VQ ids;
- image prompt: ``<|mmu|> <|soi|> VQ <|eoi|> <|sot|> USER: \\n q ASSISTANT:``;
- text prompt: ``<|sot|> USER: \\n q ASSISTANT:`` (causal), text-gen by the
  upstream's own ``mmu_generate`` loop (greedy: ``top_k=1``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..capture import Role
from ..errors import ModelLoadError, UnsupportedError
from ._hf import resolve_dtype, seeded
from ._multimodal import to_pil
from ._stepwise import StepwiseImageAdapter, StepwiseOutput
from ._upstream import Upstream, import_upstream
from .base import Generation, GenerationSettings
from .requests import LoadOptions, Request

_SPECIALS = (
    "<|soi|>",
    "<|eoi|>",
    "<|sov|>",
    "<|eov|>",
    "<|t2i|>",
    "<|mmu|>",
    "<|t2v|>",
    "<|v2v|>",
    "<|lvg|>",
)
_MAX_TEXT = 128  # dataset.preprocessing.max_seq_length of every shipped config
_STEPS = 18  # t2i_generate's default (MaskGIT's)
_MODULES = (
    "models.modeling_showo",
    "models.modeling_magvitv2",
    "models.sampling",
    "training.prompting_utils",
)


@dataclass
class ShowoAdapter(StepwiseImageAdapter):
    name = "showo"
    description = (
        "Show-o 1.3B (showlab/show-o, show-o-512x512), upstream code; "
        "VQ image prompts, MaskGIT image generation"
    )
    capabilities = frozenset({"text-prompt", "image-prompt", "text-gen", "image-gen"})
    layer_paths = ("showo.model.layers",)
    upstream = Upstream(
        family="showo",
        repo="showlab/Show-o",
        checked=("45a5a2de01d1 (2026-01-09)",),
        install="git clone https://github.com/showlab/Show-o && pip install -r Show-o/requirements.txt",
        modules=_MODULES,
        requires={"transformers": "4.41"},
    )
    image_generator = "MaskGIT"
    image_response = "teacher-forced pass of the final VQ ids (conditional row)"
    image_options = frozenset({"image_steps"})

    model: torch.nn.Module = None
    processor: Any = None  # the upstream's UniversalPrompting
    vq: torch.nn.Module = None
    up: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load_from(cls, source: str, options: LoadOptions) -> ShowoAdapter:
        _refuse_clip_vit(Path(source) / "config.json")  # before any weight is read
        found = import_upstream(cls.upstream, options.upstream_src)
        m = found["modules"]
        from transformers import AutoTokenizer

        vq_source = os.environ.get("ENTPROBE_SHOWO_VQ", "showlab/magvitv2")
        torch_dtype = resolve_dtype(options.dtype)
        torch_dtype = torch.float32 if torch_dtype == "auto" else torch_dtype
        try:
            model = m["models.modeling_showo"].Showo.from_pretrained(
                str(source), load_from_showo=True, low_cpu_mem_usage=False
            )
            vq = m["models.modeling_magvitv2"].MAGVITv2.from_pretrained(vq_source, low_cpu_mem_usage=False)
            tok = AutoTokenizer.from_pretrained(model.config.llm_model_path, padding_side="left")
        except (OSError, ValueError) as exc:
            raise ModelLoadError(
                f"cannot load Show-o from {source!r} (VQ model {vq_source!r}, "
                f"set $ENTPROBE_SHOWO_VQ for a local one): {exc}"
            ) from exc
        _check_rotary(model)
        if getattr(model.config, "w_clip_vit", False):  # a hub id: known once its config is read
            _refuse_clip_vit(None)
        if len(tok) != model.config.llm_vocab_size:
            raise ModelLoadError(
                f"the tokenizer of {model.config.llm_model_path!r} has {len(tok)} tokens; "
                f"Show-o's config expects llm_vocab_size={model.config.llm_vocab_size}"
            )
        prompting = m["training.prompting_utils"].UniversalPrompting(
            tok, max_text_len=_MAX_TEXT, special_tokens=_SPECIALS, ignore_id=-100, cond_dropout_prob=0.0
        )
        model, vq = model.to(options.device, torch_dtype).eval(), vq.to(options.device, torch_dtype).eval()
        return cls(
            model=model,
            processor=prompting,
            vq=vq,
            up=m,
            source=str(source),
            extra_identity={
                "upstream": found["identity"],
                "vq_source": vq_source,
                "llm_model_path": model.config.llm_model_path,
                "max_text_len": _MAX_TEXT,
                "mask_schedule": "cosine",
            },
        )

    # --- prompts ------------------------------------------------------------------
    @property
    def tok(self) -> Any:
        return self.processor.text_tokenizer

    def _sp(self, name: str) -> int:
        return int(self.processor.sptids_dict[name])

    @property
    def _offset(self) -> int:  # VQ code 0 in the LLM vocabulary
        return len(self.tok)

    @property
    def n_vq(self) -> int:
        return int(self.model.config.num_vq_tokens)

    @property
    def max_context(self) -> int | None:
        return int(self.model.showo.config.max_position_embeddings)

    def count_tokens(self, text: str) -> int:
        return len(self.tok(text)["input_ids"])

    def _chat(self, question: str) -> tuple[list[int], list[Role]]:
        """``USER: \\n q ASSISTANT:`` tokenized as the upstream does, question tokens TEXT."""
        head = "USER: \n"
        enc = self.tok([head + question + " ASSISTANT:"], return_offsets_mapping=True)
        t0, t1 = len(head), len(head) + len(question)
        roles = [Role.TEXT if s < t1 and e > t0 else Role.SPECIAL for s, e in enc["offset_mapping"][0]]
        return list(enc["input_ids"][0]), roles

    def _text_prompt(self, text: str) -> tuple[torch.Tensor, list[Role], torch.Tensor]:
        ids, roles = self._chat(text)
        ids = torch.tensor([[self._sp("<|sot|>"), *ids]], device=self.device)
        return ids, [Role.SPECIAL, *roles], self._causal(ids.shape[1])

    def _causal(self, n: int) -> torch.Tensor:
        """An additive causal mask in the upstream's form (0 or int64 min), ``(1, 1, n, n)``."""
        keep = torch.ones(n, n, dtype=torch.bool, device=self.device).tril()
        return torch.zeros(1, 1, n, n, device=self.device).masked_fill_(~keep, torch.iinfo(torch.int64).min)

    def _image_prompt(self, image: Any, question: str) -> tuple[torch.Tensor, list[Role], torch.Tensor]:
        codes = self.vq.get_code(self._pixels(image)) + self._offset
        ids, roles = self._chat(question)
        ids = torch.cat(
            [
                torch.tensor([[self._sp("<|mmu|>"), self._sp("<|soi|>")]], device=self.device),
                codes,
                torch.tensor([[self._sp("<|eoi|>"), self._sp("<|sot|>"), *ids]], device=self.device),
            ],
            1,
        )
        mask = self.up["training.prompting_utils"].create_attention_mask_for_mmu(
            ids, eoi_id=self._sp("<|eoi|>")
        )
        roles = [Role.SPECIAL] * 2 + [Role.IMAGE] * codes.shape[1] + [Role.SPECIAL] * 2 + roles
        return ids.long(), roles, mask

    def _pixels(self, image: Any) -> torch.Tensor:
        """The upstream's ``image_transform`` without torchvision: bicubic resize of the
        short side, centre crop, [-1, 1]; ``(1, 3, res, res)``."""
        import numpy as np
        from PIL import Image as PILImage

        res = 16 * int(round(self.n_vq**0.5))
        w, h = image.size
        size = (res, int(res * h / w)) if w <= h else (int(res * w / h), res)
        image = image.convert("RGB").resize(size, PILImage.BICUBIC)
        left, top = int(round((size[0] - res) / 2.0)), int(round((size[1] - res) / 2.0))
        image = image.crop((left, top, left + res, top + res))
        x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
        return ((x - 0.5) / 0.5)[None].to(self.device, next(self.vq.parameters()).dtype)

    # --- prompt and text levels -----------------------------------------------------
    def encode_text(self, text: str):
        ids, roles, mask = self._text_prompt(text)
        return self.forward_encoded(lambda: self.model(ids, attention_mask=mask), roles, ids)

    def encode_image(self, image: Any, question: str = ""):
        with torch.no_grad():
            ids, roles, mask = self._image_prompt(image, question)
        return self.forward_encoded(lambda: self.model(ids, attention_mask=mask), roles, ids)

    def text_generation(self, request: Request, keep_generation_states: bool = False) -> Generation:
        text, image, settings = request.text, request.image, request.settings
        if settings.do_sample and settings.top_p < 1.0:
            raise UnsupportedError("Show-o's decoding loop (mmu_generate) has no nucleus sampling (top_p)")
        with torch.no_grad():
            ids, roles, mask = (
                self._image_prompt(image, text) if image is not None else self._text_prompt(text)
            )
            with seeded(settings.seed, self.device):  # mmu_generate samples from torch's global RNG
                out = self.model.mmu_generate(
                    ids,
                    attention_mask=mask,
                    max_new_tokens=settings.max_new_tokens,
                    temperature=settings.temperature if settings.do_sample else 1.0,
                    top_k=None if settings.do_sample else 1,
                    eot_token=self.tok.eos_token_id,
                )
        new = [int(t) for t in out if int(t) != self.tok.eos_token_id]
        full = torch.cat([ids, torch.tensor([new], dtype=ids.dtype, device=ids.device)], 1)
        full_mask = (
            self.up["training.prompting_utils"].create_attention_mask_for_mmu(
                full, eoi_id=self._sp("<|eoi|>")
            )
            if image is not None
            else self._causal(full.shape[1])
        )
        enc = self.forward_encoded(
            lambda: self.model(full, attention_mask=full_mask), roles + [Role.GENERATED_TEXT] * len(new), full
        )
        return Generation(
            encoded=enc,
            n_prompt_tokens=ids.shape[1],
            response_ids=torch.tensor(new),
            text=self.tok.decode(new, skip_special_tokens=True),
            model_calls={"generation": len(out), "teacher-forced": 1},
        )

    # --- image generation (the step-wise hooks) --------------------------------------
    def n_image_steps(self, settings: GenerationSettings) -> int:
        return settings.image_steps or _STEPS

    def image_gen_prompt(self, text: str, settings: GenerationSettings) -> dict[str, Any]:
        masks = torch.full((1, self.n_vq), int(self.model.config.mask_token_id), device=self.device)
        cond = self.processor(([text], masks), "t2i_gen")[0]
        uncond = self.processor(([""], masks), "t2i_gen")[0]
        return {"cond": cond, "uncond": uncond, "guided": settings.guidance_scale > 0}

    def _mask(self, ids: torch.Tensor) -> torch.Tensor:
        return self.up["training.prompting_utils"].create_attention_mask_predict_next(
            ids,
            pad_id=self._sp("<|pad|>"),
            soi_id=self._sp("<|soi|>"),
            eoi_id=self._sp("<|eoi|>"),
            rm_pad_in_image=True,
        )

    def denoise(self, p: dict[str, Any], settings: GenerationSettings) -> StepwiseOutput:
        """MaskGIT as the upstream's ``t2i_generate`` (same sampling calls, same RNG
        order), with each LLM forward tagged."""
        sampling, n, mask_id = self.up["models.sampling"], self.n_vq, int(self.model.config.mask_token_id)
        gen = torch.Generator(device=self.device).manual_seed(settings.seed)
        ids = torch.cat([p["cond"], p["uncond"]]) if p["guided"] else p["cond"].clone()
        img, off, w = slice(-(n + 1), -1), self._offset, settings.guidance_scale
        attn = self._mask(ids)
        codes = torch.full((1, n), mask_id, device=self.device)
        temperature = settings.image_temperature
        rows = {"cond": slice(0, 1), "uncond": slice(1, 2)} if p["guided"] else {"cond": slice(0, 1)}
        pos = range(ids.shape[1] - n - 1, ids.shape[1] - 1)
        n_steps = self.n_image_steps(settings)
        for step in range(n_steps):
            if p["guided"]:
                ids[1:, _MAX_TEXT + 1 :] = ids[:1, _MAX_TEXT + 1 :]  # uncond shares the image part
            with self.llm_call(step=step + 1, branches=rows, positions=pos):
                logits = self.model(ids, attention_mask=attn)
            if p["guided"]:
                cond, uncond = logits.chunk(2)
                logits = (1 + w) * cond - w * uncond
            logits = logits[:1, img, off:-1]
            probs = logits.softmax(dim=-1)
            sampled = torch.multinomial(probs.reshape(-1, logits.size(-1)), 1, generator=gen)[:, 0].view(1, n)
            unknown = codes == mask_id
            sampled = torch.where(unknown, sampled, codes)
            ratio = (step + 1) / n_steps
            selected = torch.gather(probs, -1, sampled.long()[..., None]).squeeze(-1)
            selected = torch.where(unknown, selected, torch.finfo(selected.dtype).max)
            mask_len = (
                (n * sampling.cosine_schedule(torch.tensor(ratio))).floor().unsqueeze(0).to(self.device)
            )
            mask_len = torch.max(
                torch.tensor([1], device=self.device),
                torch.min(unknown.sum(dim=-1, keepdim=True) - 1, mask_len),
            )
            temperature = temperature * (1.0 - ratio)  # compounds across steps, as upstream
            masking = sampling.mask_by_random_topk(mask_len, selected, temperature, generator=gen)
            ids[:1, img] = torch.where(masking, mask_id, sampled + off)
            codes = torch.where(masking, mask_id, sampled)
        final = sampled[0].clamp(0, int(self.model.config.codebook_size) - 1)
        image = self.vq.decode_code(final[None])
        return StepwiseOutput(response_ids=final, image=to_pil(image[0].permute(1, 2, 0)))

    def teacher_force(self, p: dict[str, Any], out: StepwiseOutput) -> tuple[list[Role], torch.Tensor]:
        ids = p["cond"].clone()
        ids[0, -(self.n_vq + 1) : -1] = out.response_ids.to(ids.device) + self._offset
        with self.llm_call(phase="teacher-forced", branches={"cond": slice(0, 1)}):
            self.model(ids, attention_mask=self._mask(ids))
        row = ids[0].tolist()
        text = {self._sp("<|t2i|>"), self._sp("<|pad|>"), self.tok.bos_token_id, self.tok.eos_token_id}
        roles = [Role.SPECIAL if t in text else Role.TEXT for t in row[: -(self.n_vq + 2)]]
        return roles + [Role.SPECIAL] + [Role.GENERATED_IMAGE] * self.n_vq + [Role.SPECIAL], ids[0]


def _refuse_clip_vit(config: Path | None) -> None:
    """Refuse the CLIP-ViT variants (``showlab/show-o-w-clip-vit*``, ``w_clip_vit: true``)
    by name: their image prompts are CLIP-ViT features through an MLP projector, which
    this adapter does not build (it feeds MAGVIT-v2 VQ tokens, the variants without)."""
    if config is not None:
        try:
            clip = bool(json.loads(config.read_text(encoding="utf-8")).get("w_clip_vit", False))
        except (OSError, ValueError):
            return  # no local config (a hub id), or unreadable: checked after loading
        if not clip:
            return
    raise ModelLoadError(
        "this Show-o checkpoint is a CLIP-ViT variant (config w_clip_vit: true, e.g. "
        "showlab/show-o-w-clip-vit): its image prompts go through CLIP-ViT features and a "
        "projector, which the showo adapter does not build. Use showlab/show-o or "
        "showlab/show-o-512x512 (VQ image tokens). Nothing was loaded or written"
    )


def _check_rotary(model: torch.nn.Module) -> None:
    """Show-o's own Phi keeps its rotary tables in non-persistent buffers; a loader
    that skips them (transformers 5 through ``PhiForCausalLM.from_pretrained``) makes
    every state NaN without an error. Refuse that model."""
    import transformers

    for layer in model.showo.model.layers:
        rot = layer.self_attn.rotary_emb
        want = 1.0 / (rot.base ** (torch.arange(0, rot.dim, 2, dtype=torch.int64).float() / rot.dim))
        if not torch.allclose(rot.inv_freq.float().cpu(), want):
            raise ModelLoadError(
                "Show-o's rotary buffers were not initialised by this loader (transformers "
                f"{transformers.__version__}); use the upstream's pinned transformers 4.41-4.49"
            )
