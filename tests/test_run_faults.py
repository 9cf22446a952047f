"""However a run ends, it writes result.json and leaves nothing behind: signals to posebowl,
trees no path can name, zips that cannot be opened, posebowl killed outright. What can differ
between engines runs on every healthy one (the ``engine`` fixture: bwrap, docker)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from posebowl.engines.base import Engine, Status

from .sandbox_helpers import (
    WRITE_VALID,
    bare_runtime,
    containers_of,
    docker_test_image,
    make_data,
    make_zip,
    needs_sandbox,
    posebowl,
    run_zip,
    sandbox_processes,
)
from .test_zip_intake import HOSTILE


def _start(
    tmp_path: Path, main_sh: str, engine: str = "bwrap"
) -> tuple[subprocess.Popen[bytes], Path, Path]:
    """``posebowl run`` in a new process, with its scratch folders in tmp_path/scratch."""
    data, _ = make_data(tmp_path)
    z = make_zip(tmp_path / "submission.zip", {"main.sh": main_sh})
    venv = bare_runtime(tmp_path.parent).venv
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = {**os.environ, "POSEBOWL_TMPDIR": str(scratch), "POSEBOWL_IMAGE": docker_test_image()}
    cmd = [sys.executable, "-m", "posebowl", "run", z, "--data", data, "--runtime", venv, "-q"]
    cmd += ["--engine", engine]
    proc = subprocess.Popen(
        [str(c) for c in cmd], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    return proc, tmp_path / "log.txt", scratch


def _wait_for(log: Path, text: str, proc: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        got = log.read_text() if log.is_file() else ""
        if text in got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in {log}")


def _run_id(log_text: str) -> str:
    m = re.search(r"run ([0-9a-f]{32})\)", log_text)
    assert m, log_text
    return m.group(1)


BUSY = "head -c 20000000 /dev/zero > big.bin\nsleep 1000 & sleep 1000\n"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_to_posebowl_is_a_verdict_and_leaves_nothing(
    tmp_path: Path, sig: int, engine: Engine
) -> None:
    proc, log, scratch = _start(tmp_path, BUSY, engine.name)
    text = _wait_for(log, "posebowl-entrypoint: running:", proc)
    time.sleep(0.3)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == Status.INTERRUPTED.exit_code, stderr
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["status"] == "INTERRUPTED"
    assert signal.Signals(sig).name in result["message"] or sig == signal.SIGINT
    assert list(scratch.iterdir()) == [], "a scratch folder was left behind"
    assert sandbox_processes(_run_id(text)) == []
    if engine.name == "docker":
        assert containers_of(proc.pid) == [], "the container was left behind"


@pytest.mark.sandbox
@needs_sandbox()
def test_posebowl_killed_outright_takes_the_sandbox_with_it(tmp_path: Path) -> None:
    proc, log, _ = _start(tmp_path, "sleep 1000 & sleep 1000\n")
    run_id = _run_id(_wait_for(log, "posebowl-entrypoint: running:", proc))
    assert sandbox_processes(run_id), "the sandbox never started"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 5
    while sandbox_processes(run_id) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sandbox_processes(run_id) == []  # only this run's processes: others may be running


DEEP = (
    "python - <<'EOF'\n"
    "import os\n"
    "for _ in range(3000):  # ~15,000 characters of path: more than the OS accepts\n"
    "    os.mkdir('deep')\n"
    "    os.chdir('deep')\n"
    "open('leaf.txt', 'w').write('x')\n"
    "os.chmod('.', 0)\n"
    "EOF\n"
)


def test_a_tree_no_path_can_name_is_cleaned_up(tmp_path: Path, monkeypatch, engine: Engine) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("POSEBOWL_TMPDIR", str(scratch))
    data, _ = make_data(tmp_path)
    z = make_zip(tmp_path / "submission.zip", {"main.sh": DEEP + WRITE_VALID})
    o = run_zip(tmp_path, z, data, engine=engine)
    assert o.verdict.status is Status.SUCCESS, o.log
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize("case", ["encrypted", "bad-crc", "file-and-folder", "truncated"])
def test_a_zip_that_cannot_be_opened_is_a_verdict(
    tmp_path: Path, case: str, engine: Engine
) -> None:
    make, rule = HOSTILE[case]
    z = tmp_path / "submission.zip"
    z.write_bytes(make())
    data, _ = make_data(tmp_path)
    o = run_zip(tmp_path, z, data, engine=engine)
    assert o.verdict.status is Status.INVALID_SUBMISSION, o.log
    assert rule in [p["rule"] for p in o.result["problems"]]


def test_a_huge_submission_csv_is_neither_copied_nor_read(tmp_path: Path, engine: Engine) -> None:
    data, _ = make_data(tmp_path)
    main = (
        WRITE_VALID
        + "head -c 30000000 /dev/zero | tr '\\0' '1' >> /code_execution/submission/submission.csv\n"
    )
    o = run_zip(tmp_path, make_zip(tmp_path / "s.zip", {"main.sh": main}), data, engine=engine)
    assert o.verdict.status is Status.INVALID_OUTPUT, o.log
    assert [p["rule"] for p in o.result["problems"]] == ["too_large"]
    assert "it was not read" in o.result["message"]
    assert not (o.out / "submission.csv").exists()


@pytest.mark.sandbox
@needs_sandbox()
def test_smoke_report_with_labels_that_are_not_utf8_is_a_sentence(tmp_path: Path) -> None:
    data, labels = make_data(tmp_path, n=3, labels_dir="data_labels")
    labels.write_bytes(b"image_id,xmin,ymin,xmax,ymax\n\xff\xfe,1,2,3,4\n")
    (tmp_path / "submission").mkdir()
    z = make_zip(tmp_path / "submission" / "submission.zip", {"main.sh": WRITE_VALID})
    runtime = bare_runtime(tmp_path.parent).venv
    res = posebowl(
        "run",
        z,
        "--data",
        data,
        "--runtime",
        runtime,
        "--smoke",
        "1",
        "--labels",
        labels,
        "--report",
        "-q",
    )
    assert "Traceback" not in res.stderr, res.stderr
    assert res.returncode == 0, res.stderr  # the run itself succeeded
    assert "not UTF-8" in res.stdout + res.stderr


@pytest.mark.parametrize(
    ("module", "advice"),
    [
        ("ultralytics", "make build RUNTIME=official"),
        ("torch", "make build RUNTIME=official"),
        ("no_such_pkg_anywhere", "bundle its wheel in the zip"),
    ],
)
def test_a_missing_module_is_diagnosed(
    tmp_path: Path, module: str, advice: str, engine: Engine
) -> None:
    data, _ = make_data(tmp_path)
    z = make_zip(tmp_path / "s.zip", {"main.sh": f"python -c 'import {module}'\n"})
    o = run_zip(tmp_path, z, data, engine=engine)
    assert o.verdict.status is Status.FAILED, o.log
    assert advice in o.result["message"] and module in o.result["message"]
