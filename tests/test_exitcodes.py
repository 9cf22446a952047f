"""Exit codes are defined once (posebowl.exitcodes); the help and README say the same."""

from pathlib import Path

from click.testing import CliRunner

from posebowl import exitcodes
from posebowl.cli.main import cli
from posebowl.engines.base import Status
from posebowl.errors import InputError, InvalidSubmissionError, PackError, SetupError

ROOT = Path(__file__).resolve().parents[1]


def test_every_status_has_one_distinct_code():
    assert {s.value for s in Status} == set(exitcodes.RUN)
    codes = [c.code for c in exitcodes.RUN_CODES]
    assert len(set(codes)) == len(codes)
    assert not set(codes) - {exitcodes.SUCCESS} & {c.code for c in exitcodes.COMMON}


def test_errors_use_the_named_codes():
    assert InputError("x").exit_code == PackError("x").exit_code == exitcodes.INPUT
    assert SetupError("x").exit_code == exitcodes.SETUP
    assert InvalidSubmissionError([]).exit_code == exitcodes.INVALID


def test_readme_holds_the_table():
    readme = (ROOT / "README.md").read_text()
    assert exitcodes.markdown_table() in readme


def test_help_lists_every_code():
    top = CliRunner().invoke(cli, ["--help"]).output
    run = CliRunner().invoke(cli, ["run", "--help"]).output
    for c in exitcodes.COMMON:
        assert f"{c.code:>3}  {c.meaning}"[:40] in top
    for r in exitcodes.RUN_CODES:
        assert f"{r.code:>3}  {r.status}" in run
