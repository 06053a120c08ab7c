"""Tiny, seeded, randomly initialised models built offline from configs.

They exercise every code path in seconds on a CPU; their numbers mean nothing.
Each builder saves model and tokenizer/processor with ``save_pretrained`` into a
folder, so tests and ``entprobe demo`` load them through the adapters' real
``load()`` path.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from ._tokenizer import build_tokenizer

__all__ = ["TINY_BUILDERS", "build_tiny", "build_tokenizer"]

#: family -> "module:function"; each function is ``f(out_dir: Path, *, seed: int = 0) -> Path``:
#: it draws the random weights under ``seed``, saves model and tokenizer/processor into
#: ``out_dir`` (created if missing), loadable with the family adapter's ``load(out_dir)``,
#: and returns ``out_dir``.
TINY_BUILDERS: dict[str, str] = {
    "bert": "entprobe.models.tiny.text:save_tiny_bert",
    "llama": "entprobe.models.tiny.text:save_tiny_llama",
    "chameleon": "entprobe.models.tiny.text:save_tiny_chameleon",
    "janus": "entprobe.models.tiny.janus:save_tiny_janus",
    "emu3": "entprobe.models.tiny.emu3:save_tiny_emu3",
    "omnigen2": "entprobe.models.tiny.omnigen2:save_tiny_omnigen2",
}


def build_tiny(family: str, out_dir: str | Path, *, seed: int = 0) -> Path:
    """Build and save the tiny model of ``family`` into ``out_dir``; return the folder."""
    if family not in TINY_BUILDERS:
        raise KeyError(f"no tiny model for {family!r}; known: {', '.join(sorted(TINY_BUILDERS))}")
    module_name, attr = TINY_BUILDERS[family].split(":")
    builder = getattr(importlib.import_module(module_name), attr)
    return builder(Path(out_dir), seed=seed)
