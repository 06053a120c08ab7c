"""Tiny BERT, Llama and Chameleon models for the ``hf-encoder``, ``hf-causal-lm`` and
``chameleon`` adapters.

Each builder seeds torch, builds a model from a small config (hidden size 32, a few
layers), builds its tokenizer (and for Chameleon its processor) offline, and saves
everything with ``save_pretrained`` so ``Adapter.load(folder)`` works. Weights are
random: the numbers mean nothing, the code paths are the real ones.
"""

from __future__ import annotations

from pathlib import Path

from ._common import TINY_HIDDEN, save_tiny, seeded_model, tiny_text_sizes
from ._tokenizer import _CORPUS, build_tokenizer

__all__ = ["save_tiny_bert", "save_tiny_chameleon", "save_tiny_llama"]

#: A minimal chat template for the tiny Llama, so ``use_chat_template=True`` can be tested.
_TINY_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def _bert_tokenizer():
    """A lower-casing WordPiece over the tiny corpus, as a ``BertTokenizer``."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertTokenizer

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    # An alphabet of every printable ASCII character keeps [UNK] rare on test prompts.
    alphabet = [chr(c) for c in range(33, 127)]
    trainer = trainers.WordPieceTrainer(
        vocab_size=200, special_tokens=specials, initial_alphabet=alphabet, show_progress=False
    )
    tok.train_from_iterator(list(_CORPUS), trainer=trainer)
    return BertTokenizer(vocab=tok.get_vocab(), do_lower_case=True, model_max_length=128)


def save_tiny_bert(out_dir: Path, *, seed: int = 0) -> Path:
    """A 2-layer BERT encoder (``BertModel``) with a WordPiece tokenizer."""
    from transformers import BertConfig, BertModel

    out_dir = Path(out_dir)
    tok = _bert_tokenizer()
    config = BertConfig(
        vocab_size=len(tok),
        hidden_size=TINY_HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
        pad_token_id=tok.pad_token_id,
    )
    return save_tiny(out_dir, seeded_model(BertModel, config, seed), tok)


def save_tiny_llama(out_dir: Path, *, seed: int = 0) -> Path:
    """A 3-layer Llama causal LM with a byte-level BPE (BOS added) and a tiny chat template."""
    from transformers import LlamaConfig, LlamaForCausalLM

    out_dir = Path(out_dir)
    tok = build_tokenizer(special_tokens=("<|bos|>", "<|eos|>", "<|pad|>"))
    tok.add_bos_token = True  # like Llama's tokenizers: BOS leads every sequence
    tok.chat_template = _TINY_CHAT_TEMPLATE
    config = LlamaConfig(
        **tiny_text_sizes(len(tok), num_key_value_heads=2, max_position_embeddings=256),
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
    )
    return save_tiny(out_dir, seeded_model(LlamaForCausalLM, config, seed), tok)


#: Chameleon's VQ codebook size in the tiny model, and its image geometry: 32 px
#: images, two downsamplings -> an 8 x 8 grid of image tokens.
_CHAMELEON_CODES = 16
_CHAMELEON_IMAGE = 32
_CHAMELEON_IMAGE_TOKENS = 64


def _image_token_name(code: int) -> str:
    # Chameleon's vocabulary names VQ code 12 "IMGIMGBCZ": digits spelled A-J, then a
    # final character that the model's mapping drops.
    return "IMGIMG" + "".join(chr(ord("A") + int(d)) for d in str(code)) + "Z"


def save_tiny_chameleon(out_dir: Path, *, seed: int = 0) -> Path:
    """A 2-layer Chameleon (``ChameleonForConditionalGeneration``) with a tiny VQ encoder
    (32 px images -> 64 image tokens) and a ``ChameleonProcessor``."""
    from transformers import ChameleonConfig, ChameleonForConditionalGeneration, ChameleonProcessor
    from transformers.models.chameleon.image_processing_pil_chameleon import (
        ChameleonImageProcessorPil,
    )

    out_dir = Path(out_dir)
    image_specials = ("<image>", "<racm3:break>", "<eoss>", "<reserved08706>")
    code_tokens = tuple(_image_token_name(i) for i in range(_CHAMELEON_CODES))
    tok = build_tokenizer(
        special_tokens=("<s>", "</s>", "<pad>", *image_specials, *code_tokens),
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        extra_special_tokens={"sep_token": "<reserved08706>"},
    )
    tok.add_bos_token = True
    image_processor = ChameleonImageProcessorPil(
        size={"shortest_edge": _CHAMELEON_IMAGE},
        crop_size={"height": _CHAMELEON_IMAGE, "width": _CHAMELEON_IMAGE},
    )
    processor = ChameleonProcessor(
        image_processor=image_processor, tokenizer=tok, image_seq_length=_CHAMELEON_IMAGE_TOKENS
    )
    config = ChameleonConfig(
        **tiny_text_sizes(len(tok), num_hidden_layers=2, num_key_value_heads=2, max_position_embeddings=512),
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        vocabulary_map=tok.get_vocab(),
        vq_config={
            "embed_dim": 8,
            "num_embeddings": _CHAMELEON_CODES,
            "latent_channels": 8,
            "resolution": _CHAMELEON_IMAGE,
            "base_channels": 32,  # GroupNorm uses 32 groups
            "channel_multiplier": [1, 1, 1],
            "num_res_blocks": 1,
        },
    )
    return save_tiny(out_dir, seeded_model(ChameleonForConditionalGeneration, config, seed), processor)
