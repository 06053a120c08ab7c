"""A tiny byte-level BPE tokenizer trained offline, for tiny test and demo models."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

__all__ = ["TINY_CONTEXT", "build_tokenizer"]

#: Context of the tiny multimodal models: long enough for the longest bundled prompt
#: (~1,500 characters is ~800 byte-level tokens) plus a generated response.
TINY_CONTEXT = 2048

# A few sentences are enough for a byte-level BPE to cover any input (bytes are the
# alphabet); the merges only shorten common words.
_CORPUS = (
    "A red circle and a blue square on a white table.",
    "How many triangles are in the picture? Answer with a number.",
    "Draw a cat sitting to the left of a tall green lamp at sunset.",
    "The quick brown fox jumps over the lazy dog 0123456789.",
    "Question: which colour is the largest shape? Options: A. red B. blue C. green D. yellow",
)


def build_tokenizer(
    *,
    vocab_size: int = 128,
    special_tokens: Sequence[str] = ("<|bos|>", "<|eos|>", "<|pad|>"),
    bos_token: str = "<|bos|>",
    eos_token: str = "<|eos|>",
    pad_token: str = "<|pad|>",
    extra_special_tokens: Mapping[str, str] | None = None,
    corpus: Iterable[str] = _CORPUS,
    model_max_length: int = TINY_CONTEXT,
):
    """Train a byte-level BPE on ``corpus`` and wrap it as a ``PreTrainedTokenizerFast``.

    Args:
        vocab_size: target vocabulary size, special tokens included (at least 256 +
            specials are needed for full byte coverage; smaller values still work
            because the byte alphabet is always kept).
        special_tokens: tokens added as specials, first (ids 0, 1, ...).
        extra_special_tokens: named special tokens the processors look up as
            attributes (e.g. ``{"image_token": "<image_placeholder>"}``); their
            values must be among ``special_tokens``.

    Returns:
        A ``transformers.PreTrainedTokenizerFast``; survives ``save_pretrained`` /
        ``from_pretrained``.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(corpus), trainer=trainer)
    extra = {"extra_special_tokens": dict(extra_special_tokens)} if extra_special_tokens else {}
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos_token,
        eos_token=eos_token,
        pad_token=pad_token,
        model_max_length=model_max_length,
        **extra,
    )
