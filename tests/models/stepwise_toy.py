"""A toy MaskGIT image generator over a tiny random Llama, for the step-wise contract.

Sequence: ``[BOS, text..., SOI, img_0 .. img_{G-1}, EOI]``; image positions start as
MASK and are revealed over ``n_steps`` steps; classifier-free guidance runs the
conditional and unconditional rows (text replaced by ``uncond_id``) in one batch, or,
with ``separate_cfg=True``, as two forwards per step (one step runs cond only, to make
the number of forwards per step vary). Token ids: 0 BOS, 1 SOI, 2 EOI, 3 MASK, 4-15
text, 16-31 image codes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from entprobe.capture import Role
from entprobe.models._stepwise import StepwiseImageAdapter, StepwiseOutput
from entprobe.models.base import GenerationSettings

BOS, SOI, EOI, MASK = 0, 1, 2, 3
TEXT0, CODE0, N_CODES = 4, 16, 16
GRID = 6


def tiny_llama(seed: int = 0) -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=32,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(cfg).eval()


@dataclass
class ToyMaskGIT(StepwiseImageAdapter):
    name: ClassVar[str] = "toy-maskgit"
    capabilities: ClassVar[frozenset[str]] = frozenset({"image-gen"})
    layer_paths: ClassVar[tuple[str, ...]] = ("model.layers",)
    image_generator: ClassVar[str] = "MaskGIT (toy)"
    image_response: ClassVar[str] = "teacher-forced pass of the final image codes"

    model: torch.nn.Module = field(default_factory=tiny_llama)
    processor: Any = None
    source: str = "toy"
    steps: int = 3
    uncond_id: int = TEXT0
    separate_cfg: bool = False
    forwards: int = 0  # counted by a plain forward hook, independent of capture

    def __post_init__(self) -> None:
        super().__post_init__()

        def count(*_: Any) -> None:
            self.forwards += 1

        self.model.register_forward_pre_hook(count)

    @classmethod
    def load_from(cls, source: str, options: Any) -> ToyMaskGIT:
        return cls()

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def encode_text(self, text: str):  # pragma: no cover - not a capability here
        raise NotImplementedError

    # --- the four hooks ---------------------------------------------------------
    def n_image_steps(self, settings: GenerationSettings) -> int:
        return self.steps

    def image_gen_prompt(self, text: str, settings: GenerationSettings) -> dict[str, torch.Tensor]:
        words = [TEXT0 + (sum(map(ord, w)) % 12) for w in text.split()] or [TEXT0]
        cond = torch.tensor([BOS, *words, SOI] + [MASK] * GRID + [EOI])
        uncond = cond.clone()
        uncond[1 : 1 + len(words)] = self.uncond_id
        return {"cond": cond, "uncond": uncond, "start": 2 + len(words)}

    def denoise(self, prompt: dict[str, Any], settings: GenerationSettings) -> StepwiseOutput:
        gen = torch.Generator().manual_seed(settings.seed)
        ids = torch.stack([prompt["cond"], prompt["uncond"]])
        img = slice(prompt["start"], prompt["start"] + GRID)
        for step in range(1, self.steps + 1):
            if self.separate_cfg:
                with self.llm_call(step=step, branches={"cond": slice(0, 1)}, positions=img):
                    cond = self.model(ids[:1]).logits
                uncond = cond
                if step != 2:  # a step without the unconditional pass
                    with self.llm_call(step=step, branches={"uncond": slice(0, 1)}, positions=img):
                        uncond = self.model(ids[1:]).logits
            else:
                rows = {"cond": slice(0, 1), "uncond": slice(1, 2)}
                with self.llm_call(step=step, branches=rows, positions=img):
                    cond, uncond = self.model(ids).logits.chunk(2)
            logits = (1 + settings.guidance_scale) * cond - settings.guidance_scale * uncond
            probs = logits[0, img, CODE0:].softmax(-1)
            sampled = torch.multinomial(probs, 1, generator=gen)[:, 0] + CODE0
            masked = (ids[0, img] == MASK).nonzero().flatten()
            n_reveal = len(masked) if step == self.steps else max(1, len(masked) // 2)
            reveal = masked[:n_reveal] + prompt["start"]
            ids[:, reveal] = sampled[masked[:n_reveal]]
        return StepwiseOutput(response_ids=ids[0, img].clone())

    def teacher_force(self, prompt: dict[str, Any], out: StepwiseOutput):
        ids = prompt["cond"].clone()
        start = prompt["start"]
        ids[start : start + GRID] = out.response_ids
        with self.llm_call(phase="teacher-forced", branches={"cond": slice(0, 1)}):
            self.model(ids[None])
        roles = [Role.SPECIAL] + [Role.TEXT] * (start - 2) + [Role.SPECIAL]
        roles += [Role.GENERATED_IMAGE] * GRID + [Role.SPECIAL]
        return roles, ids
