"""A stand-in ``docker`` command, only for what a real daemon cannot show on our machines (the
docker engine's other tests run against the real daemon: tests/test_docker_engine.py).

Installed by :func:`install` as ``BIN/docker``. It appends every argument list it gets to
``$FAKE_DOCKER_STATE/calls.jsonl`` and acts out ``$FAKE_DOCKER_MODE``:

    success             run: writes a valid submission.csv into the submission mount, exit 0
                        (its "container" is a process of the host: no container cgroup to read,
                        as with Docker Desktop, whose daemon runs in a VM)
    oom-unflagged       run: 1.5 s, then exit 137 with OOMKilled false (old daemons)
    hung                run: ignores SIGTERM; `docker stop` and `docker kill` answer but do
                        nothing (a daemon that hangs): only killing the client ends it
    daemon-dies         run: starts, prints, then the daemon goes away: the client exits 125
                        ("unexpected EOF") and every later call cannot connect
    windows-containers  info: Docker Desktop switched to Windows containers
    pull: prints what a registry's pull prints (no registry is reachable from our machines)

Containers live as ``container-NAME.json`` files (their ``State``); ``stop`` and ``kill`` signal
the ``run`` process recorded for that name.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import stat
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

DAEMON_DOWN = (
    "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
    "Is the docker daemon running?"
)
CONTAINER_ID = "c0ffee" * 10 + "beef"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def install(bin_dir: Path) -> Path:
    """Write the fake as ``bin_dir/docker`` run by this interpreter; return its path."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / "docker"
    exe.write_text(f"#!{sys.executable}\n" + Path(__file__).read_text())
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return exe


def calls(state: Path) -> list[list[str]]:
    """Every argument list the fake was called with, in order."""
    path = state / "calls.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def mounts(run_args: list[str]) -> dict[str, tuple[str, bool]]:
    """``--mount`` arguments of a run: target -> (source, read-only)."""
    out = {}
    for i, a in enumerate(run_args):
        if a == "--mount":
            fields = dict(
                f.split("=", 1) if "=" in f else (f, "") for f in run_args[i + 1].split(",")
            )
            out[fields["target"]] = (fields["source"], "readonly" in fields)
    return out


def _main(argv: list[str]) -> int:
    state = Path(os.environ["FAKE_DOCKER_STATE"])
    mode = os.environ.get("FAKE_DOCKER_MODE", "success")
    with open(state / "calls.jsonl", "a") as f:
        f.write(json.dumps(argv) + "\n")
    cmd = argv[0] if argv else ""

    def box(name: str) -> Path:
        return state / f"container-{name}.json"

    def save(name: str, **st: object) -> None:
        old = json.loads(box(name).read_text()) if box(name).is_file() else {}
        tmp = box(name).with_suffix(".tmp")
        tmp.write_text(json.dumps({**old, **st}))
        tmp.replace(box(name))

    if (state / "daemon-dead").exists():
        print(DAEMON_DOWN, file=sys.stderr)
        return 1
    if cmd == "info":
        info = {
            "ServerVersion": "99.0-fake",
            "OSType": "windows" if mode == "windows-containers" else "linux",
            "NCPU": 2,
            "MemTotal": 8 << 30,
            "MemoryLimit": True,
            "SwapLimit": True,
            "CpuCfsQuota": True,
            "PidsLimit": True,
            "SecurityOptions": ["name=seccomp,profile=builtin"],
        }
        print(json.dumps(info))
        return 0
    if cmd == "image" and argv[1:2] == ["inspect"]:
        labels = {
            "org.posebowl.lock-sha256": os.environ.get("FAKE_DOCKER_LOCK", ""),
            "org.posebowl.runtime": "slim",
        }
        print(json.dumps(labels))
        return 0
    if cmd == "run":
        return _run(argv, mode, state, save)
    if cmd in ("stop", "kill"):
        name = argv[-1]
        pid_file = state / f"{name}.pid"
        if not pid_file.is_file():
            print(f"Error response from daemon: No such container: {name}", file=sys.stderr)
            return 1
        if mode != "hung":
            pid = int(pid_file.read_text())
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM if cmd == "stop" else signal.SIGKILL)
        print(name)
        return 0
    if cmd == "inspect":
        name = argv[-1]
        if not box(name).is_file():
            print(f"Error: No such object: {name}", file=sys.stderr)
            return 1
        print(
            json.dumps(
                [
                    {
                        "Id": CONTAINER_ID,
                        "Name": "/" + name,
                        "State": json.loads(box(name).read_text()),
                    }
                ]
            )
        )
        return 0
    if cmd == "rm":
        box(argv[-1]).unlink(missing_ok=True)
        print(argv[-1])
        return 0
    if cmd == "pull":
        print(f"Status: Downloaded newer image for {argv[-1]}")
        return 0
    print(f"fake docker: unknown command {argv}", file=sys.stderr)
    return 2


def _run(argv: list[str], mode: str, state: Path, save) -> int:  # type: ignore[no-untyped-def]
    name = argv[argv.index("--name") + 1]
    save(name, Running=True, Pid=os.getpid(), StartedAt=_now(), OOMKilled=False, ExitCode=0)
    (state / f"{name}.pid").write_text(str(os.getpid()))
    print("posebowl-entrypoint: network: none (loopback only)")
    print("posebowl-entrypoint: running: sh main.sh", flush=True)
    print("hello from the fake container", flush=True)
    code, oom = 0, False
    if mode == "success":
        m = mounts(argv)
        fmt = Path(m["/code_execution/data"][0]) / "submission_format.csv"
        out = Path(m["/code_execution/submission"][0]) / "submission.csv"
        with open(fmt) as f, open(out, "w", newline="") as o:
            rows = list(csv.reader(f))
            w = csv.writer(o)
            w.writerow(rows[0])
            for r in rows[1:]:
                w.writerow([r[0], 540, 412, 740, 612])
    elif mode == "oom-unflagged":
        time.sleep(1.5)
        print("Killed", flush=True)
        code = 137
    elif mode == "hung":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        while True:
            time.sleep(0.05)
    elif mode == "daemon-dies":
        time.sleep(0.3)
        (state / "daemon-dead").touch()
        print("docker: error waiting for container: unexpected EOF", file=sys.stderr, flush=True)
        return 125
    save(name, Running=False, ExitCode=code, OOMKilled=oom, FinishedAt=_now())
    print(f"posebowl-entrypoint: exit-code {code}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
