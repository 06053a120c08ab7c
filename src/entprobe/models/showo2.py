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
``image_steps`` grid points (default 50) -> one fewer LLM forward). The default response
is one teacher-forced forward of the clean latent at the data end (t = 1) through
Show-o2's own ``forward``. Roles: text TEXT; markers and the time slot SPECIAL; the N
image positions GENERATED_IMAGE. The Wan2.1 VAE is not loaded: no image is decoded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from ..capture import Role, capture
from ..errors import ModelLoadError
from ._hf import resolve_dtype, seeded
from ._stepwise import StepwiseImageAdapter, StepwiseOutput
from ._upstream import Upstream, import_upstream
from .base import Encoded, Generation, GenerationSettings

__all__ = ["Showo2Adapter"]

SYSTEM = "system\nYou are a helpful assistant.<|im_end|>"
USER, ASSISTANT = "\n<|im_start|>user\n", "\n<|im_start|>assistant\n"
WHY_NO_IMAGE_PROMPT = (
    "Show-o2 encodes input images with the Wan2.1 VAE (a separate .pth file), which this "
    "adapter does not load yet"
)


@dataclass
class Showo2Adapter(StepwiseImageAdapter):
    """Show-o2: text prompts, text generation, flow-matching image generation (see module)."""

    name: ClassVar[str] = "showo2"
    description: ClassVar[str] = (
        "Show-o2 1.5B/7B (showlab/Show-o, show-o2/): text prompts, text generation (own loop), "
        f"image generation (rectified flow, [cond; uncond] rows). No image-prompt: {WHY_NO_IMAGE_PROMPT}"
    )
    capabilities: ClassVar[frozenset[str]] = frozenset({"text-prompt", "text-gen", "image-gen"})
    unsupported: ClassVar[dict[str, str]] = {"image-prompt": WHY_NO_IMAGE_PROMPT}
    layers_path: ClassVar[str] = "showo.model.layers"
    image_generator: ClassVar[str] = "rectified flow (Show-o2 ODE sampler, Euler)"
    image_response: ClassVar[str] = "teacher-forced pass of the clean final latent at t=1 (data end)"
    upstream: ClassVar[Upstream] = Upstream(
        family="showo2", repo="showlab/Show-o", checked=("45a5a2de01d1 (2026-01-09)",),
        install="git clone https://github.com/showlab/Show-o && pip install -r Show-o/show-o2/requirements.txt",
        modules=("models", "models.misc", "transport"), subdir="show-o2",
    )

    #: grid points of the ODE sampler (Show-o2's demos: 50); LLM forwards = image_steps - 1.
    image_steps: int = field(default=50, kw_only=True)
    ids: dict[str, int] = field(default_factory=dict, kw_only=True)
    upstream_modules: dict[str, Any] = field(default_factory=dict, kw_only=True)

    @classmethod
    def load(cls, source: str, *, device: str = "cpu", dtype: str = "auto", trust_remote_code: bool = False,
             revision: str | None = None, upstream_src: str | None = None, image_steps: int = 50) -> Showo2Adapter:
        """Load a Show-o2 release folder with the upstream code (see module).

        Raises:
            ModelLoadError: the upstream code is missing or the folder cannot be loaded.
        """
        found = import_upstream(cls.upstream, upstream_src)
        mods = found["modules"]
        try:
            model = mods["models"].Showo2Qwen2_5.from_pretrained(str(source), use_safetensors=False)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise ModelLoadError(f"adapter 'showo2' cannot load {str(source)!r}: {exc}") from exc
        want = resolve_dtype(dtype)
        model.to(device=device, **({} if want == "auto" else {"dtype": want})).eval()
        tok, ids = mods["models.misc"].get_text_tokenizer(
            model.config.llm_model_path, add_showo_tokens=True, return_showo_token_ids=True, llm_name="qwen2_5")
        return cls(model=model, processor=tok, source=str(source), ids=ids, upstream_modules=mods, image_steps=image_steps,
                   extra_identity={"upstream": found["identity"], "llm": model.config.llm_model_path})

    @property
    def n_image_tokens(self) -> int:
        """Image positions per image (without the time slot)."""
        return int(self.model.config.image_latent_height * self.model.config.image_latent_width)

    def count_tokens(self, text: str) -> int:
        return len(self._ids(text))

    def _ids(self, text: str) -> list[int]:
        return self.processor(text, add_special_tokens=False)["input_ids"]

    # --- text prompts and text generation ---------------------------------------------
    def _text_prompt(self, text: str) -> tuple[list[int], list[Role]]:
        head = [self.ids["bos_id"]] + self._ids(SYSTEM) + self._ids(USER)
        body, tail = self._ids(text.strip()), self._ids(ASSISTANT)
        return head + body + tail, [Role.SPECIAL] * len(head) + [Role.TEXT] * len(body) + [Role.SPECIAL] * len(tail)

    def _forward_ids(self, ids: list[int]) -> torch.Tensor:
        with torch.no_grad():
            return self.model.showo(input_ids=torch.tensor([ids], device=self.device)).logits[0, -1]

    def encode_text(self, text: str) -> Encoded:
        self.require("text-prompt")
        ids, roles = self._text_prompt(text)
        with capture(self.model, self.layers_path) as rec:
            self._forward_ids(ids)
        return Encoded(rec.states(0)[:, 0], roles, torch.tensor(ids))

    def _next(self, logits: torch.Tensor, settings: GenerationSettings) -> int:
        if not settings.do_sample:
            return int(logits.argmax())
        probs = (logits.float() / settings.temperature).softmax(-1)
        if settings.top_p < 1.0:
            sorted_p, order = probs.sort(descending=True)
            drop = sorted_p.cumsum(-1) - sorted_p > settings.top_p
            probs[order[drop]] = 0.0
        return int(torch.multinomial(probs / probs.sum(), 1))

    def generate_text(self, text: str, *, image: Any = None, settings: GenerationSettings = GenerationSettings(),
                      keep_generation_states: bool = False) -> Generation:
        """Greedy (or sampled) decoding with a full re-forward per token, as Show-o2's
        ``lm_generate``; then one teacher-forced pass. ``model_calls`` counts both."""
        self.require("text-gen")
        if image is not None:
            self.require("image-prompt")
        ids, roles = self._text_prompt(text)
        n, stop = len(ids), {self.processor.eos_token_id}
        with seeded(settings.seed, self.device), capture(self.model, self.layers_path) as rec:
            while len(ids) - n < settings.max_new_tokens:
                ids.append(self._next(self._forward_ids(ids), settings))
                if ids[-1] in stop:
                    break
            n_gen = rec.n_calls
            self._forward_ids(ids)
        states = rec.states(n_gen)[:, 0]
        response = ids[n:]
        roles = roles + [Role.SPECIAL if t in stop else Role.GENERATED_TEXT for t in response]
        kept = None
        if keep_generation_states:  # call k (k >= 1) is the first to hold generated token k-1
            steps = [rec.states(k)[:, 0, n + k - 1 : n + k] for k in range(1, n_gen)]
            steps = [s for s, r in zip(steps, roles[n:]) if r == Role.GENERATED_TEXT]
            kept = torch.cat(steps, dim=1) if steps else states[:, :0]
        return Generation(
            encoded=Encoded(states, roles, torch.tensor(ids)), n_prompt_tokens=n, response_ids=torch.tensor(response),
            text=self.processor.decode(response, skip_special_tokens=True), generation_states=kept,
            model_calls={"generation": n_gen, "teacher-forced": 1},
        )

    # --- image generation (the step-wise hooks) -----------------------------------------
    def n_image_steps(self, settings: GenerationSettings) -> int:
        return self.image_steps - 1

    def image_gen_prompt(self, text: str, settings: GenerationSettings) -> dict[str, Any]:
        misc, n_img = self.upstream_modules["models.misc"], self.n_image_tokens + 1  # + time slot
        i = self.ids
        n_text = len(self._ids(text))
        cond, uncond, pos, pos_null = misc.prepare_gen_input(
            [text], self.processor, n_img, i["bos_id"], i["eos_id"], i["boi_id"], i["eoi_id"],
            self.processor.pad_token_id, i["img_pad_id"], n_text, self.device)
        guided = settings.guidance_scale > 0
        return {"cond": cond, "uncond": uncond if guided else None, "pos": pos, "pos_null": pos_null,
                "n_text": n_text, "guided": guided}

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
        flow = transport.create_transport(path_type="Linear", prediction="velocity", loss_weight=None,
                                          train_eps=None, sample_eps=None, snr_type="lognorm", do_shift=True,
                                          seq_len=self.n_image_tokens + 1)
        sample = transport.Sampler(flow).sample_ode(sampling_method="euler", num_steps=self.image_steps,
                                                    atol=1e-6, rtol=1e-3, reverse=False, time_shifting_factor=3.0)
        start = 2 + prompt["n_text"] + 1  # bos, text, boi, time slot
        rows = {"cond": slice(0, 1), "uncond": slice(1, 2)} if guided else {"cond": slice(0, 1)}
        step = 0

        def velocity(x: torch.Tensor, t: torch.Tensor, **kw: Any) -> torch.Tensor:
            nonlocal step
            step += 1
            with self.llm_call(step=step, branches=rows, positions=slice(start, start + self.n_image_tokens)):
                return self.model.t2i_generate(x, t, **kw)

        out = sample(z, velocity, text_tokens=tokens, attention_mask=self._mask(pos, tokens.shape[1]),
                     modality_positions=pos, output_hidden_states=True, max_seq_len=tokens.shape[1],
                     guidance_scale=settings.guidance_scale if guided else 0.0)[-1]
        return StepwiseOutput(response_ids=torch.empty(0, dtype=torch.long), clean=out[:1])

    def teacher_force(self, prompt: dict[str, Any], out: StepwiseOutput) -> tuple[list[Role], torch.Tensor]:
        tokens, pos = prompt["cond"], prompt["pos"]
        t = torch.ones(1, device=self.device, dtype=self.model.dtype)  # the data end
        with self.llm_call(phase="teacher-forced", branches={"cond": slice(0, 1)}):
            self.model(tokens, image_latents=out.clean.to(self.model.dtype), t=t,
                       attention_mask=self._mask(pos, tokens.shape[1]), modality_positions=pos,
                       output_hidden_states=True, max_seq_len=tokens.shape[1])
        n = prompt["n_text"]
        roles = [Role.SPECIAL] + [Role.TEXT] * n + [Role.SPECIAL, Role.SPECIAL]
        roles += [Role.GENERATED_IMAGE] * self.n_image_tokens + [Role.SPECIAL] * (tokens.shape[1] - len(roles) - self.n_image_tokens)
        return roles, tokens[0]
