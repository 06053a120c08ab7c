"""Every option is declared once: the command line, the Python API, the estimators'
signatures and docs/options.md must agree with the declarations (entprobe/_spec.py).

These tests fail on any drift: a flag added by hand, a default changed in one place,
an API keyword that no group declares, a stale options page.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from entprobe._spec import default_of, flag_of, run_id_dict, specs
from entprobe.cli import main
from entprobe.cli._options import options_reference
from entprobe.models.requests import GenerationSettings, LoadOptions
from entprobe.pipeline.options import EstimatorOptions, ProbeOptions
from entprobe.pipeline.probe import option_group, resolve_options

ROOT = Path(__file__).resolve().parents[1]
GROUPS = {
    "options": ProbeOptions,
    "load": LoadOptions,
    "generation": GenerationSettings,
    "estimator": EstimatorOptions,
}


def _command(name: str) -> click.Command:
    return main.get_command(click.Context(main), name)


def _flags(command: click.Command) -> dict[str, click.Parameter]:
    return {opt: p for p in command.params for opt in (*p.opts, *p.secondary_opts)}


def test_options_page_is_generated_from_the_declarations():
    page = (ROOT / "docs" / "options.md").read_text()
    assert page == options_reference() + "\n", "run: python scripts/write_options_reference.py"


def test_every_declared_flag_is_on_the_probe_command_and_nothing_else_is():
    flags = _flags(_command("probe"))
    declared = set()
    for cls in GROUPS.values():
        for f, spec in specs(cls):
            flag = flag_of(f, spec)
            if flag is None:
                continue
            declared |= {flag} | ({spec.off_flag} if spec.off_flag else set())
            param = flags[flag]
            # The default lives in the declaration; the command passes on only what was typed.
            assert param.default is None, flag
            shown = param.help or ""
            assert spec.help in shown and "[default:" in shown, flag
            if spec.choices:
                assert list(param.type.choices) == list(spec.choices), flag
    inputs = {"--model", "--adapter", "--text-prompts", "--image-prompts", "--levels", "--store"}
    runtime = {
        "--progress",
        "--no-progress",
        "--backend",
        "--address",
        "--workers",
        "--gpus-per-worker",
    }
    assert set(flags) == declared | inputs | runtime


def test_reestimate_takes_exactly_the_estimator_flags():
    flags = set(_flags(_command("reestimate")))
    estimator = {flag_of(f, s) for f, s in specs(EstimatorOptions)}
    assert estimator <= flags
    # --retry-failed is the probe's own option; --device here is where to estimate.
    assert flags - estimator == {
        "--grams",
        "--store",
        "--device",
        "--retry-failed",
        "--progress",
        "--no-progress",
    }


def test_estimator_signatures_have_the_declared_defaults():
    import entprobe.estimators as E

    functions = [
        E.matrix_entropy,
        E.matrix_entropy_from_gram,
        E.conditional_entropy,
        E.conditional_entropy_from_gram,
    ]
    defaults = {f.name: default_of(f) for f, _ in specs(EstimatorOptions)}
    taken = set()
    for fn in functions:
        for name, param in inspect.signature(fn).parameters.items():
            if name in defaults:
                taken.add(name)
                assert param.default == defaults[name], f"{fn.__name__}({name}={param.default!r})"
    assert taken == set(defaults), "an estimator option no estimator function takes"
    # Each option reaches the functions that take it, and only those.
    opts = EstimatorOptions()
    assert set(opts.entropy_kwargs()) == set(inspect.signature(E.matrix_entropy_from_gram).parameters) & set(
        defaults
    )
    assert set(opts.conditional_kwargs()) == set(
        inspect.signature(E.conditional_entropy_from_gram).parameters
    ) & set(defaults)


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_every_option_is_an_api_keyword_routed_to_its_group(group):
    for f, _ in specs(GROUPS[group]):
        if group == "estimator" and f.name == "seed":
            assert option_group("seed") == "generation"  # the estimator's is estimator_seed
            continue
        assert option_group(f.name) == group, f.name
    # entprobe.probe passes every other keyword on to load_and_probe, which routes it.
    import entprobe

    params = inspect.signature(entprobe.probe).parameters
    assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    named = set(params) - {"model", "prompts", "options"}
    declared = {f.name for cls in GROUPS.values() for f, _ in specs(cls)}
    assert named & declared == {"limit"}  # named for its docstring; routed like the others


# A value other than the default for every option, as typed on the command line and
# as the declaration's canonical value.
CLI_VALUES = {
    "--include-special": ("", True),
    "--last-layer": ("normed", "normed"),
    "--image-response-step": ("3,1", (1, 3)),
    "--limit": ("7", 7),
    "--shard": ("2/3", (2, 3)),
    "--retry-failed": ("", True),
    "--save-grams": ("g", Path("g")),
    "--save-images": ("i", Path("i")),
    "--length-thresholds": ("5,9", (5, 9)),
    "--allow-outside-paths": ("", True),
    "--batch-size": ("4", 4),
    "--no-overlap": ("", False),
    "--device": ("cuda:1", "cuda:1"),
    "--dtype": ("bfloat16", "bfloat16"),
    "--trust-remote-code": ("", True),
    "--revision": ("v2", "v2"),
    "--upstream-src": ("up", "up"),
    "--alpha": ("2", 2.0),
    "--kernel": ("linear", "linear"),
    "--sigma": ("0.5", 0.5),
    "--sigma-scale": ("2", 2.0),
    "--pca-dim": ("none", None),
    "--eps": ("0.01", 0.01),
    "--base": ("e", "e"),
    "--normalization": ("subsample", "subsample"),
    "--n-draws": ("3", 3),
    "--estimator-seed": ("5", 5),
    "--prompt-bandwidth": ("own", "own"),
    "--spectrum": ("topk:8", "topk:8"),
    "--max-new-tokens": ("9", 9),
    "--do-sample": ("", True),
    "--temperature": ("0.7", 0.7),
    "--top-p": ("0.9", 0.9),
    "--image-greedy": ("", False),
    "--image-temperature": ("1.5", 1.5),
    "--guidance-scale": ("2", 2.0),
    "--seed": ("11", 11),
    "--image-steps": ("6", 6),
    "--image-size": ("64", 64),
}


def _field_of(flag: str) -> tuple[str, str]:
    for group, cls in GROUPS.items():
        for f, spec in specs(cls):
            if flag in (flag_of(f, spec), spec.off_flag):
                return group, f.name
    raise KeyError(flag)


def test_the_command_line_gives_the_api_the_declared_values(monkeypatch):
    """Every flag typed on `entprobe probe` arrives in the options the library runs with."""
    import entprobe.pipeline.probe as probe_module

    declared = {flag_of(f, s) for cls in GROUPS.values() for f, s in specs(cls) if flag_of(f, s)}
    assert declared <= {f for f in CLI_VALUES if not f.startswith("--no-") and f != "--image-greedy"} | {
        "--overlap",
        "--image-do-sample",
    }
    seen = {}

    def fake(model, store, **kwargs):
        seen["options"] = resolve_options(**{k: v for k, v in kwargs.items() if k not in ("text_prompts",
                                             "image_prompts", "levels", "adapter", "progress")})  # fmt: skip
        raise SystemExit(0)

    monkeypatch.setattr(probe_module, "load_and_probe", fake)
    args = ["probe", "--model", "m", "--store", "s.duckdb", "--text-prompts", "sample:t2i"]
    for flag, (text, _) in CLI_VALUES.items():
        args += [flag] + ([text] if text else [])
    CliRunner().invoke(main, args, catch_exceptions=False)
    opts = seen["options"]
    for flag, (_, expected) in CLI_VALUES.items():
        group, name = _field_of(flag)
        holder = opts if group == "options" else getattr(opts, group)
        assert getattr(holder, name) == expected, flag


def test_run_id_serialisation_leaves_out_only_what_the_declaration_says():
    est = EstimatorOptions()
    assert "prompt_sigma" not in run_id_dict(est) and "spectrum" not in run_id_dict(est)
    assert run_id_dict(est.updated(spectrum="topk:4"))["spectrum"] == "topk:4"
    assert set(run_id_dict(GenerationSettings())) == {
        f.name for f, s in specs(GenerationSettings) if s.run_id == "always"
    }
    assert run_id_dict(GenerationSettings(image_steps=3))["image_steps"] == 3
    probe = run_id_dict(ProbeOptions())
    assert probe == {"include_special": False, "datasets": None}
    assert run_id_dict(ProbeOptions(last_layer="normed"))["last_layer"] == "normed"
    # One spelling per value: equal options hash alike.
    assert (
        EstimatorOptions(base="2", sigma="0.5").to_dict() == EstimatorOptions(base=2.0, sigma=0.5).to_dict()
    )
    assert LoadOptions(dtype="bf16") == LoadOptions(dtype="bfloat16")
