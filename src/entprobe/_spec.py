"""Declare an option once: the spec every option group is built from.

An option group is a frozen dataclass (:class:`~entprobe.pipeline.EstimatorOptions`,
:class:`~entprobe.models.GenerationSettings`, :class:`~entprobe.models.LoadOptions`,
:class:`~entprobe.pipeline.ProbeOptions`) whose fields are made with :func:`option`.
Each field carries one :class:`Spec`: type, constraint, default, help, command-line
flag, and whether it enters the run id. Everything else is derived from it:

- canonical values at construction (:func:`canonicalise`, called by the group's
  ``__post_init__``): ``--base 2`` and ``base=2.0`` are the same option, so they hash
  to the same run id;
- the constraint checks (:func:`check_all`);
- the run-id serialisation (:func:`run_id_dict`): ``run_id="always"`` fields are
  always recorded, ``"unless-default"`` ones only when set (so run ids that predate an
  option do not change), ``"never"`` ones describe the session, not the numbers;
- the click options (:mod:`entprobe.cli._options`) and the options reference in
  ``docs/options.md`` (:func:`reference_rows`; a test fails when the page, the CLI,
  the API signatures and the spec disagree).

This module imports nothing heavy (no torch, no click), so the command line can build
its options from the groups without loading a model backend.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ProbeInputError

__all__ = [
    "RUN_ID_POLICIES",
    "Spec",
    "canonicalise",
    "check_all",
    "coerce_integer",
    "coerce_number",
    "coerce_number_or",
    "default_of",
    "describe_default",
    "flag_of",
    "jsonable",
    "option",
    "reference_rows",
    "replace_checked",
    "run_id_dict",
    "session_dict",
    "specs",
]

#: Whether a field enters the run id: always, only when it differs from its default,
#: never (settings of the session: folders, batch size, shard ...), or "nested": it
#: shapes the run id through another part of the run configuration, as the spec's
#: ``run_id_note`` says (the revision through the model identity, say).
RUN_ID_POLICIES = ("always", "unless-default", "never", "nested")


@dataclass(frozen=True)
class Spec:
    """What is declared about one option.

    Attributes:
        help: one sentence for ``--help`` and the docs (no default in it).
        constraint: the accepted values in words (docs, messages), e.g. ``"> 0"``.
        flag: the command-line flag; ``""`` derives ``--name-with-dashes``; None: the
            option is not on the command line (API only).
        off_flag: booleans: the flag that sets False (``--greedy`` for ``--do-sample``);
            None: a plain on/off flag.
        cli_type: how the command line reads the text: ``int``, ``float``, ``str``,
            ``bool``, ``"path"`` (a folder), or a function ``str -> value`` raising
            ValueError with the message (a usage error, exit code 2).
        choices: the accepted words (the command line offers exactly these).
        minimum, min_open: a lower bound the command line enforces (and the docs show).
        maximum: an upper bound, likewise.
        coerce: ``(value, name) -> canonical value`` at construction (spelling only;
            raises :class:`ProbeInputError` for a value of the wrong kind).
        check: ``value -> None`` raising :class:`ProbeInputError`: the range checks run
            by the group's ``check()`` (estimator options) or at construction.
        run_id: one of :data:`RUN_ID_POLICIES`.
        run_id_note: for ``"nested"``: where it enters (docs).
        metavar: placeholder in ``--help``.
        default_text: the default in words where the value alone says too little
            (``"the set's terciles"`` for None).
    """

    help: str
    constraint: str = ""
    flag: str | None = ""
    off_flag: str | None = None
    cli_type: Any = str
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    min_open: bool = False
    maximum: float | None = None
    coerce: Callable[[Any, str], Any] | None = None
    check: Callable[[Any], Any] | None = None
    run_id: str = "always"
    run_id_note: str = ""
    metavar: str | None = None
    default_text: str | None = None

    def __post_init__(self) -> None:
        if self.run_id not in RUN_ID_POLICIES:
            raise ValueError(f"run_id must be one of {RUN_ID_POLICIES}; got {self.run_id!r}")


def option(
    default: Any = dataclasses.MISSING, *, factory: Callable[[], Any] | None = None, **spec: Any
) -> Any:
    """A dataclass field carrying its :class:`Spec` (``option(1.01, help=..., ...)``).

    Unless given, ``cli_type`` follows the default's type (bool, int, float, else text)
    and so does ``coerce`` for numbers (:func:`coerce_number`, :func:`coerce_integer`:
    one spelling per value, so ``5`` and ``5.0`` hash to one run id).
    """
    kind = next((t for t in (bool, int, float) if type(default) is t), str)
    spec.setdefault("cli_type", kind)
    if kind in (int, float):
        spec.setdefault("coerce", coerce_integer if kind is int else coerce_number)
    meta = {"spec": Spec(**spec)}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def specs(group: Any) -> Iterator[tuple[dataclasses.Field, Spec]]:
    """The ``(field, spec)`` pairs of an option group (class or instance), in order."""
    for f in dataclasses.fields(group):
        if "spec" in f.metadata:
            yield f, f.metadata["spec"]


def default_of(f: dataclasses.Field) -> Any:
    """A field's default value (calling its factory)."""
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def flag_of(f: dataclasses.Field, spec: Spec) -> str | None:
    """The command-line flag of a field (None: not on the command line)."""
    if spec.flag is None:
        return None
    return spec.flag or "--" + f.name.replace("_", "-")


def canonicalise(obj: Any) -> None:
    """Replace each field of a frozen group by its canonical value (``coerce``, which
    also accepts None where None is a value), then check the bounds the spec declares
    (``minimum``, ``maximum``). Called from the group's ``__post_init__``.

    Raises:
        ProbeInputError: a value of the wrong kind or out of its bounds, naming the option.
    """
    for f, spec in specs(obj):
        if spec.coerce is not None:
            object.__setattr__(obj, f.name, spec.coerce(getattr(obj, f.name), f.name))
        value = getattr(obj, f.name)
        if value is None or isinstance(value, bool) or (spec.minimum is None and spec.maximum is None):
            continue
        number = coerce_number(value, f.name)
        low_ok = spec.minimum is None or (number > spec.minimum if spec.min_open else number >= spec.minimum)
        if not (low_ok and (spec.maximum is None or number <= spec.maximum)):
            raise ProbeInputError(f"{f.name} must be {spec.constraint}; got {value!r}")


def check_all(obj: Any) -> None:
    """Run every field's ``check`` (each raises :class:`ProbeInputError` naming its option)."""
    for f, spec in specs(obj):
        if spec.check is not None:
            spec.check(getattr(obj, f.name))


def replace_checked(obj: Any, overrides: Mapping[str, Any], *, what: str) -> Any:
    """``dataclasses.replace`` that names unknown options instead of a TypeError.

    Raises:
        ProbeInputError: a key that is not a field of the group.
    """
    names = {f.name for f in dataclasses.fields(obj)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ProbeInputError(f"unknown {what} option(s) {unknown}; known: {sorted(names)}")
    return dataclasses.replace(obj, **overrides)


def run_id_dict(obj: Any) -> dict[str, Any]:
    """The fields that determine the numbers, as recorded in the run configuration
    and hashed into the run id (see :data:`RUN_ID_POLICIES`)."""
    out: dict[str, Any] = {}
    for f, spec in specs(obj):
        value = getattr(obj, f.name)
        if spec.run_id in ("never", "nested"):
            continue
        if spec.run_id == "unless-default" and value == default_of(f):
            continue
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def session_dict(obj: Any) -> dict[str, Any]:
    """The ``run_id="never"`` fields: what the session did, recorded beside the run."""
    return {f.name: getattr(obj, f.name) for f, spec in specs(obj) if spec.run_id == "never"}


def describe_default(f: dataclasses.Field, spec: Spec) -> str:
    """The default as the docs and ``--help`` show it."""
    if spec.default_text is not None:
        return spec.default_text
    value = default_of(f)
    if isinstance(value, bool):
        if spec.off_flag is None:
            return "on" if value else "off"
        return spec.off_flag.lstrip("-") if not value else flag_of(f, spec).lstrip("-")  # type: ignore[union-attr]
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


def reference_rows(group: Any) -> list[dict[str, str]]:
    """One row per option of ``group`` for the options reference: name, flag, default,
    accepted values, whether it enters the run id, help."""
    rows = []
    for f, spec in specs(group):
        flag = flag_of(f, spec)
        if flag is not None and spec.off_flag:
            flag = f"{flag}/{spec.off_flag}"
        accepted = spec.constraint or (" | ".join(spec.choices) if spec.choices else "")
        if not accepted:
            accepted = {bool: "on / off", "path": "a folder", int: "an integer", float: "a number"}.get(
                spec.cli_type, "text"
            )
        rows.append(
            {
                "option": f.name,
                "flag": flag or "(API only)",
                "default": describe_default(f, spec),
                "accepted": accepted,
                "run id": {"always": "yes", "unless-default": "when set", "never": "no"}.get(
                    spec.run_id, spec.run_id_note
                ),
                "help": spec.help,
            }
        )
    return rows


# --- canonical spellings shared by the groups -----------------------------------------


def coerce_number(value: Any, name: str) -> float:
    """A number, as float (``"0.5"`` and ``0.5`` are one option)."""
    if isinstance(value, bool):
        raise ProbeInputError(f"{name} must be a number; got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ProbeInputError(f"{name} must be a number; got {value!r}") from None


def coerce_number_or(*words: str) -> Callable[[Any, str], float | str]:
    """A number (as float) or one of ``words`` (lower case)."""

    def coerce(value: Any, name: str) -> float | str:
        if isinstance(value, str) and value.strip().lower() in words:
            return value.strip().lower()
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ProbeInputError(
                f"{name} must be a number or {' / '.join(map(repr, words))}; got {value!r}"
            ) from None

    return coerce


def coerce_integer(value: Any, name: str) -> int:
    """An integer (``"64"`` and ``64`` are one option; ``2.5`` is refused)."""
    try:
        out = int(value)
    except (TypeError, ValueError):
        raise ProbeInputError(f"{name} must be an integer; got {value!r}") from None
    if out != value and not isinstance(value, str):
        raise ProbeInputError(f"{name} must be an integer; got {value!r}")
    return out


def jsonable(value: Any) -> Any:
    """A configuration made JSON-able: non-finite floats and paths as strings."""
    from pathlib import PurePath

    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value
