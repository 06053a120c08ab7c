"""Why a checkpoint did not load, in words that point the right way.

A failure deep inside ``from_pretrained`` or an upstream builder reaches the user as
one of four problems, each with its own remedy:

- **a missing module** (``ModuleNotFoundError``: e.g. ``torchvision`` that timm
  imports, ``flash_attn``): install it into this environment;
- **an incompatible library version** (``cannot import name ... from ...``, a
  tokenizer file the installed ``tokenizers`` cannot read): use the versions the
  family's upstream pins;
- **a damaged or incomplete checkpoint** (a truncated safetensors or pickle file):
  download it again;
- **the wrong layout** (a file the family needs is not in the folder): point at the
  release folder, or pick the right adapter.

:func:`explain_load_error` sorts an exception into one of them (or says it could not)
and names the module or file.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version

from ..errors import ModelLoadError

__all__ = ["explain_load_error", "load_problem"]

_DAMAGED = (
    "safetensorerror", "headertoolarge", "incomplete metadata", "invalid header", "error while deserializing",
    "unexpected eof", "invalid load key", "pytorchstreamreader failed", "failed finding central directory",
    "ran out of input", "truncated", "file is not a zip file", "unpickling",
)  # fmt: skip
_LAYOUT = (
    "does not appear to have a file named",
    "no such file or directory",
    "is not a folder",
    "not found",
)
_INCOMPATIBLE = (
    "cannot import name", "untagged enum modelwrapper", "data did not match any variant", "unexpected keyword argument",
    "has no attribute",
)  # fmt: skip


def _installed(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def load_problem(exc: BaseException) -> tuple[str, str]:
    """``(kind, advice)`` for a load failure: kind is ``"missing module"``,
    ``"incompatible library"``, ``"damaged checkpoint"``, ``"wrong layout"`` or
    ``"unknown"``; the advice names the module or file where the exception does."""
    text = f"{type(exc).__name__}: {exc}"
    low = text.lower()
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        top = exc.name.split(".")[0]
        return "missing module", (
            f"the module {top!r} is not installed in this environment; install it here "
            f"(e.g. `pip install {top}`; for torchvision see the family's page in docs/models/)"
        )
    found = re.search(r"cannot import name '([^']+)' from '([^']+)'", text)
    if found:
        package = found.group(2).split(".")[0]
        return "incompatible library", (
            f"{found.group(2)!r} ({package} {_installed(package)}) has no {found.group(1)!r}: this is another "
            f"version than the family's code expects; install the versions its upstream pins"
        )
    if any(k in low for k in _DAMAGED) or isinstance(exc, EOFError):
        return "damaged checkpoint", (
            "a checkpoint file looks damaged or incomplete (a cut-short download?); download it again"
        )
    if isinstance(exc, FileNotFoundError) or any(k in low for k in _LAYOUT):
        missing = getattr(exc, "filename", None)
        what = f" ({missing})" if missing else ""
        return "wrong layout", (
            f"a file the adapter needs is not where it looks{what}: point --model at the release folder "
            "(docs/models/ lists each family's layout), or pick the adapter with --adapter"
        )
    if any(k in low for k in _INCOMPATIBLE):
        return "incompatible library", (
            "the installed libraries do not match what the family's code expects (transformers "
            f"{_installed('transformers')}, tokenizers {_installed('tokenizers')}); install the versions "
            "its upstream pins"
        )
    return "unknown", (
        "the cause is not one entprobe recognises; the error above is the library's own. If the checkpoint "
        "may be incomplete, download it again"
    )


def explain_load_error(exc: BaseException, *, adapter: str, source: str) -> ModelLoadError:
    """A :class:`ModelLoadError` for ``exc`` raised while ``adapter`` loaded ``source``:
    the kind of problem, the original error, what to do, and that nothing was written."""
    kind, advice = load_problem(exc)
    return ModelLoadError(
        f"adapter {adapter!r} cannot load {source!r} ({kind}): {type(exc).__name__}: {exc}. "
        f"What to do: {advice}. Nothing was written"
    )
