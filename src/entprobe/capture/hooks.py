"""Record per-layer hidden states of any ``torch.nn.Module`` with forward hooks.

Layer 0 is the hidden state *entering* the first decoder layer (a forward pre-hook),
layer ``i`` the output of decoder layer ``i`` before any final norm. This differs from
``output_hidden_states`` in transformers, whose last entry has the final norm applied.

Packed sequences (``(n_tokens, d_model)``, no batch axis, as BAGEL's layers receive
them) are recorded with a batch axis of one, so every call has the same layout.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import ProbeInputError

__all__ = ["CallTag", "Recorder", "capture", "resolve_layers"]


def resolve_layers(model: nn.Module, layers: str | Sequence[nn.Module]) -> list[nn.Module]:
    """The decoder layers of ``model``: a dotted path such as
    ``"model.language_model.layers"`` (an ``nn.ModuleList``) or the modules themselves."""
    if isinstance(layers, str):
        try:
            found = model.get_submodule(layers)
        except AttributeError as exc:
            raise ProbeInputError(
                f"layers={layers!r} does not name a submodule of {type(model).__name__}: {exc}"
            ) from None
        mods = list(found) if isinstance(found, (nn.ModuleList, nn.Sequential)) else [found]
    else:
        mods = list(layers)
    if not mods:
        raise ProbeInputError(f"layers={layers!r} resolved to no modules; need at least one")
    return mods


def _hidden(output: object) -> torch.Tensor:
    # Decoder layers return a tensor (transformers >= 5) or a tuple led by it.
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise TypeError(f"cannot find the hidden states in a layer output of type {type(output).__name__}")


def _layer_input(args: tuple, kwargs: dict, name: str | None) -> torch.Tensor:
    """The hidden states a decoder layer was called with.

    ``name`` given: that keyword. Otherwise ``hidden_states=``, else the first positional
    argument, else the first floating-point tensor passed by keyword (layers that take
    their input under another name, e.g. BAGEL's ``packed_query_sequence=``).
    """
    if name is not None:
        found = kwargs.get(name)
    elif "hidden_states" in kwargs:
        found = kwargs["hidden_states"]
    elif args:
        found = args[0]
    else:
        found = next(
            (v for v in kwargs.values() if isinstance(v, torch.Tensor) and v.is_floating_point()), None
        )
    if not isinstance(found, torch.Tensor):
        wanted = f"keyword {name!r}" if name is not None else "hidden_states tensor"
        raise TypeError(
            f"the first decoder layer received no {wanted}: got {len(args)} positional "
            f"argument(s) and keywords {sorted(kwargs)}"
        )
    return found


def _batched(t: torch.Tensor) -> torch.Tensor:
    # A packed (n_tokens, d_model) sequence gets a batch axis of one.
    return t.unsqueeze(0) if t.dim() == 2 else t


Rows = slice | Sequence[int]


@dataclass(frozen=True)
class CallTag:
    """What the caller says a forward call is (see :meth:`Recorder.tag`).

    Attributes:
        step: denoising / decoding step (1-based by convention), or None.
        branches: branch name -> the batch rows that hold it, e.g.
            ``{"cond": slice(0, 1), "uncond": slice(1, 2)}``; empty: not said.
        positions: the token positions of the response in this call's sequence
            (a slice or index list), or None.
        phase: free label, e.g. ``"prefill"``, ``"denoise"``, ``"teacher-forced"``.
        keep: False: count the call but drop its states (steps nobody asked for).
    """

    step: int | None = None
    branches: Mapping[str, Rows] = field(default_factory=dict)
    positions: Rows | None = None
    phase: str | None = None
    keep: bool = True


def _index(rows: Rows) -> slice | list[int]:
    return rows if isinstance(rows, slice) else [int(i) for i in rows]


class Recorder:
    """Collects, per forward call of the model, the states of every layer.

    One *call* starts each time the first decoder layer runs (the prefill of a
    generation is call 0, each decoding step one more call). A caller that runs
    several forwards per step (classifier-free guidance in separate passes, CFG
    intervals) tags each call with :meth:`tag`, so states are found by what they
    are, not by their position in the call order.

    Args:
        n_layers: number of hooked decoder layers.
        to_cpu: move each captured tensor to the CPU as it arrives.
    """

    def __init__(self, n_layers: int, *, to_cpu: bool = False) -> None:
        self.n_layers = n_layers
        self.to_cpu = to_cpu
        self._calls: list[list[torch.Tensor | None]] = []
        self._tags: list[CallTag | None] = []
        self._tag: CallTag | None = None
        self._tagger: Callable[[tuple, dict], CallTag | None] | None = None

    def _keep(self, t: torch.Tensor) -> torch.Tensor:
        t = _batched(t.detach())
        return t.to("cpu") if self.to_cpu else t

    def _on_input(self, hidden: torch.Tensor, args: tuple = (), kwargs: dict | None = None) -> None:
        tag = self._tag
        if tag is None and self._tagger is not None:
            tag = self._tagger(args, kwargs or {})
        kept = tag is None or tag.keep
        self._calls.append([self._keep(hidden) if kept else None] + [None] * self.n_layers)
        self._tags.append(tag)

    def _on_output(self, index: int, hidden: torch.Tensor) -> None:
        if not self._calls:
            raise RuntimeError("a decoder layer ran before the first one; hooks are out of order")
        if self._tags[-1] is None or self._tags[-1].keep:
            self._calls[-1][index + 1] = self._keep(hidden)

    @property
    def n_calls(self) -> int:
        """Number of forward calls recorded."""
        return len(self._calls)

    def clear(self) -> None:
        """Forget everything recorded so far."""
        self._calls.clear()
        self._tags.clear()

    @contextmanager
    def tag(
        self,
        *,
        step: int | None = None,
        branches: Mapping[str, Rows] | None = None,
        positions: Rows | None = None,
        phase: str | None = None,
        keep: bool = True,
    ) -> Iterator[CallTag]:
        """Tag every forward call that starts inside the block (see :class:`CallTag`).

        Example:
            >>> with rec.tag(step=3, branches={"cond": slice(0, 1), "uncond": slice(1, 2)}):  # doctest: +SKIP
            ...     model(torch.cat([cond_ids, uncond_ids]))
        """
        if self._tag is not None:
            raise RuntimeError("Recorder.tag blocks do not nest")
        self._tag = CallTag(step, dict(branches or {}), positions, phase, keep)
        try:
            yield self._tag
        finally:
            self._tag = None

    @contextmanager
    def tagging(self, tagger: Callable[[tuple, dict], CallTag | None]) -> Iterator[None]:
        """Tag every forward call that starts inside the block from its inputs:
        ``tagger(args, kwargs)`` gets what the first decoder layer was called with and
        returns the call's :class:`CallTag` (or None). For loops the caller does not
        own (an upstream generator), where no :meth:`tag` block fits around each
        forward; an open :meth:`tag` block wins.

        Example:
            >>> branch = {id(cond_cache): "cond", id(cfg_cache): "uncond"}  # doctest: +SKIP
            >>> with rec.tagging(lambda a, kw: CallTag(branches={branch[id(kw["past_key_values"])]: [0]})):
            ...     upstream_generate(...)
        """
        if self._tagger is not None:
            raise RuntimeError("Recorder.tagging blocks do not nest")
        self._tagger = tagger
        try:
            yield
        finally:
            self._tagger = None

    @property
    def tags(self) -> list[CallTag | None]:
        """The tag of each recorded call (None: untagged)."""
        return list(self._tags)

    def find(
        self, *, step: int | None = None, branch: str | None = None, phase: str | None = None
    ) -> list[int]:
        """Indices of the calls whose tag matches every criterion given."""
        out = []
        for i, t in enumerate(self._tags):
            if t is None:
                continue
            if step is not None and t.step != step:
                continue
            if branch is not None and branch not in t.branches:
                continue
            if phase is not None and t.phase != phase:
                continue
            out.append(i)
        return out

    def branch_states(self, call: int, branch: str, *, response_only: bool = False) -> torch.Tensor:
        """States of one branch of a tagged call,
        ``(n_layers + 1, n_rows, n_tokens, d_model)``; with ``response_only``, only
        the tag's ``positions`` on the token axis."""
        t = self._tags[call]
        if t is None or branch not in t.branches:
            have = "untagged" if t is None else f"branches {sorted(t.branches)}"
            raise ProbeInputError(f"call {call} has no branch {branch!r} ({have})")
        out = self.states(call)[:, _index(t.branches[branch])]
        if response_only:
            if t.positions is None:
                raise ProbeInputError(f"call {call} was tagged without response positions")
            out = out[:, :, _index(t.positions)]
        return out

    def states(self, call: int = 0) -> torch.Tensor:
        """States of one call, ``(n_layers + 1, batch, n_tokens, d_model)``
        (``batch`` is 1 for a packed ``(n_tokens, d_model)`` input)."""
        if not self._calls:
            raise ProbeInputError("nothing was recorded: the model did not run the hooked layers")
        parts = self._calls[call]
        tag = self._tags[call]
        if tag is not None and not tag.keep:
            raise ProbeInputError(f"call {call} was tagged keep=False; its states were not kept")
        missing = [i for i, p in enumerate(parts) if p is None]
        if missing:
            raise RuntimeError(f"call {call} is missing layers {missing}: the forward pass stopped early")
        return torch.stack(parts)  # type: ignore[arg-type]

    def stacked(self) -> torch.Tensor:
        """Every call concatenated along the token axis,
        ``(n_layers + 1, batch, total_tokens, d_model)`` (prefill then each step)."""
        return torch.cat([self.states(i) for i in range(self.n_calls)], dim=2)


@contextmanager
def capture(
    model: nn.Module,
    layers: str | Sequence[nn.Module],
    *,
    to_cpu: bool = False,
    input_name: str | None = None,
) -> Iterator[Recorder]:
    """Record layer-wise hidden states while the block runs.

    Args:
        model: any ``torch.nn.Module``.
        layers: dotted path of its decoder-layer list, or the layer modules.
        to_cpu: move captured states to the CPU as they arrive.
        input_name: keyword under which the first layer receives its hidden states;
            default ``hidden_states``, else the first positional argument, else the
            first floating-point tensor keyword. Packed ``(n_tokens, d_model)``
            inputs and outputs are recorded as ``(1, n_tokens, d_model)``.

    Yields:
        A :class:`Recorder`; ``rec.states(0)`` is ``(n_layers + 1, batch, n_tokens, d_model)``.

    Example:
        >>> with capture(model, "model.layers") as rec:  # doctest: +SKIP
        ...     model(input_ids)
        >>> rec.states(0).shape  # doctest: +SKIP
    """
    mods = resolve_layers(model, layers)
    rec = Recorder(len(mods), to_cpu=to_cpu)
    handles = []

    def pre_hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
        rec._on_input(_layer_input(args, kwargs, input_name), args, kwargs)

    def make_hook(index: int):
        def hook(module: nn.Module, args: tuple, output: object) -> None:
            rec._on_output(index, _hidden(output))

        return hook

    try:
        handles.append(mods[0].register_forward_pre_hook(pre_hook, with_kwargs=True))
        for i, mod in enumerate(mods):
            handles.append(mod.register_forward_hook(make_hook(i)))
        yield rec
    finally:
        for h in handles:
            h.remove()
