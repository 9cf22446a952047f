import subprocess
import sys

import pytest
from click.testing import CliRunner

from posebowl import __version__
from posebowl.cli.main import cli


def test_version():
    res = CliRunner().invoke(cli, ["--version"])
    assert __version__ in res.output


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_has_help(name):
    res = CliRunner().invoke(cli, [name, "--help"])
    assert res.exit_code == 0 and "Usage:" in res.output


@pytest.mark.slow  # a new process, or many
def test_pack_cli_exit_code_and_message(tmp_path):
    (tmp_path / "src").mkdir()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "posebowl.cli.main",
            "pack",
            str(tmp_path / "src"),
            "-o",
            str(tmp_path / "s.zip"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 3
    assert "no main.sh at its root" in proc.stderr


def test_public_api_is_sorted():
    import posebowl

    assert posebowl.__all__ == sorted(posebowl.__all__)
