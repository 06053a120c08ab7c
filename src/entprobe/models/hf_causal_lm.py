"""``hf-causal-lm``: any ``AutoModelForCausalLM`` (Llama, Qwen, Mistral, GPT-2, ...).

Prompt level: one forward pass over the prompt. Text generation: ``generate`` with
:class:`~entprobe.models.base.GenerationSettings`, then one teacher-forced forward pass
over ``[prompt; response]`` with the hooks on, so prompt and response states come from
the same pass.

Prompt format: by default the plain text, with whatever special tokens the tokenizer
adds itself (BOS for Llama-style tokenizers, nothing for GPT-2), because base LMs have
no chat template. ``load(..., use_chat_template=True)`` wraps the text as one user turn
of the tokenizer's chat template (with the generation prompt); template tokens are
then labelled SPECIAL and only the tokens that overlap the user's text are TEXT.

Roles: BOS and any other special token -> SPECIAL (except UNK, which stands for
content), prompt text -> TEXT, generated tokens -> GENERATED_TEXT except generated
special tokens (EOS, end-of-turn, pad) -> SPECIAL, so they are left out of the
response states. ``keep_generation_states=True`` also returns the states hooked
*during* generation at the GENERATED_TEXT positions that went through a forward pass
(all generated tokens but the last): ``generation_states`` equals
``response_states()[:, :k]``.

The loading and forward-pass helpers this adapter shares with the other transformers
adapters live in :mod:`entprobe.models._hf`. transformers is imported inside
functions only, so the registry can read the class attributes without loading it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from ..capture import Role
from ..errors import ModelLoadError, ProbeInputError
from ._batch import collate, response_ids, row_sampler
from ._hf import (
    _SENTINEL,
    CAUSAL_LAYER_PATHS,
    check_prompt_length,
    find_layers_path,
    forward_batch_states,
    forward_states,
    from_pretrained,
    maybe_capture,
    resolve_dtype,
    seeded,
    special_token_ids,
)
from .base import Encoded, Generation, GenerationSettings, ModelAdapter, roles_from_ids
from .requests import LoadOptions, Request

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

__all__ = ["HFCausalLMAdapter"]


@dataclass
class HFCausalLMAdapter(ModelAdapter):
    """Any ``AutoModelForCausalLM``: text prompts and text generation.

    Attributes:
        layers_path: dotted path of the decoder layers, found at load time
            (``model.layers`` for Llama/Qwen/Mistral, ``transformer.h`` for GPT-2, ...).
        use_chat_template: wrap prompts in the tokenizer's chat template.
    """

    name = "hf-causal-lm"
    description = (
        "Any transformers AutoModelForCausalLM (Llama, Qwen, Mistral, GPT-2, ...): text prompts "
        "and greedy/sampled text generation; the fallback for causal-LM model types"
    )
    model_types = ()  # fallback: see registry.detect_adapter
    capabilities = frozenset({"text-prompt", "text-gen"})
    batched = True

    layer_paths = CAUSAL_LAYER_PATHS
    load_extras = {
        "use_chat_template": "wrap prompts as one user turn of the tokenizer's chat template "
        "(default: plain text, as base LMs expect)"
    }

    use_chat_template: bool = field(default=False, kw_only=True)

    # --- loading -------------------------------------------------------------------------
    @classmethod
    def load_from(cls, source: str, options: LoadOptions) -> HFCausalLMAdapter:
        """Load an ``AutoModelForCausalLM`` and its tokenizer (``options.extras``:
        ``use_chat_template``, see :attr:`load_extras`).

        Raises:
            ModelLoadError: the checkpoint cannot be loaded, its decoder layers cannot
                be found, or a chat template is asked for and the tokenizer has none.
        """
        from transformers import AutoModelForCausalLM, AutoTokenizer

        use_chat_template = bool(options.extras.get("use_chat_template", False))
        kwargs = options.pretrained_kwargs()
        tok = from_pretrained(AutoTokenizer, source, what="tokenizer", adapter=cls.name, **kwargs)
        if use_chat_template and not getattr(tok, "chat_template", None):
            raise ModelLoadError(
                f"use_chat_template=True but the tokenizer of {source!r} has no chat template"
            )
        model = from_pretrained(
            AutoModelForCausalLM,
            source,
            what="model",
            adapter=cls.name,
            dtype=resolve_dtype(options.dtype),
            **kwargs,
        )
        model.to(options.device).eval()
        return cls(
            model=model,
            processor=tok,
            source=str(source),
            layers_path=find_layers_path(model),
            use_chat_template=use_chat_template,
            extra_identity={"use_chat_template": use_chat_template},
        )

    # --- introspection -------------------------------------------------------------------
    @property
    def tokenizer(self) -> Any:
        return self.processor

    @property
    def max_context(self) -> int | None:
        cfg = self.model.config
        cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
        n = getattr(cfg, "max_position_embeddings", None)
        return n if isinstance(n, int) and n > 0 else None

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    # --- prompts -------------------------------------------------------------------------
    def _special_ids(self) -> set[int]:
        ids = special_token_ids(self.tokenizer)
        eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        ids.update([eos] if isinstance(eos, int) else (eos or ()))
        return ids

    def _text_prompt(self, text: str) -> tuple[dict[str, torch.Tensor], list[Role]]:
        """Model inputs (batch of one) and one role per position for a text prompt."""
        tok = self.tokenizer
        if not self.use_chat_template:
            ids = tok(text)["input_ids"]
            roles = roles_from_ids(ids, special_token_ids=self._special_ids())
        else:
            ids, roles = self._chat_prompt(text)
        input_ids = torch.tensor([ids], dtype=torch.long, device=self.device)
        return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}, roles

    def _chat_prompt(self, text: str) -> tuple[list[int], list[Role]]:
        tok = self.tokenizer

        def render(content: str) -> str:
            return tok.apply_chat_template(
                [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
            )

        rendered = render(text)
        # Look for the user's text only after the template's own prefix (a system prompt
        # may contain the same words); templates may strip it, hence the strip.
        core = text.strip()
        prefix_end = max(render(_SENTINEL).find(_SENTINEL), 0)
        start = rendered.find(core, prefix_end) if core else -1
        end = start + len(core)
        # The template already spells out BOS and friends as text.
        enc = tok(rendered, add_special_tokens=False, return_offsets_mapping=True)
        special = self._special_ids()
        roles = []
        for tid, (a, b) in zip(enc["input_ids"], enc["offset_mapping"]):
            inside = start >= 0 and a < end and b > start
            roles.append(Role.TEXT if inside and tid not in special else Role.SPECIAL)
        return list(enc["input_ids"]), roles

    def _prompt(
        self, text: str, image: Image.Image | None = None
    ) -> tuple[dict[str, torch.Tensor], list[Role]]:
        """Inputs and roles of a prompt; subclasses with image prompts extend this."""
        return self._text_prompt(text)

    # --- prompt level --------------------------------------------------------------------
    def _encode(self, inputs: dict[str, torch.Tensor], roles: list[Role]) -> Encoded:
        check_prompt_length(int(inputs["input_ids"].shape[1]), self.max_context)
        states = forward_states(self.model, self.layers_path, inputs, use_cache=False)
        return Encoded(states=states, roles=roles, input_ids=inputs["input_ids"][0].detach().cpu())

    def encode_text(self, text: str) -> Encoded:
        self.require("text-prompt")
        return self._encode(*self._prompt(text))

    # --- response level ------------------------------------------------------------------
    def _generation_config(self, settings: GenerationSettings, max_new_tokens: int) -> Any:
        from transformers import GenerationConfig

        base = getattr(self.model, "generation_config", None)
        cfg = copy.deepcopy(base) if base is not None else GenerationConfig()
        tok = self.tokenizer
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        update: dict[str, Any] = {
            "max_new_tokens": max_new_tokens,
            "min_new_tokens": None,
            "do_sample": settings.do_sample,
            "num_beams": 1,
            "pad_token_id": pad if cfg.pad_token_id is None else cfg.pad_token_id,
        }
        if settings.do_sample:
            # top_k=0, not None: GenerationSettings has no top-k, and transformers 5 fills
            # an unset top_k with 50, so the run would record one sampler and use another.
            update.update(temperature=settings.temperature, top_p=settings.top_p, top_k=0)
        else:
            # Checkpoints often ship sampling defaults; clear them for greedy decoding.
            update.update(temperature=None, top_p=None, top_k=None)
        cfg.update(**update)
        return cfg

    def _response_roles(self, response_ids: Iterable[int]) -> list[Role]:
        special = self._special_ids()
        return [Role.SPECIAL if t in special else Role.GENERATED_TEXT for t in response_ids]

    def _max_new_tokens(self, n_prompt: int, settings: GenerationSettings) -> int:
        check_prompt_length(n_prompt, self.max_context)
        max_new = settings.max_new_tokens
        if self.max_context is not None:
            max_new = min(max_new, self.max_context - n_prompt)
        if max_new < 1:
            raise ProbeInputError(
                f"the prompt has {n_prompt} tokens and fills the model's context of "
                f"{self.max_context}; no room to generate"
            )
        return max_new

    def _pad_id(self) -> int:
        tok = self.tokenizer
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        return int(pad) if pad is not None else 0

    def _generate(
        self,
        prompts: list[tuple[dict[str, torch.Tensor], list[Role]]],
        settings: GenerationSettings,
        keep_generation_states: bool = False,
    ) -> list[Generation]:
        """``generate`` from prepared single-sample inputs, as one left-padded batch,
        then one right-padded teacher-forced pass over each ``[prompt; response]``.

        Each row samples with its own generator (:func:`~._batch.row_sampler`) and
        keeps its own ``max_new_tokens`` cap and end at EOS, so every row equals a
        batch of one. Generation states can be kept for a batch of one only.
        """
        from transformers import LogitsProcessorList

        if keep_generation_states and len(prompts) != 1:
            raise ProbeInputError("keep_generation_states needs a batch of one prompt")
        caps = [self._max_new_tokens(int(inputs["input_ids"].shape[1]), settings) for inputs, _ in prompts]
        batch = collate([inputs for inputs, _ in prompts], pad_id=self._pad_id(), side="left")
        if batch is None:  # inputs that cannot be stacked: one at a time
            return [out for p in prompts for out in self._generate([p], settings, keep_generation_states)]
        gen_cfg, processors = row_sampler(
            self._generation_config(settings, max(caps)), len(prompts), settings.seed, self.device, self.model
        )
        with torch.no_grad(), seeded(settings.seed, self.device):
            with maybe_capture(self.model, self.layers_path, keep_generation_states) as rec:
                out = self.model.generate(
                    **batch.inputs,
                    generation_config=gen_cfg,
                    logits_processor=LogitsProcessorList(processors),
                )
        sequences = out if isinstance(out, torch.Tensor) else out.sequences
        eos = gen_cfg.eos_token_id
        eos_ids = {int(eos)} if isinstance(eos, int) else {int(e) for e in eos or ()}
        responses = [
            response_ids(sequences[i, batch.width :].detach(), eos_ids, cap) for i, cap in enumerate(caps)
        ]
        full = [
            {**inputs, "input_ids": torch.cat([inputs["input_ids"], r[None].to(self.device)], dim=1)}
            for (inputs, _), r in zip(prompts, responses)
        ]
        tf = collate(full, pad_id=self._pad_id(), side="right")
        states = forward_batch_states(self.model, self.layers_path, tf.inputs, use_cache=False)

        generations = []
        for i, ((_, roles), response) in enumerate(zip(prompts, responses)):
            n_prompt = batch.lengths[i]
            ids = response.tolist()
            encoded = Encoded(
                states=states[:, i, tf.span(i)],
                roles=list(roles) + self._response_roles(ids),
                input_ids=full[i]["input_ids"][0].cpu(),
            )
            generations.append(
                Generation(
                    encoded=encoded,
                    n_prompt_tokens=n_prompt,
                    response_ids=response.cpu(),
                    text=self.tokenizer.decode(ids, skip_special_tokens=True),
                    generation_states=(
                        self._hooked_states(rec, encoded, n_prompt, len(ids))
                        if keep_generation_states
                        else None
                    ),
                )
            )
        return generations

    @staticmethod
    def _hooked_states(rec: Any, encoded: Encoded, n_prompt: int, n_response: int) -> torch.Tensor:
        """States hooked during ``generate`` (batch of one) at the GENERATED_TEXT
        positions that went through a forward pass: ``response_states()[:, :k]``."""
        hooked = rec.stacked()[:, 0]
        expected = n_prompt + max(n_response - 1, 0)
        if hooked.shape[1] != expected:
            raise RuntimeError(
                f"generation hooked {hooked.shape[1]} positions; expected {expected} "
                f"({n_prompt} prompt + {n_response} generated - 1)"
            )
        stepped = encoded.roles[n_prompt : hooked.shape[1]]
        keep = torch.tensor([r == Role.GENERATED_TEXT for r in stepped], dtype=torch.bool)
        return hooked[:, n_prompt:][:, keep.to(hooked.device)]

    # --- batched entry points --------------------------------------------------------------
    def _encode_batch(self, prompts: list[tuple[dict[str, torch.Tensor], list[Role]]]) -> list[Encoded]:
        """One right-padded forward pass over single-sample prompts; padding is cut off."""
        for inputs, _ in prompts:
            check_prompt_length(int(inputs["input_ids"].shape[1]), self.max_context)
        batch = collate([inputs for inputs, _ in prompts], pad_id=self._pad_id(), side="right")
        if batch is None:
            return [self._encode(*p) for p in prompts]
        states = forward_batch_states(self.model, self.layers_path, batch.inputs, use_cache=False)
        return [
            Encoded(
                states=states[:, i, batch.span(i)],
                roles=roles,
                input_ids=inputs["input_ids"][0].detach().cpu(),
            )
            for i, (inputs, roles) in enumerate(prompts)
        ]

    def encode_texts(self, texts: Sequence[str]) -> list[Encoded]:
        self.require("text-prompt")
        return self._encode_batch([self._prompt(text) for text in texts])

    def encode_images(self, images: Sequence[Image.Image], questions: Sequence[str]) -> list[Encoded]:
        self.require("image-prompt")
        return self._encode_batch([self._prompt(q, im) for im, q in zip(images, questions, strict=True)])

    def text_generations(self, requests: Sequence[Request]) -> list[Generation]:
        """:meth:`text_generation` of each request in one batch (see :meth:`_generate`)."""
        self.require("text-gen")
        if any(r.image is not None for r in requests):
            self.require("image-prompt")
        return self._generate([self._prompt(r.text, r.image) for r in requests], requests[0].settings)

    def text_generation(self, request: Request, keep_generation_states: bool = False) -> Generation:
        """Generate text; see :meth:`ModelAdapter.generate_text`.

        ``generation_states`` (when kept) are the states hooked during ``generate`` at
        the generated positions that went through a forward pass (every generated
        token but the last) and are GENERATED_TEXT, so that
        ``generation_states == response_states()[:, :k]`` up to KV-cache noise.

        ``settings.max_new_tokens`` is capped so that prompt and response fit in
        :attr:`max_context`; the seed is applied in a forked RNG, so the caller's
        global RNG state is left as it was.

        Raises:
            UnsupportedError: an image is given and the adapter has no image prompts.
            ProbeInputError: the prompt alone fills the model's context.
        """
        text, image, settings = request.text, request.image, request.settings
        self.require("text-gen")
        if image is not None:
            self.require("image-prompt")
        return self._generate([self._prompt(text, image)], settings, keep_generation_states)[0]
