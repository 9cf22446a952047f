import contextlib
import os
import signal
import subprocess
import threading
import time

import pytest

from posebowl import engines, signals
from posebowl.engines import supervise
from posebowl.engines.bwrap import BwrapEngine
from posebowl.errors import InputError, SetupError


class Broken:
    name = "broken"

    def health_check(self):
        return "broken on purpose. Fix it."

    def execute(self, request, on_output):  # pragma: no cover - never reached
        raise AssertionError


def test_unknown_engine_names_the_known_ones():
    with pytest.raises(InputError, match="auto, bwrap"):
        engines.select("podman")


def test_auto_fails_closed_with_every_reason(monkeypatch):
    monkeypatch.setitem(engines.ENGINES, "broken", Broken)
    monkeypatch.setattr(engines, "AUTO_ORDER", ["broken"])
    with pytest.raises(SetupError, match="broken on purpose"):
        engines.select("auto")
    with pytest.raises(SetupError, match="broken on purpose"):
        engines.select("broken")


def test_missing_bwrap_is_reported_with_the_install_command(tmp_path):
    engine = BwrapEngine(bwrap=str(tmp_path / "no-such-bwrap"))
    reason = engine.health_check()
    assert reason is not None and "apt-get install bubblewrap" in reason


def test_a_bwrap_that_cannot_make_namespaces_fails_closed(tmp_path):
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
    fake.chmod(0o755)
    reason = BwrapEngine(bwrap=str(fake)).health_check()
    assert reason is not None
    assert "setting up uid map: Permission denied" in reason
    assert "apparmor_restrict_unprivileged_userns" in reason


# -- the supervision loop both engines share ----------------------------------------------------
class Recorder:
    """A Target that records when each step came; ``kill`` kills only if told to."""

    def __init__(self, proc: subprocess.Popen[bytes], kill_works: bool = True) -> None:
        self.proc = proc
        self.kill_works = kill_works
        self.calls: list[tuple[str, float]] = []
        self.t0 = time.monotonic()

    def _note(self, what: str) -> None:
        self.calls.append((what, time.monotonic() - self.t0))

    def _group(self, sig: int) -> None:  # the child leads its own session (spawn)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def terminate(self) -> None:
        self._note("terminate")
        self._group(signal.SIGTERM)

    def kill(self) -> None:
        self._note("kill")
        if self.kill_works:
            self._group(signal.SIGKILL)

    def abandon(self) -> None:
        self._note("abandon")
        self._group(signal.SIGKILL)

    def tick(self) -> None:
        self._note("tick")

    def steps(self) -> list[str]:
        return [c for c, _ in self.calls if c != "tick"]


def child(script: str) -> subprocess.Popen[bytes]:
    return supervise.spawn(["sh", "-c", script], capture=True)


def test_the_output_and_exit_code_pass_through():
    proc = child("echo one; echo two >&2; exit 3")
    seen: list[bytes] = []
    t = Recorder(proc)
    ended = supervise.supervise(proc, t, 30.0, supervise.Ladder(1.0), seen.append)
    assert ended.exit_code == 3 and not ended.timed_out
    assert b"".join(seen).split() == [b"one", b"two"]
    assert t.steps() == [] and ended.wall_s < 10


def test_a_polite_child_ends_at_the_deadline_with_terminate_only():
    proc = child("trap 'echo bye; exit 143' TERM; while :; do sleep 0.1; done")
    t = Recorder(proc)
    seen: list[bytes] = []
    ended = supervise.supervise(proc, t, 0.5, supervise.Ladder(5.0), seen.append)
    assert ended.timed_out and ended.exit_code == 143
    assert t.steps() == ["terminate"] and b"bye" in b"".join(seen)


def test_the_ladder_terminate_then_kill_then_abandon():
    proc = child("trap '' TERM; while :; do sleep 0.1; done")
    t = Recorder(proc, kill_works=False)  # a hung client: kill does not end it
    ladder = supervise.Ladder(kill_after_s=0.5, abandon_after_s=0.5)
    ended = supervise.supervise(proc, t, 0.5, ladder, None, poll_s=0.2)
    assert ended.timed_out and ended.exit_code == 128 + signal.SIGKILL
    assert t.steps() == ["terminate", "kill", "abandon"]
    when = dict((c, s) for c, s in t.calls if c != "tick")
    assert when["kill"] - when["terminate"] >= 0.45
    assert when["abandon"] - when["kill"] >= 0.45
    assert sum(c == "tick" for c, _ in t.calls) >= 3  # every poll_s while it ran


def test_without_an_abandon_step_the_loop_waits_after_kill():
    proc = child("trap '' TERM; sleep 30")
    t = Recorder(proc)
    ended = supervise.supervise(proc, t, 0.3, supervise.Ladder(0.3), None)
    assert t.steps() == ["terminate", "kill"] and ended.exit_code == 128 + signal.SIGKILL


def test_an_exception_kills_the_child_and_is_raised_again():
    proc = child("echo started; sleep 30")
    t = Recorder(proc)

    def explode(data: bytes) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        supervise.supervise(proc, t, 30.0, supervise.Ladder(1.0), explode)
    assert t.steps() == ["kill"] and proc.returncode == -signal.SIGKILL


def test_sigterm_to_posebowl_unwinds_as_interrupted_and_kills_the_child():
    # whatever handler was there before (SIG_DFL, or one an earlier test's library installed:
    # ray.init puts its own in the driver) is the one put back
    before = signal.getsignal(signal.SIGTERM)
    proc = child("sleep 30")
    t = Recorder(proc)
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM)).start()
    with pytest.raises(signals.Interrupted) as exc:
        supervise.supervise(proc, t, 30.0, supervise.Ladder(1.0), None)
    assert exc.value.signum == signal.SIGTERM
    assert t.steps() == ["kill"] and proc.returncode is not None
    assert signal.getsignal(signal.SIGTERM) is before  # restored


def test_an_interactive_child_leaves_ctrl_c_to_the_terminal():
    proc = supervise.spawn(["sh", "-c", "sleep 0.5"], capture=False)
    t = Recorder(proc)
    threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT)).start()
    ended = supervise.supervise(proc, t, 30.0, supervise.Ladder(1.0), None, interactive=True)
    assert ended.exit_code == 0 and t.steps() == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
