"""Finding the user's own upstream code (families that live outside transformers).

entprobe ships none of the upstream code. An adapter names its upstream in an
:class:`Upstream` and imports its modules at run time through :func:`import_upstream`,
from, in this order:

1. a checkout given by ``--upstream-src PATH`` (``upstream_src=`` of ``load``);
2. a checkout named by the environment variable ``ENTPROBE_<FAMILY>_SRC``
   (e.g. ``ENTPROBE_SHOWO_SRC``);
3. whatever is already importable (an installed package, or ``PYTHONPATH``).

A checkout is put at the front of ``sys.path`` (its ``subdir`` when the family lives in
a sub-folder of its repository). When nothing is found, the error names the
repository, the commit(s) entprobe was checked against and the install line.
:func:`require_versions` checks the package versions an adapter needs, with an error
naming them.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import ModelLoadError
from ._load_errors import load_problem

__all__ = ["Upstream", "import_upstream", "require_versions", "upstream_env_var"]


@dataclass(frozen=True)
class Upstream:
    """Where a family's code comes from.

    Attributes:
        family: the adapter name (``"showo"``); gives the environment variable.
        repo: ``owner/name`` on GitHub.
        checked: the commit(s) entprobe was checked against, e.g.
            ``("45a5a2de01d1 (2026-01-09)",)``.
        install: how a user gets the code (a shell line).
        modules: modules that must import, e.g. ``("models.modeling_showo",)``;
            the first one that fails is named in the error.
        subdir: the folder inside the repository that goes on ``sys.path``.
        requires: package -> minimum version, e.g. ``{"transformers": "4.41"}``.
    """

    family: str
    repo: str
    checked: tuple[str, ...]
    install: str
    modules: tuple[str, ...]
    subdir: str = ""
    requires: Mapping[str, str] = field(default_factory=dict)

    @property
    def env_var(self) -> str:
        return upstream_env_var(self.family)

    def describe(self) -> str:
        """One line for ``entprobe models`` and error messages."""
        return (
            f"upstream code: {self.repo} (checked at {', '.join(self.checked)}); "
            f"--upstream-src PATH or ${self.env_var}"
        )


def upstream_env_var(family: str) -> str:
    """``ENTPROBE_<FAMILY>_SRC`` (``showo2`` -> ``ENTPROBE_SHOWO2_SRC``)."""
    return "ENTPROBE_" + "".join(c if c.isalnum() else "_" for c in family.upper()) + "_SRC"


def require_versions(requires: Mapping[str, str], *, who: str) -> None:
    """Raise unless every package in ``requires`` is installed at ``>=`` its version.

    Args:
        requires: package -> minimum version (``{"transformers": "5.0"}``).
        who: what needs them, for the message (``"adapter 'janus'"``).

    Raises:
        ModelLoadError: naming the package, the version found and the one needed.
    """
    from importlib.metadata import PackageNotFoundError, version

    from packaging.version import Version

    for name, minimum in requires.items():
        try:
            found = version(name)
        except PackageNotFoundError:
            raise ModelLoadError(
                f"{who} needs {name}>={minimum}, which is not installed (pip install '{name}>={minimum}')"
            ) from None
        if Version(found).release < Version(minimum).release:
            raise ModelLoadError(
                f"{who} needs {name}>={minimum}; this environment has {name} {found} "
                f"(pip install '{name}>={minimum}' in another environment)"
            )


def _git_commit(path: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _missing(spec: Upstream, why: str) -> ModelLoadError:
    return ModelLoadError(
        f"adapter {spec.family!r} needs the upstream code of {spec.repo} "
        f"(entprobe was checked against commit {', '.join(spec.checked)}): {why}. "
        f"Install it with `{spec.install}`, then pass --upstream-src PATH (the checkout) "
        f"or set {spec.env_var}=PATH"
    )


def _forget_foreign(spec: Upstream, base: Path) -> None:
    # Upstream repositories use generic top-level names (Show-o and Show-o2 both
    # have ``models``); a same-named package imported from elsewhere is dropped from
    # the import cache so that this checkout's is the one imported.
    for top in {name.split(".")[0] for name in spec.modules}:
        mod = sys.modules.get(top)
        if mod is None:
            continue
        files = [getattr(mod, "__file__", None) or "", *list(getattr(mod, "__path__", []) or [])]
        if any(f and Path(f).resolve().is_relative_to(base) for f in files):
            continue
        for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
            del sys.modules[name]


def _code_is_there(name: str, exc: ImportError) -> bool:
    """Whether ``name``'s own package was found and the import failed on something else
    (a dependency such as ``flash_attn``, or a name another library no longer has)."""
    import importlib.util

    top = name.split(".")[0]
    try:
        if importlib.util.find_spec(top) is None:
            return False
    except (ImportError, ValueError):
        return False
    missing = getattr(exc, "name", None) or ""
    return missing.split(".")[0] != top or "cannot import name" in str(exc)


def import_upstream(spec: Upstream, src: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Import the upstream modules of ``spec``.

    Args:
        spec: the family's upstream.
        src: a checkout (``--upstream-src``); default: ``$ENTPROBE_<FAMILY>_SRC``, else
            what is importable already.

    Returns:
        ``{"modules": {name: module}, "identity": {...}}``; ``identity`` (repo, path,
        git commit when the checkout is a git repository) goes into the run's
        configuration, so the run id changes with the code.

    Raises:
        ModelLoadError: the path does not exist, or a module does not import (the
            message names the repository, checked commit and install line, and the
            import error).
    """
    origin = "--upstream-src"
    if src is None and os.environ.get(spec.env_var):
        src, origin = os.environ[spec.env_var], f"${spec.env_var}"
    root: Path | None = None
    if src is not None:
        root = Path(src).expanduser().resolve()
        if not root.is_dir():
            raise _missing(spec, f"{origin} {str(src)!r} is not a folder")
        base = root / spec.subdir if spec.subdir else root
        if not base.is_dir():
            raise _missing(spec, f"{origin} {str(root)!r} has no {spec.subdir!r} folder")
        _forget_foreign(spec, base)
        if str(base) in sys.path:
            sys.path.remove(str(base))
        sys.path.insert(0, str(base))
    modules: dict[str, ModuleType] = {}
    for name in spec.modules:
        try:
            modules[name] = importlib.import_module(name)
        except ImportError as exc:
            if _code_is_there(name, exc):  # the checkout imports, but something it needs does not
                raise ModelLoadError(
                    f"adapter {spec.family!r}: the upstream code of {spec.repo} is there, but importing "
                    f"{name!r} failed: {type(exc).__name__}: {exc}. What to do: {load_problem(exc)[1]}"
                ) from exc
            where = (
                f"from {root}" if root is not None else "(no --upstream-src or $" + spec.env_var + " given)"
            )
            raise _missing(spec, f"cannot import {name!r} {where}: {exc}") from exc
    if spec.requires:
        require_versions(spec.requires, who=f"adapter {spec.family!r} ({spec.repo})")
    first = modules[spec.modules[0]]
    located = Path(getattr(first, "__file__", "") or ".").resolve()
    identity = {
        "repo": spec.repo,
        "path": str(root if root is not None else located.parent),
        "commit": _git_commit(root) if root is not None else None,
    }
    return {"modules": modules, "identity": identity}
