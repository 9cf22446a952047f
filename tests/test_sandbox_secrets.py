"""Nothing of the host's environment reaches the sandbox, and main.sh cannot attach to,
read, or signal the sandbox's own processes (its init, the entrypoint)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from posebowl.engines.base import Status

from .sandbox_helpers import (
    WRITE_VALID,
    bare_runtime,
    make_data,
    make_zip,
    needs_sandbox,
    posebowl,
    run_zip,
)

DUMP = """
for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do
  echo "== $f"; tr '\\0' '\\n' < "$f" 2>&1
done
env
"""


def test_no_host_variable_is_visible_in_any_process(tmp_path: Path, monkeypatch, engine) -> None:
    token = f"hf_{secrets.token_hex(16)}"
    monkeypatch.setenv("HF_TOKEN", token)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", token)
    data, _ = make_data(tmp_path)
    z = make_zip(tmp_path / "s.zip", {"main.sh": DUMP + WRITE_VALID})
    o = run_zip(tmp_path, z, data, engine=engine)
    assert o.verdict.status is Status.SUCCESS, o.log
    assert "== /proc/1/environ" in o.log  # the dump ran and reached the sandbox's PID 1
    assert token not in o.log and "HF_TOKEN" not in o.log


@pytest.mark.sandbox
@needs_sandbox()
def test_the_command_line_passes_no_secret_either(tmp_path: Path) -> None:
    token = secrets.token_hex(16)
    data, _ = make_data(tmp_path)
    z = make_zip(tmp_path / "submission.zip", {"main.sh": DUMP + WRITE_VALID})
    env = {**os.environ, "WANDB_API_KEY": token}
    runtime = bare_runtime(tmp_path.parent).venv
    res = posebowl("run", z, "--data", data, "--runtime", runtime, env=env)
    assert res.returncode == 0, res.stderr
    assert token not in res.stdout and token not in (tmp_path / "log.txt").read_text()


PTRACE = """python - <<'EOF'
import ctypes, os, signal, subprocess, time
libc = ctypes.CDLL(None, use_errno=True)
ATTACH, DETACH = 16, 17

def attach(pid):
    if libc.ptrace(ATTACH, pid, 0, 0) == 0:
        os.waitpid(pid, 0)
        libc.ptrace(DETACH, pid, 0, 0)
        return "attached"
    return "refused " + os.strerror(ctypes.get_errno())

def entrypoint():
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"entrypoint.sh" in f.read():
                    return int(pid)

own = subprocess.Popen(["sleep", "30"])
time.sleep(0.2)
print("own child:", attach(own.pid))
own.kill()
print("pid 1:", attach(1))
print("entrypoint:", attach(entrypoint()))
try:
    open("/proc/1/environ").read()
    print("environ of pid 1: read")
except OSError as exc:
    print("environ of pid 1: refused", exc.strerror)
try:
    os.kill(entrypoint(), signal.SIGTERM)
    print("signal to the entrypoint: sent")
except OSError as exc:
    print("signal to the entrypoint: refused", exc.strerror)
EOF
"""


def test_main_sh_cannot_attach_to_what_it_did_not_start(tmp_path: Path, engine) -> None:
    data, _ = make_data(tmp_path)
    z = make_zip(tmp_path / "s.zip", {"main.sh": PTRACE + WRITE_VALID})
    o = run_zip(tmp_path, z, data, engine=engine)
    assert o.verdict.status is Status.SUCCESS, o.log
    iso = o.result["enforced"]["process_isolation"]
    if not iso["enforced"]:
        pytest.skip(f"this kernel cannot confine main.sh: {iso['how']}")
    assert "own child: attached" in o.log  # ptrace itself still works for the submission
    assert "pid 1: refused" in o.log and "entrypoint: refused" in o.log
    assert "environ of pid 1: refused" in o.log
    abi = int(iso["how"].split("ABI ")[1].split(":")[0])
    if abi >= 6:
        assert "signal to the entrypoint: refused" in o.log


def test_confinement_is_reported_in_the_log(tmp_path: Path, engine) -> None:
    data, _ = make_data(tmp_path)
    o = run_zip(
        tmp_path, make_zip(tmp_path / "s.zip", {"main.sh": WRITE_VALID}), data, engine=engine
    )
    assert "posebowl-entrypoint: confinement " in o.log
    assert "process_isolation" in o.result["enforced"]
