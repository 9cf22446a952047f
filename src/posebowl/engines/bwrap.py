"""The ``bwrap`` engine: bubblewrap namespaces + cgroup limits, no daemon, ~10 ms to start.

Inside, nothing of the host is visible but what is listed here: ``/usr`` (and the ``/bin``,
``/lib*`` links into it), a few harmless files of ``/etc`` (the loader cache, ``alternatives``,
time zone, certificates), a generated ``passwd``/``group``/``hosts``, the CPU topology under
``/sys`` that OpenVINO and onnxruntime read, the runtime venv and the interpreter it points at
(read-only, at their host paths), and the binds of the request. Everything else is an empty,
read-only tmpfs. New user, PID, network (loopback only), IPC, UTS and cgroup namespaces; uid 1000
inside with no capabilities; nested user namespaces disabled; a new session; the sandbox dies
with its parent, and every process in it dies when the entrypoint exits (PID namespace).
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from posebowl import sandbox, scratch
from posebowl.engines import cgroups
from posebowl.engines.base import (
    Enforcement,
    OutputSink,
    RunRequest,
    RunResult,
)
from posebowl.engines.supervise import Ladder, spawn, supervise
from posebowl.errors import SetupError

INSTALL_HINT = (
    "Install bubblewrap: sudo apt-get install bubblewrap (Debian/Ubuntu), "
    "sudo dnf install bubblewrap (Fedora), or run make system-deps."
)
USERNS_HINT = (
    "Allow unprivileged user namespaces: on Ubuntu 23.10+ run "
    "`sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` (or add an AppArmor profile "
    "for bwrap); inside a container, start it with --security-opt seccomp=unconfined "
    "--security-opt apparmor=unconfined (or use --engine docker)."
)
ROOT_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
ETC_FILES = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "localtime",
    "timezone",
    "ssl",
    "ca-certificates",
    "nsswitch.conf",
    "os-release",
    "mime.types",
)
SYS_DIRS = ("/sys/devices/system/cpu", "/sys/devices/system/node")


def _descendants(root: int) -> list[int]:
    """Every live descendant of ``root`` (scanning /proc), children before grandchildren."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # the command name may hold spaces and parentheses: the ppid follows the last ')'
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(0), []):
            out.append(c)
            todo.append(c)
    return out


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


class BwrapEngine:
    """Runs requests with bubblewrap; limits with cgroups (see :mod:`posebowl.engines.cgroups`)."""

    name = "bwrap"
    needs_runtime_venv = True

    def __init__(self, bwrap: str | None = None) -> None:
        self._bwrap = bwrap
        self._health: str | None | bool = False  # False: not probed yet

    @property
    def bwrap(self) -> str:
        found = self._bwrap or shutil.which("bwrap")
        if not found:
            raise SetupError("bubblewrap (bwrap) is not installed.", INSTALL_HINT)
        return found

    def select_runtime(self, name: str, lock_sha256: str) -> None:
        """Nothing to do: the run's request carries the runtime venv itself."""

    # -- health -------------------------------------------------------------------------------
    def health_check(self) -> str | None:
        """Start a throw-away sandbox once; its failure reason (with the fix) or None."""
        if self._health is not False:
            return self._health  # type: ignore[return-value]
        exe = self._bwrap or shutil.which("bwrap")
        if not exe or not os.access(exe, os.X_OK):
            self._health = f"bubblewrap (bwrap) is not installed. {INSTALL_HINT}"
            return self._health
        argv = [exe, *self._namespace_args(network=False, interactive=False)]
        argv += self._system_args()
        argv += ["--proc", "/proc", "--dev", "/dev", "--", "/bin/sh", "-c", "exit 0"]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, env={})
        except (OSError, subprocess.TimeoutExpired) as exc:
            self._health = f"bubblewrap could not start a sandbox ({exc}). {USERNS_HINT}"
            return self._health
        if proc.returncode != 0:
            msg = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "no message"
            self._health = (
                f"bubblewrap cannot create namespaces on this machine ({msg}), so submissions "
                f"cannot be isolated and will not be run. {USERNS_HINT}"
            )
        else:
            self._health = None
        return self._health

    # -- command line -------------------------------------------------------------------------
    @staticmethod
    def _namespace_args(network: bool, interactive: bool) -> list[str]:
        args = ["--unshare-all", "--unshare-user"]
        if network:
            args.append("--share-net")
        args += ["--uid", str(sandbox.UID), "--gid", str(sandbox.GID), "--disable-userns"]
        args += ["--die-with-parent", "--hostname", "posebowl"]
        if not interactive:
            # a new session: the sandbox cannot inject keystrokes into the terminal (TIOCSTI)
            args.append("--new-session")
        if os.geteuid() == 0:
            args += ["--cap-drop", "ALL"]
        return args

    @staticmethod
    def _system_args() -> list[str]:
        args = ["--ro-bind", "/usr", "/usr"]
        for name in ROOT_LINKS:
            p = Path("/") / name
            if p.is_symlink():
                args += ["--symlink", os.readlink(p), f"/{name}"]
            elif p.is_dir():
                args += ["--ro-bind", str(p), f"/{name}"]
        return args

    def _argv(self, request: RunRequest, work: Path) -> list[str]:
        lim = request.limits
        args = [self.bwrap, *self._namespace_args(request.network, request.interactive)]
        args += self._system_args()
        etc = work / "etc"
        etc.mkdir()
        (etc / "passwd").write_text(
            f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
            f"{sandbox.USER}:x:{sandbox.UID}:{sandbox.GID}:{sandbox.USER}:{sandbox.HOME}:/bin/sh\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        )
        (etc / "group").write_text(
            f"root:x:0:\n{sandbox.USER}:x:{sandbox.GID}:\nnogroup:x:65534:\n"
        )
        (etc / "hosts").write_text("127.0.0.1 localhost posebowl\n::1 localhost posebowl\n")
        for name in ("passwd", "group", "hosts"):
            args += ["--ro-bind", str(etc / name), f"/etc/{name}"]
        etc_names = list(ETC_FILES)
        if request.network:
            etc_names.append("resolv.conf")
        for name in etc_names:
            args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        for d in SYS_DIRS:
            args += ["--ro-bind-try", d, d]
        args += ["--proc", "/proc", "--dev", "/dev"]
        args += ["--perms", "1777", "--size", str(lim.effective_shm_bytes), "--tmpfs", "/dev/shm"]
        tmp_size = str(lim.memory_bytes or lim.effective_shm_bytes)
        args += ["--perms", "1777", "--size", tmp_size, "--tmpfs", "/tmp"]
        args += ["--perms", "0700", "--size", tmp_size, "--tmpfs", sandbox.HOME]
        if request.runtime is not None:
            rt = request.runtime
            if not rt.base_prefix.is_relative_to("/usr"):
                args += ["--ro-bind", str(rt.base_prefix), str(rt.base_prefix)]
            args += ["--ro-bind", str(rt.venv), str(rt.venv)]
        for host, inside in sandbox.tool_mounts():
            args += ["--ro-bind", str(host), inside]
        for b in request.binds:
            args += ["--bind" if b.writable else "--ro-bind", str(b.source), b.dest]
        args += ["--remount-ro", "/"]
        args += ["--clearenv"]
        for k, v in self._env(request).items():
            args += ["--setenv", k, v]
        args += ["--chdir", request.cwd, "--", *request.command]
        return args

    @staticmethod
    def _env(request: RunRequest) -> Mapping[str, str]:
        path = "/usr/local/bin:/usr/bin:/bin"
        env: dict[str, str] = {}
        if request.runtime is not None:
            path = f"{request.runtime.venv}/bin:{path}"
            env["VIRTUAL_ENV"] = str(request.runtime.venv)
        env["PATH"] = path
        if request.interactive and os.environ.get("TERM"):
            env["TERM"] = os.environ["TERM"]
        env.update(request.env)
        return env

    # -- running ------------------------------------------------------------------------------
    def execute(self, request: RunRequest, on_output: OutputSink | None) -> RunResult:
        reason = self.health_check()
        if reason:
            raise SetupError(reason)
        cg = cgroups.create(request.limits)
        work = scratch.make("posebowl-bwrap-")
        try:
            argv = self._argv(request, work)
            return self._run(argv, request, cg, on_output)
        finally:
            cg.close()
            scratch.remove_tree(work)

    def _run(
        self,
        argv: list[str],
        request: RunRequest,
        cg: cgroups.Cgroup,
        on_output: OutputSink | None,
    ) -> RunResult:
        lim = request.limits
        usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.monotonic()
        capture = not request.interactive
        try:
            # bubblewrap's own processes (its init is PID 1 inside) get no environment at all:
            # none of posebowl's (the user's tokens and keys) may be readable in the sandbox
            proc = spawn(argv, capture, preexec_fn=cg.join_self if cg.version else None, env={})
        except subprocess.SubprocessError as exc:  # join_self failed in the child
            raise SetupError(
                f"Could not place the sandbox in its cgroup ({exc}).",
                "Check that /sys/fs/cgroup is writable for you, or report this as a bug.",
            ) from exc
        ended = supervise(
            proc,
            _Sandbox(proc.pid, cg),
            lim.time_limit_s,
            Ladder(kill_after_s=lim.kill_grace_s),
            on_output,
            interactive=request.interactive,
            start=start,
        )
        exit_code, wall, timed_out = ended.exit_code, ended.wall_s, ended.timed_out
        usage = cg.usage()
        cpu_s, peak = usage.cpu_s, usage.peak_memory_bytes
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        notes: list[str] = []
        if cpu_s is None:
            cpu_s = (after.ru_utime + after.ru_stime) - (
                usage_before.ru_utime + usage_before.ru_stime
            )
            notes.append("cpu_seconds from getrusage of reaped processes (no cgroup cpuacct)")
        if peak is None:
            peak = after.ru_maxrss * 1024
            notes.append("peak_memory_bytes is the largest single process (no cgroup memory)")
        enforced = dict(cg.enforced)
        enforced["time_limit"] = Enforcement(
            True, f"wall clock, SIGTERM then SIGKILL after {lim.kill_grace_s:g} s"
        )
        enforced["network"] = Enforcement(
            not request.network,
            "network namespace with loopback only"
            if not request.network
            else "host network shared (posebowl shell)",
        )
        rt = request.runtime
        return RunResult(
            exit_code=exit_code,
            wall_s=wall,
            timed_out=timed_out,
            oom_kills=usage.oom_kills,
            pids_limit_hit=usage.pids_limit_hit,
            cpu_s=cpu_s,
            peak_memory_bytes=peak,
            enforced=enforced,
            notes=tuple(notes),
            runtime=None if rt is None else rt.label,
            runtime_lock=None if rt is None else rt.lock_sha256,
        )


class _Sandbox:
    """One bwrap run as the supervision loop sees it (:class:`posebowl.engines.supervise.Target`):
    its cgroup outlives the run and is read once after it, so there is nothing to sample."""

    def __init__(self, outer: int, cg: cgroups.Cgroup) -> None:
        self._outer = outer
        self._cg = cg

    def terminate(self) -> None:
        """The polite layer: SIGTERM to every process of the run except bubblewrap's own."""
        _signal_all([p for p in _descendants(self._outer) if _comm(p) != "bwrap"], signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the whole tree: the PID namespace dies with its init."""
        _signal_all([*_descendants(self._outer), self._outer], signal.SIGKILL)
        self._cg.kill_all(timeout_s=2.0)

    def abandon(self) -> None:
        """Never needed: bubblewrap always ends once its tree is killed."""

    def tick(self) -> None:
        """Nothing to sample while it runs."""
