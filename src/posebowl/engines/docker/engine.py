"""The docker engine: one container of the runtime image per run, supervised like a bwrap run.

For machines without bubblewrap (macOS, Windows, locked-down Linux) and for the official
workflow. The image is a runtime's image built from the same lock as the bwrap engine's venv
(``runtimes/definition/NAME.txt``), checked against that lock before the first run
(:func:`posebowl.engines.docker.image.check_image`), or any other image named with ``--image``
(run as it is, its lock unknown).

The command line is :func:`posebowl.engines.docker.argv.run_argv`. While the container runs, the
shared loop (:mod:`posebowl.engines.supervise`) keeps the time limit with ``docker stop -t
GRACE`` (SIGTERM, then SIGKILL), then ``docker kill``, then gives up on a hung client; Ctrl-C or
SIGTERM to posebowl kills the container. Peak memory, CPU time, OOM kills and the pids limit are
read from the container's cgroup when the daemon runs on this machine (Linux): every second, and
a last time while the entrypoint holds the finished container open for it. The container is
removed after ``docker inspect`` has told its exit code and ``OOMKilled``; a guard process
removes it if posebowl dies first.
"""

from __future__ import annotations

import collections
import contextlib
import json
import math
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from posebowl.engines import cgroups
from posebowl.engines.base import Bind, OutputSink, RunRequest, RunResult
from posebowl.engines.docker import daemon, image
from posebowl.engines.docker.argv import (
    END_MARK,
    NAME_PREFIX,
    DaemonInfo,
    enforcement,
    run_argv,
    run_user,
)
from posebowl.engines.docker.image import DEFAULT_IMAGE, IMAGE_ENV, IMAGE_REPO, ImageCheck
from posebowl.engines.supervise import Ladder, spawn, supervise
from posebowl.errors import SetupError

TAIL_BYTES = 4096  # of the output, kept to explain a container that never started
STOP_SLACK_S = 5.0  # after `docker stop -t GRACE` had its time: `docker kill`
POLL_S = 1.0  # how often the container's cgroup is read (peak memory, OOM kills, CPU time)
OBSERVE_TRIES = 30  # docker inspect calls to find the running container's cgroup, at most
INFERRED_OOM_SHARE = 0.9  # exit 137 with the peak at >= 90% of the limit counts as out of memory
DOCKER_CLIENT_ERRORS = (125, 126, 127)  # docker run's own failures, not the container's exit code


def _current_lock(runtime: str | None) -> str | None:
    """The current lock of the runtime ``runtime`` names (None: not one of posebowl's)."""
    from posebowl import runtimes

    if runtime not in runtimes.NAMES:
        return None
    return runtimes.spec(runtime).lock_sha256()


class DockerEngine:
    """Runs requests in containers of the runtime image with the ``docker`` command line."""

    name = "docker"
    needs_runtime_venv = False

    def __init__(
        self, docker: str | None = None, image: str | None = None, lock_sha256: str | None = None
    ) -> None:
        self._docker = docker
        self._image_given = image or os.environ.get(IMAGE_ENV) or None
        self.image = self._image_given or DEFAULT_IMAGE
        self.runtime_name: str | None = None  # the runtime asked for (None: the image's own)
        self._lock_sha256 = lock_sha256
        self._health: str | None | bool = False  # False: not probed yet
        self._checked: dict[tuple[str, str | None], ImageCheck] = {}
        self.info: DaemonInfo | None = None

    @property
    def docker(self) -> str:
        return daemon.find(self._docker)

    @property
    def image_given(self) -> bool:
        """Whether an image was named (``--image``, POSEBOWL_IMAGE) rather than the runtime's."""
        return self._image_given is not None

    # -- health -------------------------------------------------------------------------------
    def health_check(self) -> str | None:
        """``None`` when a Docker daemon answers ``docker info``, else why not and the fix."""
        if self._health is not False:
            return self._health  # type: ignore[return-value]
        found = daemon.probe(self._docker)
        if isinstance(found, str):
            self._health = found
            return found
        self.info = found
        self._health = None
        return None

    # -- the image ----------------------------------------------------------------------------
    def use_image(self, name: str) -> None:
        """Run in the image ``name`` (any image: posebowl's own, or one it did not build)."""
        self._image_given = name
        self.image = name

    def select_runtime(self, name: str, lock_sha256: str) -> None:
        """Run in the image of runtime ``name`` (unless an image was named), built from the
        lock ``lock_sha256``; a named image built by posebowl must hold that runtime too."""
        if self._image_given is None:
            self.image = f"{IMAGE_REPO}:{name}"
        self.runtime_name = name
        self._lock_sha256 = lock_sha256

    def expected_lock(self, runtime: str | None) -> str | None:
        """The lock an image of posebowl's ``runtime`` must have been built from: the selected
        runtime's, else (an image named, no runtime asked for) that runtime's current lock."""
        if self._lock_sha256 is not None:
            return self._lock_sha256
        return _current_lock(runtime)

    def check_image(self) -> ImageCheck:
        """The image's check (:func:`image.check_image`), once per image for this engine;
        SetupError when it is missing, or built by posebowl from another lock or for another
        runtime than the one asked for."""
        key = (self.image, self._lock_sha256)
        found = self._checked.get(key)
        if found is not None:
            return found
        seen = image.read_image(self.docker, self.image)
        if seen.runtime and self.runtime_name and seen.runtime != self.runtime_name:
            other = f"{IMAGE_REPO}:{self.runtime_name}"
            build = image.rebuild_command(other, self.runtime_name, seen.base_image)
            raise SetupError(
                f"The Docker image {self.image} holds posebowl's {seen.runtime} runtime, not the "
                f"{self.runtime_name} runtime this run asks for.",
                f"Run with --runtime {seen.runtime}, or build the {self.runtime_name} runtime's "
                f"image: {build}.",
            )
        check = image.judge(seen, self.expected_lock(seen.runtime))
        self._checked[key] = check
        return check

    # -- running ------------------------------------------------------------------------------
    def execute(self, request: RunRequest, on_output: OutputSink | None) -> RunResult:
        reason = self.health_check()
        if reason:
            raise SetupError(reason)
        assert self.info is not None
        check = self.check_image()
        user = run_user(self.info)
        if hasattr(os, "getuid") and os.getuid() == 0 and not self.info.rootless:
            _hand_over(request.binds, user)
        name = f"{NAME_PREFIX}{secrets.token_hex(6)}"
        owner = f"{socket.gethostname()}:{os.getpid()}"
        tty = request.interactive and sys.stdin.isatty() and sys.stdout.isatty()
        argv = run_argv(self.docker, self.image, request, name, self.info, user, owner, tty)
        guard = _Guard(self.docker, name)  # first: no container may outlive posebowl
        try:
            return self._run(argv, request, name, on_output, check)
        finally:
            # the guard removes the finished container in the background (~0.1-0.2 s of
            # `docker rm` off the run's critical path); without a guard, remove it here
            if not guard.done(remove=True):
                daemon.cli(self.docker, "rm", "--force", "--volumes", name, timeout=60)

    def _inspect(self, name: str) -> dict[str, Any] | None:
        proc = daemon.cli(self.docker, "inspect", "--type", "container", name, timeout=30)
        if proc.returncode != 0:
            return None
        try:
            found = json.loads(proc.stdout)
        except ValueError:
            return None
        return found[0] if isinstance(found, list) and found else None

    def _run(
        self,
        argv: list[str],
        request: RunRequest,
        name: str,
        on_output: OutputSink | None,
        check: ImageCheck,
    ) -> RunResult:
        lim = request.limits
        notes = list(check.notes)
        start = time.monotonic()
        capture = not request.interactive
        # capture: Ctrl-C is ours to handle, we stop the container; stdin: the entrypoint's go
        proc = spawn(argv, capture, stdin_pipe=capture)
        box = _Container(self, proc, name, lim.kill_grace_s, on_output)
        try:
            ended = supervise(
                proc,
                box,
                lim.time_limit_s,
                Ladder(kill_after_s=lim.kill_grace_s + STOP_SLACK_S, abandon_after_s=STOP_SLACK_S),
                box.watch,
                interactive=request.interactive,
                poll_s=POLL_S,
                start=start,
            )
        finally:
            box.close()
        exit_code = ended.exit_code
        if box.complete and not ended.timed_out and exit_code not in DOCKER_CLIENT_ERRORS:
            # the entrypoint's last line came once, at the end, and the cgroup (with its OOM
            # kill count) was read then: `docker run` returned the container's exit code, and
            # inspect has nothing to add
            state: dict[str, Any] | None = {"State": {"StartedAt": "held", "ExitCode": exit_code}}
        else:
            state = self._inspect(name)
        if state is None and isinstance(gone := daemon.probe(self._docker), str):
            raise SetupError(
                f"The Docker daemon stopped answering during the run (docker run exit code "
                f"{exit_code}): {daemon.tail(box.tail.text()) or 'no message'}",
                f"{gone} Then run the submission again.",
            )
        st = (state or {}).get("State") or {}
        started = str(st.get("StartedAt") or "")
        if not started or started.startswith("0001-"):  # Go's zero time: never started
            raise SetupError(
                f"docker run could not start the container (exit code {exit_code}): "
                f"{daemon.tail(box.tail.text()) or 'no message'}",
                "Read Docker's message above; check the image (posebowl runtime build --engine "
                "docker) and that Docker may mount the folders posebowl uses (on Docker Desktop, "
                "File sharing; set POSEBOWL_TMPDIR to a shared folder).",
            )
        if isinstance(st.get("ExitCode"), int):
            exit_code = st["ExitCode"]
        peak = box.peak
        oom_kills = max(box.oom_kills, 1 if st.get("OOMKilled") else 0)
        if (
            not oom_kills
            and not ended.timed_out
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
        if box.cpu_s is None:
            notes.append("cpu_seconds unknown (the container's cgroup is not readable here)")
        assert self.info is not None
        return RunResult(
            exit_code=exit_code,
            wall_s=ended.wall_s,
            timed_out=ended.timed_out,
            oom_kills=oom_kills,
            pids_limit_hit=box.pids_hit,
            cpu_s=box.cpu_s,
            peak_memory_bytes=peak,
            enforced=enforcement(request, self.info),
            notes=tuple(notes),
            runtime=f"image {self.image}",
            runtime_lock=check.lock_sha256,
        )


class _Container:
    """One container as the supervision loop sees it (:class:`~posebowl.engines.supervise.Target`)
    plus what it reads of the container's cgroup while it runs (the largest peak, the last CPU
    time, any OOM kill or pids limit hit): the cgroup goes with the container."""

    def __init__(
        self,
        engine: DockerEngine,
        proc: subprocess.Popen[bytes],
        name: str,
        grace_s: float,
        sink: OutputSink | None,
    ) -> None:
        self._engine = engine
        self._docker = engine.docker
        self._proc = proc
        self._name = name
        self._grace_s = grace_s
        self.tail = _Tail(sink)
        self._window = b""
        self._observer: cgroups.Cgroup | None | bool = True  # True: not found yet; None: gave up
        self._tries = 0
        # the container is looked for once it has printed (it runs then); an interactive run
        # prints to the terminal, not to us: from the start
        self._printed = proc.stdout is None
        self._marks = 0  # how often the entrypoint's last line was seen
        self._after_mark = False  # output came after it (a forged last line)
        self._oom_counted = False
        self._stopper: subprocess.Popen[bytes] | None = None
        self.peak: int | None = None
        self.cpu_s: float | None = None
        self.oom_kills = 0
        self.pids_hit = False

    # -- the output ---------------------------------------------------------------------------
    @property
    def complete(self) -> bool:
        """Whether the run ended as it should: held at its last line (seen once, nothing after
        it), the cgroup read then, with an OOM kill count."""
        return (
            self._marks == 1
            and not self._after_mark
            and isinstance(self._observer, cgroups.Cgroup)
            and self._oom_counted
        )

    def watch(self, data: bytes) -> None:
        """Sees every chunk of output before the log does. The first one means the container
        runs: find its cgroup now, while the entrypoint works. The entrypoint's last line means
        the container is held for us (its cgroup still exists): read it a last time, then let
        go. (A forged last line only makes this reading early: the polling goes on.)"""
        if self._marks and data.strip():
            self._after_mark = True
        seen = self._window + data
        at = seen.rfind(END_MARK)
        ended = at >= 0
        self._window = seen[-len(END_MARK) :]
        self.tail(data)
        if not self._printed:
            self._printed = True
            self.tick()
        if ended:
            self._marks += 1
            # (the genuine last line is the last output: anything after its end is not)
            self._after_mark = bool(seen[at:].partition(b"\n")[2].strip())
            if self._proc.stdin is not None and not self._proc.stdin.closed:
                if self._observer is True:
                    self._tries = 0  # the container is held: it is running now, find it
                self.tick()
                _release(self._proc)

    # -- the cgroup ---------------------------------------------------------------------------
    def _observe(self) -> cgroups.Cgroup | None | bool:
        """The running container's cgroup (to read usage from); True: not started yet."""
        state = self._engine._inspect(self._name)
        if state is None:
            return True
        st = state.get("State") or {}
        pid = int(st.get("Pid") or 0)
        if not st.get("Running") or pid <= 0:
            return True
        return cgroups.of_process(pid, str(state.get("Id") or ""))

    def tick(self) -> None:
        if self._observer is True and self._printed:
            self._tries += 1
            self._observer = self._observe() if self._tries <= OBSERVE_TRIES else None
        if isinstance(self._observer, cgroups.Cgroup):
            u = self._observer.usage()
            if u.peak_memory_bytes is not None:
                self.peak = max(self.peak or 0, u.peak_memory_bytes)
            self.cpu_s = u.cpu_s if u.cpu_s is not None else self.cpu_s
            self.oom_kills = max(self.oom_kills, u.oom_kills)
            self.pids_hit = self.pids_hit or u.pids_limit_hit
            self._oom_counted = u.oom_counted

    # -- stopping -----------------------------------------------------------------------------
    def terminate(self) -> None:
        """``docker stop -t GRACE`` in the background: SIGTERM, SIGKILL after the grace."""
        self._stopper = subprocess.Popen(
            [self._docker, "stop", "--time", str(math.ceil(self._grace_s)), self._name],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def kill(self) -> None:
        _release(self._proc)
        daemon.cli(self._docker, "kill", self._name, timeout=15)

    def abandon(self) -> None:
        """The docker client itself hangs: let it go."""
        self._proc.kill()

    def close(self) -> None:
        _release(self._proc)
        if self._stopper is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._stopper.wait(timeout=STOP_SLACK_S)
            if self._stopper.poll() is None:
                self._stopper.kill()
                self._stopper.wait()


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


#: The guard: waits for posebowl's word. "rm": the run is over, remove the container (in the
#: background: posebowl goes on meanwhile); "done": nothing to do. If posebowl dies first (its end
#: of the pipe closes, even on SIGKILL), it removes the container, which the daemon would
#: otherwise keep running, twice (again: a container created just as posebowl died).
_GUARD = """import subprocess, sys, time
word = sys.stdin.readline().strip()
for _ in range(0 if word == "done" else 1 if word == "rm" else 2):
    subprocess.run([sys.argv[1], "rm", "--force", "--volumes", sys.argv[2]],
                   stdin=subprocess.DEVNULL, capture_output=True)
    if word != "rm":
        time.sleep(2)
"""


#: The same in sh where there is one (a shell starts in a millisecond, Python in 20-200 ms).
_GUARD_SH = (
    'read -r x; case "$x" in done) ;; rm) exec "$0" rm --force --volumes "$1" ;; '
    '*) "$0" rm --force --volumes "$1"; sleep 2; exec "$0" rm --force --volumes "$1" ;; esac'
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

    def done(self, remove: bool = False) -> bool:
        """The run is over: ``remove`` the container in the background, or just end the guard.
        False when there is no guard to do it (the caller removes the container itself)."""
        proc = self._proc
        if proc is None or proc.stdin is None or proc.poll() is not None:
            return False
        try:
            proc.stdin.write(b"rm\n" if remove else b"done\n")
            proc.stdin.close()
        except OSError:
            return False
        if not remove:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        return True


def _release(proc: subprocess.Popen[bytes]) -> None:
    """Give the held entrypoint its go (a line, then the end of its stdin); idempotent."""
    if proc.stdin is None or proc.stdin.closed:
        return
    with contextlib.suppress(OSError):
        proc.stdin.write(b"\n")
        proc.stdin.flush()
    with contextlib.suppress(OSError):
        proc.stdin.close()


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
