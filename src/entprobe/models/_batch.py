"""Batching helpers shared by the adapters that run several samples in one pass.

- :func:`collate`: pads the single-sample inputs of several prompts into one batch
  (left padding for decoder-only generation, right padding for forward passes,
  where causal attention never lets a real token see the padding after it), or
  returns None when the inputs cannot be stacked (e.g. images of different sizes),
  so the caller falls back to one sample at a time.
- :func:`row_sampler`: sampling with one ``torch.Generator`` per batch row, so that
  a sample's sampled tokens do not depend on its batch or the batch size.
- :func:`response_ids`: a row's generated ids as a batch-of-one ``generate`` would
  have returned them (cut after the first end-of-sequence token).

transformers is imported inside functions only.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["Batch", "collate", "response_ids", "row_sampler"]


@dataclass
class Batch:
    """Padded model inputs of ``B`` prompts.

    Attributes:
        inputs: ``input_ids`` and ``attention_mask`` of shape ``(B, T)``, every other
            tensor of the single-sample inputs concatenated along dim 0.
        lengths: real length of each row.
        side: ``"left"`` or ``"right"``: where the padding is.
    """

    inputs: dict[str, Any]
    lengths: list[int]
    side: str

    @property
    def width(self) -> int:
        return int(self.inputs["input_ids"].shape[1])

    def span(self, row: int) -> slice:
        """Positions of row ``row``'s real tokens along the padded axis."""
        n = self.lengths[row]
        return slice(self.width - n, self.width) if self.side == "left" else slice(0, n)


def collate(items: Sequence[dict[str, Any]], *, pad_id: int, side: str) -> Batch | None:
    """Pad ``input_ids`` (with ``pad_id``, mask 0) and any other ``(1, n)`` sequence
    input of single-sample ``items`` to one batch; concatenate the rest.

    Args:
        items: single-sample model inputs, each with ``input_ids`` of shape ``(1, n_i)``
            (their attention masks, all ones, are replaced by the padded batch's).
        pad_id: the id that fills padded positions (masked out, never read).
        side: ``"left"`` (generation) or ``"right"`` (forward passes).

    Returns:
        The batch, or None when a non-sequence tensor differs in shape between items
        or the items have different keys.
    """
    keys = set(items[0]) - {"attention_mask"}
    if any(set(item) - {"attention_mask"} != keys for item in items):
        return None
    lengths = [int(item["input_ids"].shape[1]) for item in items]
    width = max(lengths)
    device = items[0]["input_ids"].device

    def pad(value: torch.Tensor, n: int, fill: int) -> torch.Tensor:
        gap = value.new_full((1, width - n), fill)
        return torch.cat([gap, value] if side == "left" else [value, gap], dim=1)

    out: dict[str, Any] = {}
    for key in keys:
        values = [item[key] for item in items]
        if key in ("input_ids", "token_type_ids"):
            fill = pad_id if key == "input_ids" else 0
            out[key] = torch.cat([pad(v, n, fill) for v, n in zip(values, lengths)], dim=0)
        elif isinstance(values[0], torch.Tensor) and all(v.shape[1:] == values[0].shape[1:] for v in values):
            out[key] = torch.cat(values, dim=0)
        else:
            return None
    ones = [torch.ones(1, n, dtype=torch.long, device=device) for n in lengths]
    out["attention_mask"] = torch.cat([pad(m, n, 0) for m, n in zip(ones, lengths)], dim=0)
    return Batch(inputs=out, lengths=lengths, side=side)


def response_ids(row: torch.Tensor, eos_ids: set[int], max_new: int) -> torch.Tensor:
    """The ids a batch of one would have generated: the first ``max_new`` of ``row``
    (a row's own cap may be below the batch's), cut after the first EOS (later
    positions are padding, or tokens generated after the row had finished)."""
    row = row[:max_new]
    for i, tid in enumerate(row.tolist()):
        if tid in eos_ids:
            return row[: i + 1]
    return row


def _warpers(cfg: Any) -> list[Any]:
    """The sampling warpers ``generate`` would apply for ``cfg``, in its order."""
    from transformers import generation as g

    out: list[Any] = []
    if cfg.temperature is not None and cfg.temperature != 1.0:
        out.append(g.TemperatureLogitsWarper(cfg.temperature))
    if getattr(cfg, "top_h", None) is not None:
        out.append(g.logits_process.TopHLogitsWarper(top_h=cfg.top_h))
    if cfg.top_k is not None and cfg.top_k != 0:
        out.append(g.TopKLogitsWarper(top_k=cfg.top_k, min_tokens_to_keep=1))
    if cfg.top_p is not None and cfg.top_p < 1.0:
        out.append(g.TopPLogitsWarper(top_p=cfg.top_p, min_tokens_to_keep=1))
    if getattr(cfg, "min_p", None) is not None:
        out.append(g.MinPLogitsWarper(min_p=cfg.min_p, min_tokens_to_keep=1))
    if cfg.typical_p is not None and cfg.typical_p < 1.0:
        out.append(g.TypicalLogitsWarper(mass=cfg.typical_p, min_tokens_to_keep=1))
    if cfg.epsilon_cutoff is not None and 0.0 < cfg.epsilon_cutoff < 1.0:
        out.append(g.EpsilonLogitsWarper(epsilon=cfg.epsilon_cutoff, min_tokens_to_keep=1))
    if cfg.eta_cutoff is not None and 0.0 < cfg.eta_cutoff < 1.0:
        out.append(g.EtaLogitsWarper(epsilon=cfg.eta_cutoff, min_tokens_to_keep=1))
    return out


def _effective(cfg: Any, model: Any) -> Any:
    """``cfg`` as ``generate`` will see it: transformers 5 fills unset fields from
    global defaults (``top_k=None`` becomes 50), so the warpers must come from this."""
    prepare = getattr(model, "_prepare_generation_config", None)
    if prepare is None:
        return cfg
    return prepare(copy.deepcopy(cfg))[0]


def row_sampler(
    cfg: Any, n_rows: int, seed: int, device: torch.device, model: Any = None
) -> tuple[Any, list[Any]]:
    """A greedy copy of generation config ``cfg`` and the logits processors that make
    its argmax a draw from ``cfg``'s sampling distribution, row by row.

    ``generate`` samples every row from the one global RNG, so a row's tokens depend
    on the rows beside it. Instead, each row gets its own ``torch.Generator`` seeded
    with ``seed`` (as a batch of one in a freshly seeded RNG would be): the processor
    applies ``cfg``'s warpers (temperature, top-k, top-p, ...), draws each row's token
    from the softmax with that row's generator, and leaves only that token finite, so
    the greedy step picks it. The draws equal ``generate``'s own sampling at batch
    size one after ``torch.manual_seed(seed)`` (``tests/models/test_batching.py``).

    Args:
        model: the model whose ``generate`` will run, to resolve ``cfg``'s defaults
            as ``generate`` does.

    Returns:
        ``(cfg, processors)``: ``cfg`` unchanged and ``[]`` when it does not sample.
    """
    if not cfg.do_sample:
        return cfg, []
    from transformers import LogitsProcessor

    warpers = _warpers(_effective(cfg, model))
    generators = [torch.Generator(device=device).manual_seed(seed) for _ in range(n_rows)]

    class RowSampler(LogitsProcessor):
        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
            for warper in warpers:
                scores = warper(input_ids, scores)
            probs = torch.softmax(scores, dim=-1)
            out = torch.full_like(scores, float("-inf"))
            for i, gen in enumerate(generators):
                token = torch.multinomial(probs[i : i + 1], num_samples=1, generator=gen)
                out[i, token[0, 0]] = 0.0
            return out

    greedy = copy.deepcopy(cfg)
    greedy.do_sample = False
    for name in (
        "temperature",
        "top_k",
        "top_p",
        "min_p",
        "typical_p",
        "epsilon_cutoff",
        "eta_cutoff",
        "top_h",
    ):
        if hasattr(greedy, name):
            setattr(greedy, name, None)
    return greedy, [RowSampler()]
