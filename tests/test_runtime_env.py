"""The runtime lock and venv (resolution itself needs PyPI and is left to `make lock`)."""

from pathlib import Path

import pytest

from posebowl import runtime_env
from posebowl.errors import SetupError

ROOT = Path(__file__).resolve().parents[1]


def test_the_committed_lock_matches_requirements_in():
    """CI fails here when requirements.in changed without `make lock`."""
    project = runtime_env.Project(ROOT)
    for group in (None, *project.groups()):
        assert runtime_env.lock_problem(project, group) is None


def test_the_lock_pins_every_package_with_hashes():
    text = (ROOT / "runtime" / "requirements.txt").read_text()
    pins = [ln for ln in text.splitlines() if ln and not ln.startswith((" ", "#"))]
    assert pins and all("==" in p for p in pins)
    names = {p.split("==")[0].lower() for p in pins}
    assert {"numpy", "onnxruntime", "openvino", "opencv-python-headless", "pandas"} <= names
    assert "torch" not in names  # torch lives in its optional group
    assert text.count("--hash=sha256:") >= len(pins)


def fake_project(tmp_path: Path) -> runtime_env.Project:
    (tmp_path / "runtime").mkdir()
    (tmp_path / "runtime" / "requirements.in").write_text("numpy==1.26.4\n")
    return runtime_env.Project(tmp_path)


def write_lock(project: runtime_env.Project, in_hash: str) -> None:
    project.lock_file().write_text(f"# requirements-in-sha256: {in_hash}\nnumpy==1.26.4\n")


def test_a_stale_lock_is_detected_offline(tmp_path):
    project = fake_project(tmp_path)
    assert "does not exist" in runtime_env.lock_problem(project)
    write_lock(project, runtime_env.sha256_file(project.requirements_in()))
    assert runtime_env.lock_problem(project) is None
    project.requirements_in().write_text("numpy==1.26.4\nscipy\n")
    assert "not resolved from the current" in runtime_env.lock_problem(project)


def test_build_is_a_no_op_when_the_lock_has_not_changed(tmp_path, monkeypatch):
    project = fake_project(tmp_path)
    write_lock(project, runtime_env.sha256_file(project.requirements_in()))
    calls = []

    def fake_run(cmd, what, env=None):
        calls.append(what)
        if "venv" in cmd:
            venv = Path(cmd[-1])
            (venv / "bin").mkdir(parents=True)
            (venv / "bin" / "python").write_text("")
            (venv / "pyvenv.cfg").write_text(f"home = {tmp_path}/py/bin\n")

    monkeypatch.setattr(runtime_env, "_run", fake_run)
    monkeypatch.setattr(runtime_env, "uv_bin", lambda: "uv")
    first = runtime_env.build(project)
    assert first.changed and "Installing the runtime lock" in calls
    n = len(calls)
    assert not runtime_env.build(project).changed and len(calls) == n
    assert runtime_env.locate(project).venv == project.venv.resolve()
    project.lock_file().write_text(project.lock_file().read_text() + "# changed\n")
    with pytest.raises(SetupError, match="older runtime/requirements.txt"):
        runtime_env.locate(project)
    assert runtime_env.build(project).changed and len(calls) > n


def test_build_refuses_a_stale_lock(tmp_path):
    project = fake_project(tmp_path)
    write_lock(project, "0" * 64)
    with pytest.raises(SetupError, match="make lock"):
        runtime_env.build(project)


def test_locate_says_how_to_build(tmp_path):
    with pytest.raises(SetupError, match="make build"):
        runtime_env.locate(fake_project(tmp_path))


def test_find_project_walks_up(tmp_path):
    project = fake_project(tmp_path)
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert runtime_env.find_project(deep).root == project.root.resolve()
