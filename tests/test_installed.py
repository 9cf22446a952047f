"""posebowl as a user installs it: the wheel in a fresh venv, run from a folder that is not a
checkout, building its own runtime and running a submission end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .sandbox_helpers import needs_sandbox

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.sandbox, needs_sandbox()]


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A venv with posebowl's wheel installed (not editable), and a clean environment."""
    root = tmp_path_factory.mktemp("installed")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSEBOWL_", "VIRTUAL_ENV"))}
    env["POSEBOWL_HOME"] = str(root / "home")
    dist = root / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(ROOT)],
         root, env)  # fmt: skip
    (wheel,) = dist.glob("posebowl-*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], root, env)
    _run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], root, env)
    return venv, env


def test_the_wheel_carries_the_runtimes_and_the_examples(installed) -> None:
    venv, _ = installed
    (wheel,) = (venv.parent / "dist").glob("posebowl-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "posebowl/runtimes/definition/official.txt",
        "posebowl/runtimes/definition/slim.txt",
        "posebowl/runtimes/definition/Dockerfile",
        "posebowl/runtimes/definition/tests/test_packages.py",
        "posebowl/runtimes/compile_bytecode.py",
        "posebowl/run/entrypoint.sh",
        "posebowl/run/confine.py",
        "posebowl/examples/benchmark/model/model.xml",
        "posebowl/examples/quickstart/main.sh",
    ):
        assert needed in names, needed


def test_an_installed_posebowl_runs_a_submission_outside_the_checkout(installed) -> None:
    venv, env = installed
    work = venv.parent / "elsewhere"  # not a checkout: nothing of the repository is here
    work.mkdir()
    posebowl = str(venv / "bin" / "posebowl")
    version = _run([str(venv / "bin" / "python"), "-m", "posebowl", "--version"], work, env)
    assert "posebowl" in version.stdout
    _run([posebowl, "runtime", "build", "--runtime", "slim"], work, env)
    assert (Path(env["POSEBOWL_HOME"]) / ".runtime" / "slim").is_dir()
    _run([posebowl, "data", "sample", "--n", "4", "--out", "data", "--labels-out", "labels"],
         work, env)  # fmt: skip
    _run([posebowl, "examples", "copy", "quickstart", "mine"], work, env)
    _run([posebowl, "pack", "mine", "-o", "submission/submission.zip"], work, env)
    res = _run(
        [posebowl, "run", "--data", "data", "--labels", "labels/test_labels.csv", "--json", "-q"],
        work,
        env,
    )
    result = json.loads(res.stdout)
    assert result["status"] == "SUCCESS" and result["score"] is not None
    assert result["runtime"]["name"] == "slim"
