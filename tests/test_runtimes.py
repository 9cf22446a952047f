"""The runtimes: two locks from one definition, checked offline; builds that never break the
last good venv. (Resolving needs PyPI: `make lock`; building for real is `make build`.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from posebowl import runtimes, workspace
from posebowl.errors import InputError, SetupError
from posebowl.runtimes import build, locks
from posebowl.runtimes.locate import STAMP


def test_the_committed_locks_match_their_sources():
    """CI fails here when a .in file changed without `make lock`."""
    for name in runtimes.NAMES:
        assert runtimes.spec(name).problem() is None, name


def test_slim_is_a_selection_of_official_at_the_same_pins():
    official, slim = runtimes.spec("official").pins(), runtimes.spec("slim").pins()
    assert slim and set(slim) < set(official)
    assert {k: official[k] for k in slim} == slim
    assert {"torch", "ultralytics", "tensorflow-cpu"} <= set(official) - set(slim)
    assert official["torch"] == "2.1.0" and official["ultralytics"] == "8.1.34"
    assert official["openvino"] == slim["openvino"] == "2023.2.0"


def test_every_pin_has_hashes():
    for name in runtimes.NAMES:
        text = runtimes.spec(name).lock.read_text()
        entries = locks.parse_lock(text)
        assert entries and all("--hash=sha256:" in "".join(e.lines) for e in entries.values())


def _definition(tmp_path: Path) -> Path:
    d = tmp_path / "definition"
    d.mkdir()
    for name in runtimes.NAMES:
        for ext in ("in", "txt"):
            (d / f"{name}.{ext}").write_bytes((locks.DEFINITION / f"{name}.{ext}").read_bytes())
    return d


def test_deriving_slim_again_gives_the_same_bytes(tmp_path):
    d = _definition(tmp_path)
    before = (d / "slim.txt").read_bytes()
    locks.derive(runtimes.Spec("slim", d))
    assert (d / "slim.txt").read_bytes() == before


def test_stale_locks_are_found_offline(tmp_path):
    d = _definition(tmp_path)
    slim, official = runtimes.Spec("slim", d), runtimes.Spec("official", d)
    (d / "slim.in").write_text((d / "slim.in").read_text() + "rich\n")
    assert "slim.txt was not made from the current slim.in" in (slim.problem() or "")
    (d / "slim.in").write_bytes((locks.DEFINITION / "slim.in").read_bytes())
    (d / "official.txt").write_text((d / "official.txt").read_text() + "# edited\n")
    assert "not selected from the current official.txt" in (slim.problem() or "")
    assert official.problem() is None  # its own source did not change


def test_a_derived_runtime_takes_names_only_and_nothing_the_base_lacks(tmp_path):
    d = _definition(tmp_path)
    (d / "slim.in").write_text("numpy==1.26.4\n")
    with pytest.raises(InputError, match="not a bare package name"):
        locks.derive(runtimes.Spec("slim", d))
    (d / "slim.in").write_text("leftpad\n")
    with pytest.raises(InputError, match="Not in the base lock: leftpad"):
        locks.derive(runtimes.Spec("slim", d))


def test_closure_follows_the_dependency_graph():
    text = "\n".join(
        [
            "a==1 \\", "    --hash=sha256:00", "    # via -r x.in",
            "b==2 \\", "    --hash=sha256:11", "    # via a",
            "c==3 \\", "    --hash=sha256:22", "    # via", "    #   b", "    #   d",
            "d==4 \\", "    --hash=sha256:33", "    # via -r x.in",
        ]
    )  # fmt: skip
    entries = locks.parse_lock(text)
    assert locks.closure(["a"], entries) == ["a", "b", "c"]
    assert locks.closure(["d"], entries) == ["c", "d"]


def test_unknown_runtime_names_say_which_exist():
    with pytest.raises(InputError, match="official, slim"):
        runtimes.spec("full")


class FakeUv:
    """Stands in for uv and the venv's python: records the steps, can fail one of them."""

    def __init__(self, fail: str | None = None) -> None:
        self.fail = fail
        self.calls: list[str] = []

    def __call__(self, cmd, what, env=None):
        self.calls.append(what)
        if self.fail and self.fail in what:
            raise SetupError(f"{what} failed (exit code 1)", "fix it")
        if "venv" in cmd:
            venv = Path(cmd[-1])
            (venv / "bin").mkdir(parents=True)
            (venv / "bin" / "python").write_text("")
            (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
        return "compiled 10 of 11 files\nnot compiled: x/py312.py (SyntaxError: ...)\n"


def test_builds_are_no_ops_until_the_lock_changes_and_failures_keep_the_last(tmp_path, monkeypatch):
    d = _definition(tmp_path)
    ws = workspace.Workspace(tmp_path / "ws")
    slim = runtimes.Spec("slim", d)
    fake = FakeUv()
    monkeypatch.setattr(build, "_run", fake)
    monkeypatch.setattr(build, "uv_bin", lambda: "uv")
    first = build.build(slim, ws)
    assert first.changed and first.not_compiled == ("x/py312.py (SyntaxError: ...)",)
    assert runtimes.locate("slim", ws, slim).lock_sha256 == slim.lock_sha256()
    assert not build.build(slim, ws).changed
    # official is its own venv: building (or failing to build) it never touches slim
    monkeypatch.setattr(build, "_run", FakeUv(fail="Installing"))
    official = runtimes.Spec("official", d)
    with pytest.raises(SetupError, match="Installing official.txt failed"):
        build.build(official, ws)
    assert not ws.runtime_venv("official").exists()
    assert not ws.runtime_venv("official.new").exists()
    # a failed rebuild of slim leaves the previous slim usable
    (d / "official.txt").write_text((d / "official.txt").read_text() + "# new\n")
    locks.derive(slim)
    with pytest.raises(SetupError, match="older lock"):
        runtimes.locate("slim", ws, slim)
    with pytest.raises(SetupError):
        build.build(slim, ws)
    assert (ws.runtime_venv("slim") / STAMP).is_file()
    assert runtimes.default_name(ws) == "slim"


def test_locate_says_how_to_build(tmp_path):
    with pytest.raises(SetupError, match="make build RUNTIME=official"):
        runtimes.locate("official", workspace.Workspace(tmp_path))


def test_the_module_table_matches_the_built_official_runtime():
    from posebowl.runtimes import modules

    ws = workspace.find()
    try:
        official = runtimes.locate("official", ws)
    except SetupError as exc:
        pytest.skip(f"the official runtime is not built here ({exc.message})")
    assert modules.official_modules() == modules.top_level_modules(official.venv)


def test_the_module_table_knows_what_submissions_import():
    from posebowl.runtimes import modules

    table = modules.official_modules()
    for module in ("torch", "ultralytics", "cv2", "sklearn", "PIL", "yaml", "tensorflow"):
        assert module in table
    assert modules.missing_module("ModuleNotFoundError: No module named 'ultralytics.engine'") == (
        "ultralytics"
    )
    assert modules.missing_module("E   ImportError: No module named 'x'") == "x"
    assert modules.missing_module("all good") is None
