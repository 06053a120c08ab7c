"""Command-line options derived from the option specs (see :mod:`entprobe._spec`).

:func:`group_options` turns an option group (``EstimatorOptions``,
``GenerationSettings``, ``LoadOptions``, ``ProbeOptions``) into click options: the
flag, the type and bounds, the choices, the help and the default all come from the
group's declaration. Every generated option defaults to "not given", so a command
passes on only what the user typed (:func:`given`) and the library fills in the
declared defaults: a default therefore lives in one place.

:func:`options_reference` writes ``docs/options.md`` from the same declarations
(``scripts/write_options_reference.py``; a test fails when the page is stale).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import click

from .._spec import describe_default, flag_of, reference_rows, specs

__all__ = ["GROUPS", "given", "group_options", "options_reference"]


def _groups() -> dict[str, type]:
    from ..models.requests import GenerationSettings, LoadOptions
    from ..pipeline.options import EstimatorOptions, ProbeOptions

    return {
        "probe": ProbeOptions,
        "load": LoadOptions,
        "generation": GenerationSettings,
        "estimator": EstimatorOptions,
    }


#: group key -> (title in the docs, what the group is)
GROUPS = {
    "probe": ("Probe options", "`ProbeOptions` (`entprobe.pipeline`): the run itself."),
    "load": ("Load options", "`LoadOptions` (`entprobe.models`): how the adapter loads the checkpoint."),
    "generation": (
        "Generation settings",
        "`GenerationSettings` (`entprobe.models`): text and image generation.",
    ),
    "estimator": (
        "Estimator options",
        "`EstimatorOptions` (`entprobe.pipeline`): the keywords of `matrix_entropy` / `conditional_entropy`.",
    ),
}


class _Checked(click.ParamType):
    """A value read by the spec's own function (a ValueError is a usage error); the
    text itself is passed on and read again by :func:`given`."""

    def __init__(self, read: Callable[[str], Any], name: str) -> None:
        self.read, self.name = read, name

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        try:
            self.read(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        return value


def _click_type(spec: Any, metavar: str) -> Any:
    kind = spec.cli_type
    if spec.choices:
        return click.Choice(list(spec.choices))
    if kind is int:
        if spec.minimum is None and spec.maximum is None:
            return click.INT
        return click.IntRange(min=spec.minimum, max=spec.maximum, min_open=spec.min_open)
    if kind is float:
        if spec.minimum is None and spec.maximum is None:
            return click.FLOAT
        return click.FloatRange(min=spec.minimum, max=spec.maximum, min_open=spec.min_open)
    if kind == "path":
        return click.Path(file_okay=False)
    if callable(kind) and kind is not str:
        return _Checked(kind, metavar)
    return click.STRING


_METAVARS: dict[Any, str] = {int: "N", float: "X", "path": "DIR"}


def _dest(group: str, name: str) -> str:
    return f"{group}__{name}"


def group_options(
    group: str,
    *,
    default_note: str | None = None,
    only: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Click options for the fields of ``group`` (a key of :data:`GROUPS`) that have a
    flag. ``default_note`` replaces the shown default (e.g. "the original run's");
    ``only`` / ``exclude`` pick fields by name."""
    cls = _groups()[group]
    keep = None if only is None else set(only)
    decorators = []
    for f, spec in specs(cls):
        flag = flag_of(f, spec)
        if flag is None or f.name in set(exclude) or (keep is not None and f.name not in keep):
            continue
        default = default_note or describe_default(f, spec)
        help_text = f"{spec.help} [default: {default}]"
        if spec.cli_type is bool:
            decl = f"{flag}/{spec.off_flag}" if spec.off_flag else flag
            decorators.append(
                click.option(decl, _dest(group, f.name), is_flag=True, default=None, help=help_text)
            )
            continue
        metavar = spec.metavar or (None if spec.choices else _METAVARS.get(spec.cli_type, "TEXT"))
        decorators.append(
            click.option(
                flag, _dest(group, f.name), type=_click_type(spec, metavar or "TEXT"), default=None,
                metavar=metavar, help=help_text,
            )
        )  # fmt: skip

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        for dec in reversed(decorators):
            func = dec(func)
        return func

    return decorate


def given(kwargs: dict[str, Any], group: str) -> dict[str, Any]:
    """Pop ``group``'s options from a command's kwargs: ``{field: value}`` of the
    options the user gave (values read by the spec where it has its own reader)."""
    out = {}
    for f, spec in specs(_groups()[group]):
        value = kwargs.pop(_dest(group, f.name), None)
        if value is None:
            continue
        read = spec.cli_type
        out[f.name] = read(value) if callable(read) and read not in (int, float, str, bool) else value
    return out


def options_reference() -> str:
    """``docs/options.md``: every option of every group, from the declarations."""
    lines = [
        "# Options reference",
        "",
        "<!-- Generated from the option declarations by scripts/write_options_reference.py;",
        "     do not edit by hand (tests/test_options_spec.py fails when this page is stale). -->",
        "",
        "Every option is declared once, in its group's dataclass; the command-line flags, the",
        "validation, the run id and this page are derived from that declaration. In Python,",
        "`entprobe.probe(...)` and `entprobe.pipeline.load_and_probe(...)` take any option below",
        'by its name (`batch_size=8`, `dtype="bfloat16"`, `alpha=2.0`), or a whole group',
        "(`estimator={...}`, `generation=GenerationSettings(...)`). The estimator's `seed` is",
        "`estimator_seed` there, as on the command line. *Run id*: whether the option",
        "enters the run id (a run with other values is another run; resuming needs the same).",
        "",
    ]
    for key, cls in _groups().items():
        title, about = GROUPS[key]
        lines += [
            f"## {title}",
            "",
            about,
            "",
            "| option | flag | default | accepted | run id | what it does |",
        ]
        lines.append("|---|---|---|---|---|---|")
        for row in reference_rows(cls):
            cells = [f"`{row['option']}`", f"`{row['flag']}`" if row["flag"].startswith("-") else row["flag"]]
            cells += [row["default"], row["accepted"], row["run id"], row["help"]]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)
