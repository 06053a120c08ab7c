"""The command line lists every command and each command documents itself."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from entprobe.cli import _COMMANDS, main

EXPECTED = {
    "bench",
    "correlate",
    "datasets",
    "demo",
    "export",
    "merge",
    "models",
    "probe",
    "reestimate",
    "report",
    "status",
    "validate",
}


def test_help_lists_every_command():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    listed = {line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line.strip()}
    assert listed == EXPECTED == set(_COMMANDS)


@pytest.mark.parametrize("command", sorted(EXPECTED))
def test_each_command_has_help(command):
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and len(result.output.splitlines()) > 3


def test_help_does_not_import_torch():
    # The CLI must start fast: heavy backends load only inside commands.
    code = (
        "import sys; from entprobe.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False False"


def test_unknown_command_fails_with_a_message():
    result = CliRunner().invoke(main, ["nonsense"])
    assert result.exit_code != 0
    assert "No such command" in result.output
