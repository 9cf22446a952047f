"""The in-sandbox entrypoint (shared by both engines), through the real bwrap sandbox.

Standalone, as the runtime image's ENTRYPOINT under plain `docker run`, it unzips
submission/submission.zip, refuses one without main.sh at its root and tees its output to
submission/log.txt. Under the time limit's SIGTERM it outlives main.sh's processes, so they get
the grace period to finish."""

from __future__ import annotations

import pytest

from posebowl import sandbox
from posebowl.engines.base import Bind, RunRequest, Status
from posebowl.engines.bwrap import BwrapEngine
from posebowl.run.dataview import prepare_data_view
from posebowl.sandbox import ENTRYPOINT, SUBMISSION, WORKDIR

from .sandbox_helpers import (
    WRITE_VALID,
    bare_runtime,
    fast_limits,
    make_data,
    make_zip,
    needs_sandbox,
    run_zip,
)

pytestmark = [pytest.mark.sandbox, needs_sandbox()]


def standalone(tmp_path, files):
    data, _ = make_data(tmp_path)
    sub = tmp_path / "submission"
    sub.mkdir()
    make_zip(sub / "submission.zip", files)
    work = tmp_path / "workdir"
    work.mkdir()
    view = prepare_data_view(data, tmp_path / "scratch")
    request = RunRequest(
        binds=(*view.binds, Bind(work, WORKDIR, True), Bind(sub, SUBMISSION, True)),
        command=("sh", ENTRYPOINT),
        cwd=WORKDIR,
        limits=fast_limits(),
        env=sandbox.ENV,
        runtime=bare_runtime(tmp_path.parent),
    )
    output: list[bytes] = []
    result = BwrapEngine().execute(request, output.append)
    return result, b"".join(output).decode(), sub, work


def test_it_unzips_runs_and_logs_like_the_official_entrypoint(tmp_path):
    result, shown, sub, work = standalone(
        tmp_path, {"main.sh": "echo FROM-MAIN\n" + WRITE_VALID, "lib/x.txt": "x"}
    )
    assert result.exit_code == 0, shown
    assert (work / "lib" / "x.txt").read_text() == "x"
    assert (sub / "submission.csv").is_file()
    log = (sub / "log.txt").read_text()
    assert "FROM-MAIN" in log and "unzipping" in log and "exit-code 0" in log
    assert log == shown  # everything shown is in the log
    assert "background-processes" not in log


def test_it_refuses_a_zip_whose_main_sh_is_in_a_subfolder(tmp_path):
    result, shown, sub, work = standalone(tmp_path, {"sub/main.sh": "echo never\n"})
    assert result.exit_code == 1
    assert "main.sh is not at the root of submission.zip" in (sub / "log.txt").read_text()
    assert "never" not in shown and not any(work.iterdir())


def test_the_exit_code_of_main_sh_is_kept(tmp_path):
    result, _, sub, _ = standalone(tmp_path, {"main.sh": "echo bad; exit 7\n"})
    assert result.exit_code == 7
    assert "exit-code 7" in (sub / "log.txt").read_text()


def test_the_polite_sigterm_leaves_main_sh_the_grace_period(tmp_path):
    """main.sh's processes get SIGTERM together with the entrypoint; if the entrypoint quit at
    once, the sandbox would end and kill them before they could save anything."""
    slow_to_leave = """python - <<'EOF'
import signal, sys, time
def bye(*_):
    time.sleep(0.5)  # saving takes a moment
    print("saved after SIGTERM", flush=True)
    sys.exit(3)
signal.signal(signal.SIGTERM, bye)
print("ready", flush=True)
time.sleep(60)
EOF
"""
    data, _ = make_data(tmp_path)
    z = make_zip(tmp_path / "submission.zip", {"main.sh": slow_to_leave})
    o = run_zip(tmp_path, z, data, limits=fast_limits(time_limit_s=3, kill_grace_s=5))
    assert o.verdict.status is Status.TIMEOUT
    assert "saved after SIGTERM" in o.log, o.log
    assert o.result["wall_seconds"] < 3 + 5  # it ended by itself, before the SIGKILL
