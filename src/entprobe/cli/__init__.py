"""The ``entprobe`` command line: it only parses options and calls the library.

Each command group lives in its own module and is imported lazily, so that
``entprobe --help`` starts without importing torch or transformers.
"""

from __future__ import annotations

import importlib

import click

from entprobe.cli._common import threads_option

# command name -> "module:attribute" of a click.Command, imported on first use.
_COMMANDS: dict[str, str] = {
    "validate": "entprobe.cli.estimator_cmds:validate",
    "bench": "entprobe.cli.estimator_cmds:bench",
    "probe": "entprobe.cli.probe_cmds:probe",
    "demo": "entprobe.cli.demo_cmds:demo",
    "merge": "entprobe.cli.store_cmds:merge",
    "export": "entprobe.cli.store_cmds:export",
    "reestimate": "entprobe.cli.store_cmds:reestimate",
    "status": "entprobe.cli.store_cmds:status",
    "models": "entprobe.cli.probe_cmds:models",
    "datasets": "entprobe.cli.data_cmds:datasets",
    "report": "entprobe.cli.report_cmds:report",
    "correlate": "entprobe.cli.report_cmds:correlate",
}

# One-line help shown by `entprobe --help` without importing the command modules.
_SHORT_HELP: dict[str, str] = {
    "validate": "Re-run the paper's synthetic validations of the estimators.",
    "bench": "Time the estimators against a naive per-layer reference.",
    "probe": "Probe a model layer by layer on prompt sets into a results store.",
    "demo": "Run the whole pipeline on tiny built-in models and sample prompts.",
    "merge": "Combine the stores of sharded runs into one.",
    "export": "Export a results store to Parquet or CSV.",
    "reestimate": "Recompute metrics from saved Gram matrices, without the model.",
    "status": "Progress of the runs in a store, also while a probe writes.",
    "models": "List the model adapters and what each supports.",
    "datasets": "List prompt-set formats, or inspect one prompt set.",
    "report": "Write the HTML report, figures and tables from results stores.",
    "correlate": "Spearman correlation of per-model probes with benchmark scores.",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, _SHORT_HELP.get(name, "")) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="entprobe")
@threads_option(
    "CPU threads for torch's and BLAS's linear algebra. Default: the usable cores "
    "minus those other processes keep busy (sampled at start, and again during a probe; at "
    "least 1), so a busy machine does not make idle threads spin against other work (see "
    "entprobe/_threads.py)."
)
@click.option(
    "--max-memory",
    default=None,
    metavar="SIZE",
    help="Memory the estimators may hold at once, e.g. 8G (layers are estimated in chunks "
    "that fit; numbers do not change). Default: half of the memory available "
    "(ENTPROBE_MAX_MEMORY).",
)
def main(threads: int | None, max_memory: str | None) -> None:
    """entprobe: layer-by-layer entropy probing of unified multimodal models.

    Prompt level: matrix-based Renyi entropy of a prompt's token states per layer.
    Response level: the conditional entropy proxy H(prompt+response) - H(prompt).
    """
    import os

    from entprobe._threads import apply_thread_policy

    apply_thread_policy(threads)
    if max_memory is not None:
        from entprobe.estimators._chunks import parse_memory

        try:
            parse_memory(max_memory)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--max-memory") from None
        os.environ["ENTPROBE_MAX_MEMORY"] = max_memory


__all__ = ["main"]
