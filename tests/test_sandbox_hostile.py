"""The hostile-submission suite: each case is a real zip run through every engine that works
here (parametrised: bwrap, and docker with a real daemon and the runtime image), with the same
verdicts, log lines and result.json fields expected from both.

Every run also checks (in ``run_zip``) that log.txt and result.json were written, the data
folder is unchanged and no sandboxed process is left running.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from posebowl.engines.base import Status
from posebowl.engines.docker import argv as docker_argv
from posebowl.errors import SetupError
from posebowl.packing import pack

from .sandbox_helpers import (
    WRITE_VALID,
    add_symlink,
    bare_runtime,
    docker_test_image,
    fast_limits,
    make_data,
    make_zip,
    real_runtime,
    run_zip,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return make_data(tmp_path)[0]


def zip_of(tmp_path: Path, main_sh: str, **files: str | bytes) -> Path:
    return make_zip(tmp_path / "submission.zip", {"main.sh": main_sh, **files})


def test_happy_path(tmp_path, data, engine):
    o = run_zip(tmp_path, zip_of(tmp_path, WRITE_VALID), data, engine=engine)
    assert o.verdict.status is Status.SUCCESS, o.log
    assert o.result["exit_code"] == 0 and o.result["problems"] == []
    assert (o.out / "submission.csv").is_file()
    assert "posebowl-entrypoint: running: sh main.sh" in o.log
    assert o.result["enforced"]["network"]["enforced"] is True


def test_runs_unprivileged_with_no_capabilities(tmp_path, data, engine):
    main = (
        'id -u; id -g; grep CapEff /proc/self/status; echo "home=$HOME"\n'
        'mkdir "$HOME/.config" && touch /tmp/t && echo "home and tmp writable"\n' + WRITE_VALID
    )
    o = run_zip(tmp_path, zip_of(tmp_path, main), data, engine=engine)
    assert o.verdict.status is Status.SUCCESS, o.log
    lines = [ln.split(" ", 3)[3] for ln in o.log.splitlines()]
    assert "1000" in lines
    assert "CapEff:\t0000000000000000" in lines
    assert "home=/home/appuser" in lines
    assert "home and tmp writable" in lines


PROBE = """python - <<'EOF'
import socket, sys
try:
    {action}
except OSError as exc:
    print("blocked:", exc)
    sys.exit(7)
print("EGRESS-OK")
EOF
"""


@pytest.mark.parametrize(
    "action",
    [
        "socket.create_connection(('1.1.1.1', 53), timeout=3)",
        "socket.create_connection(('151.101.0.223', 443), timeout=3)",
        "socket.getaddrinfo('pypi.org', 443)",
    ],
    ids=["tcp-dns-port", "tcp-https", "dns"],
)
def test_network_egress_is_blocked(tmp_path, data, action, engine):
    o = run_zip(tmp_path, zip_of(tmp_path, PROBE.format(action=action)), data, engine=engine)
    assert o.verdict.status is Status.FAILED and o.verdict.exit_code == 7, o.log
    assert "blocked:" in o.log and "EGRESS-OK" not in o.log


def test_loopback_works(tmp_path, data, engine):
    main = (
        """python - <<'EOF'
import socket, threading
srv = socket.create_server(("127.0.0.1", 0))
threading.Thread(target=lambda: srv.accept()[0].sendall(b"pong"), daemon=True).start()
c = socket.create_connection(srv.getsockname(), timeout=3)
print("loopback:", c.recv(4).decode())
EOF
"""
        + WRITE_VALID
    )
    o = run_zip(tmp_path, zip_of(tmp_path, main), data, engine=engine)
    assert o.verdict.status is Status.SUCCESS and "loopback: pong" in o.log, o.log


def test_writing_into_data_fails(tmp_path, data, engine):
    main = """
ok=0
touch /code_execution/data/new.txt && ok=1
echo x > /code_execution/data/images/new.png && ok=1
echo x >> /code_execution/data/submission_format.csv && ok=1
rm -f /code_execution/data/images/*.png && ok=1
for f in /code_execution/data/images/*.png; do true > "$f" && ok=1; done
touch /x /usr/x /etc/x && ok=1
[ "$ok" = 0 ] || exit 0
exit 7
"""
    o = run_zip(tmp_path, zip_of(tmp_path, main), data, engine=engine)
    assert o.verdict.status is Status.FAILED and o.verdict.exit_code == 7, o.log
    assert "Read-only file system" in o.log


def test_labels_host_home_and_checkout_are_invisible(tmp_path, engine):
    data, labels = make_data(tmp_path)
    (data / "train_labels.csv").write_text(labels.read_text())  # labels put INSIDE data
    home = Path.home()
    # (the docker image has its own /etc/shadow, as every Debian root: it must not be readable)
    shadow = "-e" if engine.needs_runtime_venv else "-r"
    main = f"""
found=0
for p in "{labels}" "{labels.parent}" "{data}/train_labels.csv" \\
         /code_execution/data/train_labels.csv "{ROOT}" "{tmp_path}"; do
  if [ -e "$p" ]; then echo "VISIBLE: $p"; found=1; fi
done
if [ {shadow} /etc/shadow ]; then echo "VISIBLE: /etc/shadow"; found=1; fi
hits=$(find / \\( -path /proc -o -path /sys -o -path /usr -o -path /dev \\) -prune -o \\
       \\( -name '*labels*' -o -name 'pyproject.toml' \\) -print 2>/dev/null \\
       | grep -v '/lib/python3' | head -5)
echo "searched: $(find / \\( -path /proc -o -path /sys -o -path /usr \\) -prune -o -print \\
  2>/dev/null | wc -l) paths"
[ -z "$hits" ] || {{ echo "FOUND: $hits"; found=1; }}
ls -A "{home}" 2>/dev/null | sed 's/^/HOME-ENTRY: /'
[ "$found" = 0 ] && exit 7
exit 0
"""
    o = run_zip(tmp_path, zip_of(tmp_path, main), data, engine=engine)
    assert o.verdict.status is Status.FAILED and o.verdict.exit_code == 7, o.log
    assert "VISIBLE" not in o.log and "FOUND" not in o.log
    assert int(o.log.split("searched: ")[1].split()[0]) > 100  # the search did look around
    # the host home shows at most the folders leading to the runtime (bound read-only by the
    # engines that use the host's venv; the docker image brings its own: nothing)
    runtime = bare_runtime(tmp_path.parent)
    allowed = {
        p.relative_to(home).parts[0]
        for p in (runtime.venv, runtime.base_prefix)
        if p.is_relative_to(home) and engine.needs_runtime_venv
    }
    entries = {ln.split("HOME-ENTRY: ")[1] for ln in o.log.splitlines() if "HOME-ENTRY: " in ln}
    assert entries <= allowed
    assert "not mounted from" in o.log and "train_labels.csv" in o.log


def test_fork_bomb_is_contained(tmp_path, data, engine):
    main = "f() { f | f & }; f\nsleep 30\n"
    limits = fast_limits(pids=64, time_limit_s=4.0)
    o = run_zip(tmp_path, zip_of(tmp_path, main), data, limits=limits, engine=engine)
    assert o.verdict.status in (Status.TIMEOUT, Status.FAILED), o.log
    assert o.result["pids_limit_hit"] is True
    assert o.result["enforced"]["pids"]["enforced"] is True


def test_forks_stop_at_the_pids_limit(tmp_path, data, engine):
    main = """python - <<'EOF'
import os, sys, time
n = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        n += 1
except OSError as exc:
    print(f"fork failed after {n} children: {exc}")
    sys.exit(7)
EOF
"""
    o = run_zip(tmp_path, zip_of(tmp_path, main), data, limits=fast_limits(pids=40), engine=engine)
    assert o.verdict.status is Status.FAILED and o.verdict.exit_code == 7, o.log
    n = int(o.log.split("fork failed after ")[1].split()[0])
    assert 10 < n < 40
    assert o.result["pids_limit_hit"] is True
    assert "processes and threads was reached" in o.verdict.message


HOG = """python - <<'EOF'
chunks = []
for i in range(64):  # up to 2 GiB, touched
    chunks.append(bytearray(32 << 20))
    print("allocated", (i + 1) * 32, "MiB", flush=True)
EOF
"""


def test_memory_hog_is_out_of_memory(tmp_path, data, engine):
    o = run_zip(
        tmp_path,
        zip_of(tmp_path, HOG),
        data,
        limits=fast_limits(memory_bytes=256 << 20),
        engine=engine,
    )
    assert o.verdict.status is Status.OUT_OF_MEMORY, o.log
    assert o.result["oom_kills"] >= 1
    assert o.result["peak_memory_bytes"] <= 256 << 20
    assert "allocated 512 MiB" not in o.log


def test_oom_is_never_success_even_if_main_sh_recovers(tmp_path, data, engine):
    main = HOG.replace("<<'EOF'", "<<'EOF' || true", 1) + WRITE_VALID
    o = run_zip(
        tmp_path,
        zip_of(tmp_path, main),
        data,
        limits=fast_limits(memory_bytes=256 << 20),
        engine=engine,
    )
    assert o.verdict.status is Status.OUT_OF_MEMORY, o.log
    assert (o.out / "submission.csv").is_file()


def test_the_cpu_time_and_peak_memory_count_to_the_very_end(tmp_path, data, engine):
    # Read from the run's cgroup once it ended (docker: before the container, and with it its
    # cgroup, is gone): the CPU burnt in the last instant counts too.
    main = (
        WRITE_VALID
        + """python - <<'EOF'
import time
block = bytearray(200 << 20)  # touched: 200 MiB resident
while time.process_time() < 1.5:
    pass
EOF
times > /tmp/times  # (in this shell: a pipe's subshell has no children)
echo "children: $(tail -n 1 /tmp/times)"
"""
    )
    o = run_zip(tmp_path, zip_of(tmp_path, main), data, engine=engine)
    assert o.verdict.status is Status.SUCCESS, o.log
    # what main.sh's children used, as its shell counts it: "0m1.43s 0m0.20s" (user, system)
    user, system = o.log.split("children: ")[1].split()[:2]
    burnt = sum(
        int(t.split("m")[0]) * 60 + float(t.split("m")[1].rstrip("s")) for t in (user, system)
    )
    assert burnt >= 1.5
    assert o.result["cpu_seconds"] >= burnt  # the whole run counts: main.sh and the rest
    assert o.result["peak_memory_bytes"] >= 200 << 20
    assert not any("unknown" in n for n in o.result["notes"]), o.result["notes"]


def test_sleep_past_the_time_limit(tmp_path, data, engine):
    o = run_zip(
        tmp_path,
        zip_of(tmp_path, "sleep 60\n"),
        data,
        limits=fast_limits(time_limit_s=2),
        engine=engine,
    )
    assert o.verdict.status is Status.TIMEOUT, o.log
    assert 2 <= o.result["wall_seconds"] < 2 + 1 + 5


def test_timeout_is_polite_first_then_kills(tmp_path, data, engine):
    # A shell trap is in place within milliseconds, so a loaded machine cannot make the limit
    # expire before the handler exists (a Python handler could miss it).
    polite = """trap 'echo "got SIGTERM, saving"; exit 3' TERM
sleep 60 &
wait
"""
    o = run_zip(
        tmp_path, zip_of(tmp_path, polite), data, limits=fast_limits(time_limit_s=2), engine=engine
    )
    assert o.verdict.status is Status.TIMEOUT and "got SIGTERM, saving" in o.log, o.log
    stubborn = """trap '' TERM
sleep 60
"""
    tmp2 = tmp_path / "2"
    tmp2.mkdir()
    o = run_zip(
        tmp2, zip_of(tmp2, stubborn), data, limits=fast_limits(time_limit_s=2), engine=engine
    )
    assert o.verdict.status is Status.TIMEOUT
    assert o.result["wall_seconds"] < 2 + 1 + 5  # SIGKILL after the 1 s grace


def test_background_process_is_killed(tmp_path, data, engine):
    main = "sleep 1000 &\n(setsid sleep 1001 &)\n" + WRITE_VALID
    o = run_zip(tmp_path, zip_of(tmp_path, main), data, engine=engine)
    assert o.verdict.status is Status.SUCCESS, o.log
    assert o.result["background_processes"] >= 2
    assert o.result["wall_seconds"] < 20


def test_closed_stdout_does_not_end_the_run_early(tmp_path, data, engine):
    main = "exec >/dev/null 2>&1\nsleep 2\n" + WRITE_VALID
    o = run_zip(tmp_path, zip_of(tmp_path, main), data, engine=engine)
    assert o.verdict.status is Status.SUCCESS, o.log
    assert o.result["wall_seconds"] >= 2


@pytest.mark.parametrize(
    ("name", "rule"),
    [("../escape.txt", "path_traversal"), ("/tmp/posebowl-abs-escape.txt", "absolute_path")],
)
def test_zip_slip_and_absolute_paths_are_rejected(tmp_path, data, name, rule, engine):
    z = make_zip(tmp_path / "s.zip", {"main.sh": WRITE_VALID, name: "pwned"})
    o = run_zip(tmp_path, z, data, engine=engine)
    assert o.verdict.status is Status.INVALID_SUBMISSION
    assert rule in [p["rule"] for p in o.result["problems"]]
    assert not (tmp_path / "escape.txt").exists()
    assert not Path("/tmp/posebowl-abs-escape.txt").exists()


def test_symlink_entries_are_rejected(tmp_path, data, engine):
    z = make_zip(tmp_path / "s.zip", {"main.sh": WRITE_VALID})
    add_symlink(z, "passwd", "/etc/passwd")
    o = run_zip(tmp_path, z, data, engine=engine)
    assert o.verdict.status is Status.INVALID_SUBMISSION
    assert [p["rule"] for p in o.result["problems"]] == ["symlink"]


def test_zip_bomb_is_rejected(tmp_path, data, engine):
    z = make_zip(tmp_path / "s.zip", {"main.sh": WRITE_VALID, "bomb.bin": b"\0" * (8 << 20)})
    assert z.stat().st_size < 100_000
    o = run_zip(tmp_path, z, data, limits=fast_limits(max_unzipped_bytes=1 << 20), engine=engine)
    assert o.verdict.status is Status.INVALID_SUBMISSION
    assert "too_large" in [p["rule"] for p in o.result["problems"]]


def test_main_sh_only_in_a_subfolder(tmp_path, data, engine):
    z = make_zip(tmp_path / "s.zip", {"sub/main.sh": WRITE_VALID})
    o = run_zip(tmp_path, z, data, engine=engine)
    assert o.verdict.status is Status.INVALID_SUBMISSION
    assert "sub/main.sh" in o.verdict.message


def test_gigantic_log_is_capped(tmp_path, data, engine):
    main = (
        "i=0; yes 'spam spam spam spam' | head -c 3000000\n"
        "head -c 300000 /dev/zero | tr '\\0' x\n" + WRITE_VALID
    )
    cap = 64 << 10
    o = run_zip(
        tmp_path, zip_of(tmp_path, main), data, limits=fast_limits(log_bytes=cap), engine=engine
    )
    assert o.verdict.status is Status.SUCCESS, o.log[-2000:]
    size = (o.out / "log.txt").stat().st_size
    assert cap < size < cap + 4096  # the cap plus posebowl's own closing notes
    assert o.result["log_truncated"] is True and o.result["log_dropped_bytes"] > 3_000_000
    assert "log truncated" in o.log


@pytest.mark.parametrize(
    ("main", "rule"),
    [
        ("echo forgot to write it\n", "missing"),
        ("printf 'a,b\\n1,2\\n' > /code_execution/submission/submission.csv\n", "columns"),
        ("head -c 5000 /dev/urandom > /code_execution/submission/submission.csv\n", "unreadable"),
        (": > /code_execution/submission/submission.csv\n", "unreadable"),
        ("ln -s /etc/passwd /code_execution/submission/submission.csv\n", "missing"),
        (WRITE_VALID.replace("540, 412", "540.5, 412"), "xmin_not_integer"),
    ],
    ids=["missing", "bad-columns", "binary", "empty", "symlink-out", "floats"],
)
def test_bad_output_is_invalid_output(tmp_path, data, main, rule, engine):
    o = run_zip(tmp_path, zip_of(tmp_path, main), data, engine=engine)
    assert o.verdict.status is Status.INVALID_OUTPUT, o.log
    assert rule in [p["rule"] for p in o.result["problems"]], o.result["problems"]


def test_non_zero_exit_is_failed(tmp_path, data, engine):
    o = run_zip(tmp_path, zip_of(tmp_path, WRITE_VALID + "exit 3\n"), data, engine=engine)
    assert o.verdict.status is Status.FAILED and o.verdict.exit_code == 3


def test_smoke_mode_shows_only_the_first_images(tmp_path, engine):
    data, labels = make_data(tmp_path, n=5)
    main = "ls /code_execution/data/images | wc -l\n" + WRITE_VALID
    o = run_zip(tmp_path, zip_of(tmp_path, main), data, smoke=2, labels=labels, engine=engine)
    assert o.verdict.status is Status.SUCCESS, o.log
    assert o.result["images"] == 2 and o.result["smoke"] == 2
    assert len((o.out / "submission.csv").read_text().splitlines()) == 3
    assert o.result["score"] is not None and 0 < o.result["score"] < 1


def test_a_sandbox_with_network_fails_closed(tmp_path, data, engine):
    class LeakyEngine:
        """The engine under test, made to give the run a network."""

        name = engine.name
        needs_runtime_venv = engine.needs_runtime_venv

        def health_check(self):
            return engine.health_check()

        def execute(self, request, on_output):
            return engine.execute(dataclasses.replace(request, network=True), on_output)

    z = zip_of(tmp_path, "echo MAIN-RAN\n" + WRITE_VALID)
    has_iface = any(
        line.split(":")[0].strip() not in ("lo", "")
        for line in Path("/proc/net/dev").read_text().splitlines()[2:]
    )
    if not has_iface and engine.needs_runtime_venv:  # (docker's bridge network always has one)
        pytest.skip("this host has no network interface but loopback")
    with pytest.raises(SetupError, match="not offline"):
        run_zip(tmp_path, z, data, engine=LeakyEngine())
    assert "MAIN-RAN" not in (tmp_path / "out" / "log.txt").read_text()


def test_quickstart_example_succeeds_in_the_real_runtime(tmp_path, engine):
    runtime = real_runtime()
    data, labels = make_data(tmp_path)
    z = pack(ROOT / "example_src", tmp_path / "submission.zip").path
    o = run_zip(tmp_path, z, data, runtime=runtime, labels=labels, engine=engine)
    assert o.verdict.status is Status.SUCCESS, o.log
    assert o.result["score"] == pytest.approx(40000 / 57200)


def test_pip_install_of_a_bundled_wheel_works_offline(tmp_path, data, engine):
    runtime = real_runtime()
    import base64
    import hashlib
    import io
    import zipfile

    def record_line(name: str, data: bytes) -> str:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        return f"{name},sha256={digest},{len(data)}"

    files = {
        "tinypkg/__init__.py": b"VALUE = 42\n",
        "tinypkg-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: tinypkg\nVersion: 1.0\n",
        "tinypkg-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: "
        b"true\nTag: py3-none-any\n",
    }
    record = "\n".join(record_line(n, d) for n, d in files.items())
    record += "\ntinypkg-1.0.dist-info/RECORD,,\n"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n, d in files.items():
            zf.writestr(n, d)
        zf.writestr("tinypkg-1.0.dist-info/RECORD", record)
    main = (
        "pip install --no-index --no-deps tinypkg-1.0-py3-none-any.whl\n"
        "python -c 'import tinypkg; print(\"tinypkg\", tinypkg.VALUE)'\n" + WRITE_VALID
    )
    z = zip_of(tmp_path, main, **{"tinypkg-1.0-py3-none-any.whl": buf.getvalue()})
    o = run_zip(tmp_path, z, data, runtime=runtime, engine=engine)
    assert o.verdict.status is Status.SUCCESS, o.log
    assert "tinypkg 42" in o.log


def test_scratch_space_is_cleaned_up(tmp_path, data, engine, monkeypatch):
    scratch = tmp_path / "scratch"  # this run's own: other runs may be going on meanwhile
    scratch.mkdir()
    monkeypatch.setenv("POSEBOWL_TMPDIR", str(scratch))
    run_zip(tmp_path, zip_of(tmp_path, "echo hi > /tmp/x\n" + WRITE_VALID), data, engine=engine)
    assert os.listdir(scratch) == []


def _marked(token: str) -> list[int]:
    """Live processes whose environment holds POSEBOWL_TEST_MARK=token (this test's only)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/environ", "rb") as f:
                    if f"POSEBOWL_TEST_MARK={token}".encode() in f.read():
                        found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_the_sandbox_dies_with_posebowl_even_on_sigkill(tmp_path, data, engine):
    # posebowl killed outright cannot clean up: bwrap's --die-with-parent ends the sandbox; the
    # docker engine's guard process removes the container (the daemon would keep it running)
    token = secrets.token_hex(8)
    mark = f"POSEBOWL_TEST_MARK={token}"
    z = zip_of(tmp_path, f"{mark} sleep 1000 &\n{mark} sleep 1000\n")
    runtime = bare_runtime(tmp_path.parent).venv
    env = {**os.environ, "POSEBOWL_IMAGE": docker_test_image()}
    proc = subprocess.Popen(
        [sys.executable, "-m", "posebowl.cli.main", "run", z, "--data", data, "--out",
         tmp_path / "out", "--engine", engine.name, "--runtime", runtime],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while len(_marked(token)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_marked(token)) == 2, "the submission never started"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 20
    while _marked(token) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _marked(token) == []
    if engine.name == "docker":
        owner = f"{docker_argv.OWNER_LABEL}={socket.gethostname()}:{proc.pid}"
        ps = ["docker", "ps", "--all", "--quiet", "--filter", f"label={owner}"]
        while (left := subprocess.run(ps, capture_output=True, text=True).stdout.strip()) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.2)  # (killed at once, removed a moment later)
        assert left == "", "the container was left behind"
