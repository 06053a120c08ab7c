"""``hf-encoder``: BERT-like encoders loaded with ``AutoModel`` (prompt level only).

The prompt is the tokenizer's usual encoding, ``[CLS] text [SEP]`` for BERT. Roles:
[CLS], [SEP] and any other special token -> SPECIAL (UNK stands for content and stays
TEXT), the rest TEXT. Encoders have no final norm after the last layer, so the
captured layer ``N`` equals ``output_hidden_states[N]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ._batch import collate
from ._hf import (
    check_prompt_length,
    find_layers_path,
    forward_batch_states,
    from_pretrained,
    resolve_dtype,
    special_token_ids,
)
from .base import Encoded, ModelAdapter, roles_from_ids
from .requests import LoadOptions

__all__ = ["HFEncoderAdapter"]

#: Where ``AutoModel`` encoders keep their layer list.
ENCODER_LAYER_PATHS = (
    "encoder.layer",  # BERT, RoBERTa, XLM-R, ELECTRA, MPNet, DeBERTa
    "transformer.layer",  # DistilBERT
    "encoder.layers",
    "layers",  # ModernBERT
)


@dataclass
class HFEncoderAdapter(ModelAdapter):
    """A BERT-like encoder: text prompts only.

    Attributes:
        layers_path: dotted path of the layer list, found at load time
            (``encoder.layer`` for BERT/RoBERTa, ``transformer.layer`` for DistilBERT).
    """

    name = "hf-encoder"
    description = (
        "BERT-like text encoders loaded with AutoModel (BERT, RoBERTa, DistilBERT, MiniLM, ...): "
        "prompt level only"
    )
    model_types = (
        "bert",
        "roberta",
        "xlm-roberta",
        "distilbert",
        "electra",
        "camembert",
        "mpnet",
        "deberta",
        "deberta-v2",
        "modernbert",
    )
    capabilities = frozenset({"text-prompt"})
    batched = True

    # Post-norm encoders (BERT and kin) end with their last layer's own norm and have
    # none beside the layers; pre-norm ones (ModernBERT) have one.
    final_norm_required = False
    layer_paths = ENCODER_LAYER_PATHS

    @classmethod
    def load_from(cls, source: str, options: LoadOptions) -> HFEncoderAdapter:
        """Load an ``AutoModel`` encoder and its tokenizer.

        Raises:
            ModelLoadError: the checkpoint cannot be loaded, is a decoder, or its
                layer list cannot be found.
        """
        from transformers import AutoModel, AutoTokenizer

        kwargs = options.pretrained_kwargs()
        tok = from_pretrained(AutoTokenizer, source, what="tokenizer", adapter=cls.name, **kwargs)
        model = from_pretrained(
            AutoModel, source, what="model", adapter=cls.name, dtype=resolve_dtype(options.dtype), **kwargs
        )
        model.to(options.device).eval()
        return cls(
            model=model,
            processor=tok,
            source=str(source),
            layers_path=find_layers_path(model, ENCODER_LAYER_PATHS),
        )

    @property
    def tokenizer(self) -> Any:
        return self.processor

    @property
    def max_context(self) -> int | None:
        """``config.max_position_embeddings``, capped by the tokenizer's
        ``model_max_length`` (RoBERTa reserves two positions for padding offsets)."""
        n = getattr(self.model.config, "max_position_embeddings", None)
        n = n if isinstance(n, int) and n > 0 else None
        tok_max = getattr(self.tokenizer, "model_max_length", None)
        if isinstance(tok_max, int) and 0 < tok_max < 1_000_000:
            n = tok_max if n is None else min(n, tok_max)
        return n

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode_text(self, text: str) -> Encoded:
        """One forward pass over ``[CLS] text [SEP]`` (the tokenizer's own template).

        Raises:
            ProbeInputError: the prompt is longer than :attr:`max_context`.
        """
        return self.encode_texts([text])[0]

    def encode_texts(self, texts: Sequence[str]) -> list[Encoded]:
        """:meth:`encode_text` of each text, as one right-padded batch (padding masked
        and cut off the states)."""
        self.require("text-prompt")
        encs = [self.tokenizer(text, return_tensors="pt") for text in texts]
        for enc in encs:
            check_prompt_length(int(enc["input_ids"].shape[1]), self.max_context)
        pad = self.tokenizer.pad_token_id
        batch = collate(
            [{k: v.to(self.device) for k, v in enc.items()} for enc in encs],
            pad_id=0 if pad is None else int(pad),
            side="right",
        )
        states = forward_batch_states(self.model, self.layers_path, batch.inputs)
        special = special_token_ids(self.tokenizer)
        return [
            Encoded(
                states=states[:, i, batch.span(i)],
                roles=roles_from_ids(enc["input_ids"][0], special_token_ids=special),
                input_ids=enc["input_ids"][0],
            )
            for i, enc in enumerate(encs)
        ]
