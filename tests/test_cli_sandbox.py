"""`posebowl run`, `shell` and `runtime` through the real command line."""

import json
import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from posebowl.cli.main import cli
from posebowl.engines import cgroups
from posebowl.engines.base import Status

from .sandbox_helpers import (
    WRITE_VALID,
    bare_runtime,
    fast_limits,
    make_data,
    make_zip,
    needs_sandbox,
    posebowl,
    run_zip,
)

ROOT = Path(__file__).resolve().parents[1]


def test_run_help_documents_every_exit_code():
    res = CliRunner().invoke(cli, ["run", "--help"])
    assert res.exit_code == 0
    for name, code in [("SUCCESS", 0), ("FAILED", 10), ("TIMEOUT", 11), ("OUT_OF_MEMORY", 12)]:
        assert f"{code}  {name}" in res.output
    assert "INVALID_SUBMISSION" in res.output and "INVALID_OUTPUT" in res.output


@pytest.mark.slow  # a new process, or many
def test_runtime_lock_check_passes_on_the_committed_lock():
    res = posebowl("runtime", "lock", "--check")
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize(
    ("main", "status"),
    [
        (WRITE_VALID, Status.SUCCESS),
        ("exit 5\n", Status.FAILED),
        ("sleep 30\n", Status.TIMEOUT),
        ("echo no csv\n", Status.INVALID_OUTPUT),
    ],
)
@pytest.mark.sandbox
@needs_sandbox()
def test_run_exit_code_is_the_status(tmp_path, main, status):
    data, _ = make_data(tmp_path)
    z = make_zip(tmp_path / "submission.zip", {"main.sh": main})
    venv = bare_runtime(tmp_path.parent).venv
    res = posebowl(
        "run", z, "--data", data, "--runtime", venv, "--time-limit", "2s", "--json", "-q"
    )
    assert res.returncode == status.exit_code, res.stderr
    assert json.loads(res.stdout)["status"] == status.value
    assert (tmp_path / "log.txt").is_file() and (tmp_path / "result.json").is_file()


@pytest.mark.sandbox
@needs_sandbox()
def test_run_cli_renders_the_verdict_and_streams_the_log(tmp_path):
    data, labels = make_data(tmp_path)
    z = make_zip(tmp_path / "submission.zip", {"main.sh": "echo HELLO-FROM-INSIDE\n" + WRITE_VALID})
    venv = bare_runtime(tmp_path.parent).venv
    res = posebowl("run", z, "--data", data, "--runtime", venv, "--labels", labels)
    assert res.returncode == 0, res.stderr
    assert "HELLO-FROM-INSIDE" in res.stdout and "SUCCESS" in res.stdout
    assert "score (mean IoU)" in res.stdout


@pytest.mark.sandbox
@needs_sandbox()
def test_run_with_a_missing_zip_is_an_input_error(tmp_path):
    venv = bare_runtime(tmp_path.parent).venv
    res = posebowl("run", tmp_path / "nope.zip", "--data", tmp_path, "--runtime", venv)
    assert res.returncode == 3 and "Pack one first" in res.stderr


@pytest.mark.slow  # a new process, or many
def test_run_without_a_built_runtime_says_how_to_build(tmp_path):
    res = posebowl("run", tmp_path / "nope.zip", "--runtime", tmp_path)
    assert res.returncode == 4
    assert "runtime build" in res.stderr or "bubblewrap" in res.stderr


@pytest.mark.slow  # a new process, or many
def test_run_without_bwrap_fails_closed(tmp_path):
    data, _ = make_data(tmp_path)
    z = make_zip(tmp_path / "submission.zip", {"main.sh": WRITE_VALID})
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    res = posebowl("run", z, "--data", data, "--engine", "bwrap", env=env)
    assert res.returncode == 4
    assert "bubblewrap (bwrap) is not installed" in res.stderr
    assert not (tmp_path / "submission.csv").exists()


@pytest.mark.sandbox
@needs_sandbox()
def test_shell_runs_a_command_and_returns_its_exit_code(tmp_path):
    data, _ = make_data(tmp_path)
    venv = bare_runtime(tmp_path.parent).venv
    res = posebowl(
        "shell",
        "--data",
        data,
        "--runtime",
        venv,
        "--no-network",
        "--",
        "sh",
        "-c",
        "ls /code_execution/data/images | wc -l; cat /proc/net/dev; exit 5",
    )
    assert res.returncode == 5, res.stderr
    assert "\n3\n" in res.stdout
    ifaces = [
        ln.split(":")[0].strip() for ln in res.stdout.splitlines() if ":" in ln and "|" not in ln
    ]
    assert "lo" in ifaces and "eth0" not in ifaces


@pytest.mark.sandbox
@needs_sandbox()
def test_shell_has_the_network_by_default(tmp_path):
    venv = bare_runtime(tmp_path.parent).venv
    res = posebowl("shell", "--runtime", venv, "--", "cat", "/proc/net/dev")
    host = Path("/proc/net/dev").read_text()
    assert res.returncode == 0, res.stderr
    assert res.stdout.count(":") >= host.count(":") - 1


@pytest.mark.sandbox
@needs_sandbox()
def test_unenforceable_limits_are_said_so(tmp_path, monkeypatch):
    real = cgroups.create
    monkeypatch.setattr(cgroups, "create", lambda limits: real(limits, "", ""))
    data, _ = make_data(tmp_path)
    z = make_zip(tmp_path / "submission.zip", {"main.sh": WRITE_VALID})
    o = run_zip(tmp_path, z, data, limits=fast_limits())
    assert o.verdict.status is Status.SUCCESS
    for k in ("memory", "pids", "cpus"):
        assert o.result["enforced"][k]["enforced"] is False
        assert f"NOT enforced: {k}" in o.log
    assert o.result["enforced"]["time_limit"]["enforced"] is True
    assert o.result["cpu_seconds"] is not None and o.result["notes"]
