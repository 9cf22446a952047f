"""The entrypoint run by itself, as the runtime image's ENTRYPOINT under plain `docker run`:
it unzips submission/submission.zip, refuses one without main.sh at its root and tees its
output to submission/log.txt. Exercised through the real bwrap sandbox (same script)."""

from __future__ import annotations

import pytest

from posebowl import runner
from posebowl.engines.base import ENTRYPOINT, SUBMISSION, WORKDIR, Bind, RunRequest
from posebowl.engines.bwrap import BwrapEngine

from .sandbox_helpers import (
    WRITE_VALID,
    bare_runtime,
    fast_limits,
    make_data,
    make_zip,
    needs_sandbox,
)

pytestmark = [pytest.mark.sandbox, needs_sandbox()]


def standalone(tmp_path, files):
    data, _ = make_data(tmp_path)
    sub = tmp_path / "submission"
    sub.mkdir()
    make_zip(sub / "submission.zip", files)
    work = tmp_path / "workdir"
    work.mkdir()
    view = runner.prepare_data_view(data, tmp_path / "scratch")
    request = RunRequest(
        binds=(*view.binds, Bind(work, WORKDIR, True), Bind(sub, SUBMISSION, True)),
        command=("sh", ENTRYPOINT),
        cwd=WORKDIR,
        limits=fast_limits(),
        env=runner.SANDBOX_ENV,
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
