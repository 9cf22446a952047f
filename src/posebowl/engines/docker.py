"""The ``docker`` engine: the same run in a container of the runtime image (``runtime/Dockerfile``).

For machines without bubblewrap (macOS, Windows, locked-down Linux) and for the official workflow.
The image is built from the same lock as the bwrap engine's venv (``runtimes/definition/NAME.txt``)
and carries a label with the lock's SHA-256, so a run refuses an image built from another lock.

One ``docker run`` per run: ``--network none``, the request's binds as ``--mount`` (read-only
unless writable), a read-only root with tmpfs ``/tmp`` and ``$HOME``, ``--shm-size``, the limits as
``--memory`` = ``--memory-swap`` (no swap), ``--cpus``, ``--pids-limit``, the host's uid instead of
world-writable folders, no capabilities, ``--init`` (reaps and forwards signals to the whole
process group), a unique ``--name`` and no log kept by the daemon. The container is removed
explicitly after ``docker inspect`` has told its exit code and ``OOMKilled``. The time limit is
``docker stop -t GRACE`` (SIGTERM, then SIGKILL), then ``docker kill``; Ctrl-C or SIGTERM to
posebowl kills the container. Peak memory and CPU time are read from the container's cgroup when
the daemon runs on this machine (Linux); elsewhere they are reported as unknown.
"""

from __future__ import annotations

import collections
import contextlib
import json
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

from posebowl import sandbox
from posebowl.engines import cgroups, docker_image
from posebowl.engines._supervise import OutputPump, spawn
from posebowl.engines.base import (
    Bind,
    Enforcement,
    OutputSink,
    RunRequest,
    RunResult,
)
from posebowl.errors import SetupError
from posebowl.runtimes.locks import Spec

IMAGE_REPO = "posebowl-runtime"
DEFAULT_IMAGE = f"{IMAGE_REPO}:slim"
IMAGE_ENV = "POSEBOWL_IMAGE"
LOCK_LABEL = "org.posebowl.lock-sha256"
OWNER_LABEL = "org.posebowl.owner"
NAME_PREFIX = "posebowl-"
PLATFORM = "linux/amd64"  # the lock's platform (runtimes.locks.PLATFORM) and the platform's
INSTALL_HINT = (
    "Install Docker (https://docs.docker.com/get-docker/) and start it, or use --engine bwrap."
)
DAEMON_HINT = (
    "Start Docker (Docker Desktop, or `sudo systemctl start docker`) and check that your user "
    "may use it (`docker info`; on Linux, add yourself to the docker group)."
)
BUILD_HINT = (
    "Build it with `ENGINE=docker make build` (posebowl runtime build --engine docker), or pull "
    "a published one with `make pull IMAGE=NAME` and set POSEBOWL_IMAGE=NAME."
)
OFFLINE_HINT = (
    "Offline, move an image from a machine that has one: `docker save IMAGE | gzip > image.tgz` "
    "there, then `docker load < image.tgz` here (or build it where the base image and PyPI "
    "are reachable)."
)
TAIL_BYTES = 4096  # of the output, kept to explain a container that never started
STOP_SLACK_S = 5.0  # after `docker stop -t GRACE` had its time: `docker kill`
POLL_S = 1.0  # how often the container's cgroup is read (peak memory, OOM kills, CPU time)
OBSERVE_TRIES = 30  # docker inspect calls to find the running container's cgroup, at most
INFERRED_OOM_SHARE = 0.9  # exit 137 with the peak at >= 90% of the limit counts as out of memory
HOLD_ENV = "POSEBOWL_HOLD_STDIN"  # entrypoint.sh: wait for a line on stdin before ending
END_MARK = b"posebowl-entrypoint: exit-code "  # entrypoint.sh's last line, then it waits


@dataclass(frozen=True)
class DaemonInfo:
    """What ``docker info`` says about the daemon, as far as a run needs it."""

    server_version: str
    os_type: str = "linux"
    ncpu: int | None = None
    mem_total: int | None = None
    memory_limit: bool = True
    swap_limit: bool = True
    cpu_quota: bool = True
    pids_limit: bool = True
    rootless: bool = False

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DaemonInfo:
        security = [str(s) for s in data.get("SecurityOptions") or []]
        return cls(
            server_version=str(data.get("ServerVersion") or "?"),
            os_type=str(data.get("OSType") or "linux"),
            ncpu=int(data["NCPU"]) if data.get("NCPU") else None,
            mem_total=int(data["MemTotal"]) if data.get("MemTotal") else None,
            memory_limit=bool(data.get("MemoryLimit", True)),
            swap_limit=bool(data.get("SwapLimit", True)),
            cpu_quota=bool(data.get("CpuCfsQuota", True)),
            pids_limit=bool(data.get("PidsLimit", True)),
            rootless=any("rootless" in s for s in security),
        )


def _mount_arg(bind: Bind) -> str:
    """``--mount`` value; fields holding a comma or a quote are quoted (it is parsed as CSV)."""

    def field(key: str, value: str) -> str:
        text = f"{key}={value}"
        return '"' + text.replace('"', '""') + '"' if ("," in text or '"' in text) else text

    parts = ["type=bind", field("source", str(bind.source)), field("target", bind.dest)]
    if not bind.writable:
        parts.append("readonly")
    return ",".join(parts)


def run_user(info: DaemonInfo, uid: int | None = None, gid: int | None = None) -> tuple[int, int]:
    """The ``--user`` of a run: the host's uid:gid, so its files stay the host user's.

    Root on the host runs the submission as the image's unprivileged user instead (and the
    writable folders are handed to that user); a rootless daemon maps its root to the host user,
    so root inside is the host user outside.
    """
    if info.rootless:
        return 0, 0
    if uid is None:
        uid = os.getuid() if hasattr(os, "getuid") else sandbox.UID
        gid = os.getgid() if hasattr(os, "getgid") else sandbox.GID
    if uid == 0:
        return sandbox.UID, sandbox.GID
    return uid, gid if gid is not None else uid


def run_argv(
    docker: str,
    image: str,
    request: RunRequest,
    name: str,
    info: DaemonInfo,
    user: tuple[int, int],
    owner: str,
    tty: bool = False,
) -> list[str]:
    """The whole ``docker run`` command line of ``request`` (a pure function, tested as such)."""
    lim = request.limits
    tmp_size = lim.memory_bytes or lim.effective_shm_bytes
    args = [docker, "run", "--name", name, "--label", f"{OWNER_LABEL}={owner}"]
    args += ["--platform", PLATFORM, "--pull", "never", "--log-driver", "none"]
    args += ["--init", "--hostname", "posebowl"]
    if not request.network:
        args += ["--network", "none"]
    args += ["--user", f"{user[0]}:{user[1]}"]
    args += ["--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--read-only"]
    args += ["--tmpfs", f"/tmp:rw,exec,nosuid,size={tmp_size},mode=1777"]
    # $HOME exists in the image (useradd --create-home): Docker then mounts the tmpfs with the
    # image folder's mode and root as owner, whatever mode= says; uid/gid make it the run's own
    args += [
        "--tmpfs",
        f"{sandbox.HOME}:rw,exec,nosuid,size={tmp_size},uid={user[0]},gid={user[1]},mode=0755",
    ]
    args += ["--shm-size", str(lim.effective_shm_bytes)]
    if lim.memory_bytes is not None:
        # --memory-swap is memory + swap: equal to --memory, no swap can stretch the limit
        args += ["--memory", str(lim.memory_bytes), "--memory-swap", str(lim.memory_bytes)]
    cpus = lim.effective_cpus(info.ncpu)
    if cpus is not None:
        args += ["--cpus", f"{cpus:g}"]
    if lim.pids is not None:
        args += ["--pids-limit", str(lim.pids)]
    # the same entrypoint as the bwrap engine's, whatever copy the image holds
    binds = (*(Bind(host, inside) for host, inside in sandbox.tool_mounts()), *request.binds)
    for b in binds:
        args += ["--mount", _mount_arg(b)]
    env = dict(request.env)
    # the init (tini) passes SIGTERM to main.sh's whole process group, as the bwrap engine does
    env["TINI_KILL_PROCESS_GROUP"] = "1"
    if request.interactive and os.environ.get("TERM"):
        env["TERM"] = os.environ["TERM"]
    if not request.interactive:
        # the entrypoint waits for a line on stdin before it ends the container: its cgroup
        # (final peak memory, CPU time, pids count) is read first (DockerEngine._run)
        env[HOLD_ENV] = "1"
    for k, v in env.items():
        args += ["--env", f"{k}={v}"]
    args += ["--workdir", request.cwd, "--interactive"]
    if request.interactive and tty:
        args.append("--tty")
    args += ["--entrypoint", request.command[0], image, *request.command[1:]]
    return args


def enforcement(request: RunRequest, info: DaemonInfo) -> dict[str, Enforcement]:
    """What each limit becomes with this daemon (``docker info`` says what it supports)."""
    lim = request.limits
    out: dict[str, Enforcement] = {}
    if lim.memory_bytes is None:
        out["memory"] = Enforcement(False, "no memory limit asked for")
    elif not info.memory_limit:
        out["memory"] = Enforcement(False, "the Docker daemon cannot limit memory (MemoryLimit)")
    elif not info.swap_limit:
        out["memory"] = Enforcement(
            True, "docker --memory; the daemon cannot limit swap, so swap may stretch it"
        )
    else:
        out["memory"] = Enforcement(True, "docker --memory = --memory-swap (no swap past it)")
    cpus = lim.effective_cpus(info.ncpu)
    if cpus is None:
        out["cpus"] = Enforcement(False, "no CPU limit asked for")
    elif not info.cpu_quota:
        out["cpus"] = Enforcement(False, "the Docker daemon cannot set CPU quotas (CpuCfsQuota)")
    else:
        out["cpus"] = Enforcement(True, f"docker --cpus {cpus:g}")
    if lim.pids is None:
        out["pids"] = Enforcement(False, "no process limit asked for")
    elif not info.pids_limit:
        out["pids"] = Enforcement(False, "the Docker daemon cannot limit processes (PidsLimit)")
    else:
        out["pids"] = Enforcement(True, f"docker --pids-limit {lim.pids}")
    out["time_limit"] = Enforcement(
        True, f"wall clock, docker stop -t {math.ceil(lim.kill_grace_s)} (SIGTERM, then SIGKILL)"
    )
    out["network"] = Enforcement(
        not request.network,
        "docker --network none (loopback only)"
        if not request.network
        else "the default Docker network (posebowl shell)",
    )
    return out


def _tail(text: str, lines: int = 5) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class DockerEngine:
    """Runs requests in containers of the runtime image with the ``docker`` command line."""

    name = "docker"
    needs_runtime_venv = False

    def __init__(
        self, docker: str | None = None, image: str | None = None, lock_sha256: str | None = None
    ) -> None:
        self._docker = docker
        self._image_given = image or os.environ.get(IMAGE_ENV)
        self.image = self._image_given or DEFAULT_IMAGE
        self.runtime_name: str | None = None
        self.image_lock: str | None = None  # the lock the image says it was built from
        self._lock_sha256 = lock_sha256
        self._health: str | None | bool = False  # False: not probed yet
        self.info: DaemonInfo | None = None

    @property
    def docker(self) -> str:
        found = self._docker or shutil.which("docker")
        if not found:
            raise SetupError("Docker is not installed (no docker command).", INSTALL_HINT)
        return found

    def _cli(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                [self.docker, *args],
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return subprocess.CompletedProcess([self.docker, *args], 1, "", str(exc))

    # -- health -------------------------------------------------------------------------------
    def health_check(self) -> str | None:
        """``None`` when a Docker daemon answers ``docker info``, else why not and the fix."""
        if self._health is not False:
            return self._health  # type: ignore[return-value]
        exe = self._docker or shutil.which("docker")
        if not exe or not os.access(exe, os.X_OK):
            self._health = f"Docker is not installed (no docker command). {INSTALL_HINT}"
            return self._health
        proc = self._cli("info", "--format", "{{json .}}", timeout=20)
        if proc.returncode != 0:
            why = _tail(proc.stderr or proc.stdout, 1) or f"exit code {proc.returncode}"
            self._health = f"The Docker daemon does not answer ({why}). {DAEMON_HINT}"
            return self._health
        try:
            info = DaemonInfo.from_json(json.loads(proc.stdout))
        except (ValueError, TypeError) as exc:
            self._health = f"`docker info` printed something unexpected ({exc}). {DAEMON_HINT}"
            return self._health
        if info.os_type != "linux":
            self._health = (
                f"The Docker daemon runs {info.os_type} containers; the runtime image is Linux. "
                "Switch Docker Desktop to Linux containers."
            )
            return self._health
        self.info = info
        self._health = None
        return None

    # -- the image ----------------------------------------------------------------------------
    def select_runtime(self, name: str, lock_sha256: str) -> None:
        """Run in the image of runtime ``name`` (unless an image was named), built from the
        lock ``lock_sha256``."""
        if self._image_given is None:
            self.image = f"{IMAGE_REPO}:{name}"
        self.runtime_name = name
        self._lock_sha256 = lock_sha256

    def _expected_lock(self) -> str | None:
        return self._lock_sha256

    def check_image(self) -> list[str]:
        """SetupError when the image is missing or was built from another lock; else notes."""
        proc = self._cli("image", "inspect", "--format", "{{json .Config.Labels}}", self.image)
        if proc.returncode != 0:
            raise SetupError(f"The Docker image {self.image} is not on this machine.", BUILD_HINT)
        try:
            labels = json.loads(proc.stdout or "null") or {}
        except ValueError:
            labels = {}
        built_from, want = labels.get(LOCK_LABEL), self._expected_lock()
        self.image_lock = built_from
        if built_from is None:
            return [
                f"image {self.image} was not built by posebowl (no {LOCK_LABEL} label): its "
                "packages may differ from the runtime's lock"
            ]
        if want is None:
            return [f"image {self.image}: no runtime lock to compare it with"]
        if built_from != want:
            raise SetupError(
                f"The Docker image {self.image} was built from another runtime lock than "
                "the runtime's lock.",
                "Rebuild it: ENGINE=docker make build (posebowl runtime build --engine docker).",
            )
        return []

    # -- running ------------------------------------------------------------------------------
    def execute(self, request: RunRequest, on_output: OutputSink | None) -> RunResult:
        reason = self.health_check()
        if reason:
            raise SetupError(reason)
        assert self.info is not None
        notes = self.check_image()
        user = run_user(self.info)
        if hasattr(os, "getuid") and os.getuid() == 0 and not self.info.rootless:
            _hand_over(request.binds, user)
        name = f"{NAME_PREFIX}{secrets.token_hex(6)}"
        owner = f"{socket.gethostname()}:{os.getpid()}"
        tty = request.interactive and sys.stdin.isatty() and sys.stdout.isatty()
        argv = run_argv(self.docker, self.image, request, name, self.info, user, owner, tty)
        guard = _Guard(self.docker, name)  # first: no container may outlive posebowl
        try:
            return self._run(argv, request, name, on_output, notes)
        finally:
            self._cli("rm", "--force", "--volumes", name, timeout=60)
            guard.done()

    def _inspect(self, name: str) -> dict[str, Any] | None:
        proc = self._cli("inspect", "--type", "container", name, timeout=30)
        if proc.returncode != 0:
            return None
        try:
            found = json.loads(proc.stdout)
        except ValueError:
            return None
        return found[0] if isinstance(found, list) and found else None

    def _observe(self, name: str) -> cgroups.Cgroup | None | bool:
        """The running container's cgroup (to read usage from); True: not started yet."""
        state = self._inspect(name)
        if state is None:
            return True
        st = state.get("State") or {}
        pid = int(st.get("Pid") or 0)
        if not st.get("Running") or pid <= 0:
            return True
        return cgroups.of_process(pid, str(state.get("Id") or ""))

    def _run(
        self,
        argv: list[str],
        request: RunRequest,
        name: str,
        on_output: OutputSink | None,
        notes: list[str],
    ) -> RunResult:
        lim = request.limits
        start = time.monotonic()
        capture = not request.interactive
        # capture: Ctrl-C is ours to handle, we stop the container; stdin: the entrypoint's go
        proc = spawn(argv, capture, stdin_pipe=capture)
        restore: list[tuple[int, Any]] = []
        if threading.current_thread() is threading.main_thread():
            if not capture:
                # Ctrl-C belongs to the interactive shell (same terminal): do not let it end ours.
                restore.append((signal.SIGINT, signal.signal(signal.SIGINT, signal.SIG_IGN)))
            restore.append((signal.SIGTERM, signal.signal(signal.SIGTERM, _interrupt)))
        deadline = start + lim.time_limit_s
        timed_out = False
        stage_at: float | None = None  # when the next, harsher step of stopping is due
        stage = 0
        tail = _Tail(on_output)
        observer: cgroups.Cgroup | None | bool = True  # True: not found yet; None: given up
        next_poll = start
        tries = 0
        peak: int | None = None
        cpu_s: float | None = None
        oom_seen = 0
        pids_hit = False
        exit_code: int | None = None
        ended = False  # the entrypoint said its last line and waits for our go
        window = b""

        def watch(data: bytes) -> None:  # sees every chunk of output before the log does
            nonlocal ended, window
            if END_MARK in window + data:
                ended = True
            window = (window + data)[-len(END_MARK) :]
            tail(data)

        def sample() -> None:
            nonlocal observer, tries, peak, cpu_s, oom_seen, pids_hit
            if observer is True:
                tries += 1
                observer = self._observe(name) if tries <= OBSERVE_TRIES else None
            if isinstance(observer, cgroups.Cgroup):
                u = observer.usage()
                if u.peak_memory_bytes is not None:
                    peak = max(peak or 0, u.peak_memory_bytes)
                cpu_s = u.cpu_s if u.cpu_s is not None else cpu_s
                oom_seen = max(oom_seen, u.oom_kills)
                pids_hit = pids_hit or u.pids_limit_hit

        output = OutputPump(proc, watch)
        stopper: subprocess.Popen[bytes] | None = None
        try:
            while exit_code is None:
                now = time.monotonic()
                wake = min(stage_at if stage_at is not None else deadline, next_poll)
                exit_code = output.step(max(0.0, min(wake - now, POLL_S)))
                if exit_code is not None:
                    break
                if ended and proc.stdin is not None and not proc.stdin.closed:
                    # the last reading, while the container and its cgroup still exist; then
                    # the entrypoint may end it (a forged last line only makes this one early)
                    if observer is True:
                        tries = 0  # the container is held: it is running now, find it
                    sample()
                    _release(proc)
                now = time.monotonic()
                if now >= next_poll:
                    next_poll = now + POLL_S
                    sample()
                if not timed_out and now >= deadline:
                    timed_out = True
                    grace = str(math.ceil(lim.kill_grace_s))
                    stopper = subprocess.Popen(
                        [self.docker, "stop", "--time", grace, name],
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                    stage, stage_at = 1, now + lim.kill_grace_s + STOP_SLACK_S
                elif stage_at is not None and now >= stage_at:
                    if stage == 1:
                        self._cli("kill", name, timeout=15)
                        stage, stage_at = 2, now + STOP_SLACK_S
                    else:
                        proc.kill()  # the docker client itself hangs: let it go
                        stage_at = now + 3600.0
        except BaseException:
            _release(proc)
            self._cli("kill", name, timeout=15)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=STOP_SLACK_S)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            raise
        finally:
            _release(proc)
            output.close()
            if stopper is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    stopper.wait(timeout=STOP_SLACK_S)
                if stopper.poll() is None:
                    stopper.kill()
                    stopper.wait()
            for sig, handler in reversed(restore):
                signal.signal(sig, handler)
        wall = time.monotonic() - start
        if exit_code < 0:
            exit_code = 128 - exit_code
        state = self._inspect(name)
        st = (state or {}).get("State") or {}
        started = str(st.get("StartedAt") or "")
        if not started or started.startswith("0001-"):  # Go's zero time: never started
            said = tail.text()
            raise SetupError(
                f"docker run could not start the container (exit code {exit_code}): "
                f"{_tail(said) or 'no message'}",
                "Read Docker's message above; check the image (posebowl runtime build --engine "
                "docker) and that Docker may mount the folders posebowl uses (on Docker Desktop, "
                "File sharing; set POSEBOWL_TMPDIR to a shared folder).",
            )
        if isinstance(st.get("ExitCode"), int):
            exit_code = st["ExitCode"]
        oom_kills = max(oom_seen, 1 if st.get("OOMKilled") else 0)
        if (
            not oom_kills
            and not timed_out
            and exit_code == 137
            and peak is not None
            and lim.memory_bytes is not None
            and peak >= INFERRED_OOM_SHARE * lim.memory_bytes
        ):
            oom_kills = 1
            notes.append(
                f"out of memory inferred: exit code 137 with the peak memory at "
                f"{peak / lim.memory_bytes:.0%} of the limit"
            )
        if peak is None:
            notes.append("peak_memory_bytes unknown (the container's cgroup is not readable here)")
        if cpu_s is None:
            notes.append("cpu_seconds unknown (the container's cgroup is not readable here)")
        assert self.info is not None
        return RunResult(
            exit_code=exit_code,
            wall_s=wall,
            timed_out=timed_out,
            oom_kills=oom_kills,
            pids_limit_hit=pids_hit,
            cpu_s=cpu_s,
            peak_memory_bytes=peak,
            enforced=enforcement(request, self.info),
            notes=tuple(notes),
            runtime=f"image {self.image}",
            runtime_lock=self.image_lock,
        )


class _Tail:
    """An output sink that keeps the last ``TAIL_BYTES`` or so and passes everything on."""

    def __init__(self, sink: OutputSink | None) -> None:
        self._sink = sink
        self._chunks: collections.deque[bytes] = collections.deque(maxlen=64)
        self._size = 0

    def __call__(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        while self._size > TAIL_BYTES and len(self._chunks) > 1:
            self._size -= len(self._chunks.popleft())
        if self._sink is not None:
            self._sink(data)

    def text(self) -> str:
        return b"".join(self._chunks).decode("utf-8", "replace")


#: The guard: waits for posebowl's "done"; if posebowl dies first (its end of the pipe closes,
#: even on SIGKILL), it removes the container, which the daemon would otherwise keep running.
_GUARD = """import subprocess, sys, time
if sys.stdin.readline().strip() != "done":
    for _ in range(2):  # (again: a container created just as posebowl died)
        subprocess.run([sys.argv[1], "rm", "--force", "--volumes", sys.argv[2]],
                       stdin=subprocess.DEVNULL, capture_output=True)
        time.sleep(2)
"""


#: The same in sh where there is one (a shell starts in a millisecond, Python in 20-200 ms).
_GUARD_SH = (
    'read -r x; [ "$x" = done ] || '
    '{ "$0" rm --force --volumes "$1"; sleep 2; exec "$0" rm --force --volumes "$1"; }'
)


class _Guard:
    """A small process of its own session that removes the container if posebowl dies."""

    def __init__(self, docker: str, name: str) -> None:
        sh = shutil.which("sh") if os.name == "posix" else None
        argv = [sh, "-c", _GUARD_SH] if sh else [sys.executable, "-I", "-S", "-c", _GUARD]
        try:
            self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
                [*argv, docker, name],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError:
            self._proc = None

    def done(self) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None:
            return
        with contextlib.suppress(OSError):
            proc.stdin.write(b"done\n")
        with contextlib.suppress(OSError):
            proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def _release(proc: subprocess.Popen[bytes]) -> None:
    """Give the held entrypoint its go (a line, then the end of its stdin); idempotent."""
    if proc.stdin is None or proc.stdin.closed:
        return
    with contextlib.suppress(OSError):
        proc.stdin.write(b"\n")
        proc.stdin.flush()
    with contextlib.suppress(OSError):
        proc.stdin.close()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM to posebowl during a run: unwind like Ctrl-C, so the container is killed."""
    raise KeyboardInterrupt


def _hand_over(binds: Sequence[Bind], user: tuple[int, int]) -> None:
    """Give the writable folders to the run's user (root on the host: never world-writable)."""
    for b in binds:
        if not b.writable:
            continue
        for root, dirs, files in os.walk(b.source):
            os.chown(root, *user)
            for n in (*dirs, *files):
                with contextlib.suppress(FileNotFoundError):
                    os.chown(os.path.join(root, n), *user, follow_symlinks=False)


# -- the image: build and pull ------------------------------------------------------------------
def _stream(argv: list[str], echo: Callable[[str], None] | None) -> tuple[int, str]:
    """Run a long docker command, echoing its lines; its exit code and its last lines."""
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
    except OSError as exc:
        return 127, str(exc)
    last: collections.deque[str] = collections.deque(maxlen=15)
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip("\n")
        last.append(line)
        if echo is not None:
            echo(line)
    return proc.wait(), "\n".join(last)


def build_image(
    definition: Spec,
    image: str,
    docker: str | None = None,
    echo: Callable[[str], None] | None = None,
    base_image: str | None = None,
    force: bool = False,
) -> docker_image.ImageBuild:
    """Build the image of the runtime ``definition`` offline from its lock
    (:mod:`posebowl.engines.docker_image`); nothing happens when an image with the same lock,
    base and context is there."""
    from posebowl import workspace

    problem = definition.problem()
    if problem:
        raise SetupError(f"The runtime lock is not usable: {problem}.", "Run make lock.")
    engine = DockerEngine(docker=docker, image=image)
    reason = engine.health_check()
    if reason:
        raise SetupError(reason)
    return docker_image.build(
        definition,
        workspace.find(),
        image,
        engine.docker,
        base_image=base_image,
        force=force,
        echo=echo,
    )


def pull_image(
    image: str, docker: str | None = None, echo: Callable[[str], None] | None = None
) -> None:
    """``docker pull`` a published runtime image; SetupError saying what to do offline."""
    if image.startswith(f"{IMAGE_REPO}:"):
        raise SetupError(
            f"{image} is the name of a locally built image; posebowl publishes none by default.",
            "Pass the published name: make pull IMAGE=registry/name:tag (then set "
            "POSEBOWL_IMAGE to it), or build it: ENGINE=docker make build.",
        )
    engine = DockerEngine(docker=docker, image=image)
    reason = engine.health_check()
    if reason:
        raise SetupError(reason)
    rc, last = _stream([engine.docker, "pull", image], echo)
    if rc != 0:
        raise SetupError(
            f"docker pull {image} failed (exit code {rc}): {_tail(last, 2)}",
            "Check the name and your network. " + OFFLINE_HINT,
        )
