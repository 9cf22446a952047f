"""The ``docker run`` of a request, as pure functions: the command line, the run's user, and what
each limit becomes with a given daemon (``docker info``, as :class:`DaemonInfo`).

One ``docker run`` per run: ``--network none``, posebowl's scripts and the request's binds as
``--mount`` (read-only unless writable), a read-only root with tmpfs ``/tmp`` and ``$HOME``,
``--shm-size``, the limits as ``--memory`` = ``--memory-swap`` (no swap), ``--cpus``,
``--pids-limit``, the host's uid instead of world-writable folders, no capabilities, ``--init``
(reaps and forwards signals to the whole process group), a unique ``--name``, no log kept by the
daemon, and the image's own ``python`` (its PATH is kept: posebowl sets none).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from posebowl import sandbox
from posebowl.engines.base import Bind, Enforcement, RunRequest

OWNER_LABEL = "org.posebowl.owner"  # on every container: host:pid of the posebowl that runs it
NAME_PREFIX = "posebowl-"
PLATFORM = "linux/amd64"  # the lock's platform (runtimes.locks.PLATFORM) and the platform's
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


def mount_arg(bind: Bind) -> str:
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
    # the same entrypoint as the bwrap engine's, whatever copy the image holds (or none: an
    # image posebowl did not build)
    binds = (*(Bind(host, inside) for host, inside in sandbox.tool_mounts()), *request.binds)
    for b in binds:
        args += ["--mount", mount_arg(b)]
    env = dict(request.env)
    # the init (tini) passes SIGTERM to main.sh's whole process group, as the bwrap engine does
    env["TINI_KILL_PROCESS_GROUP"] = "1"
    if request.interactive and os.environ.get("TERM"):
        env["TERM"] = os.environ["TERM"]
    if not request.interactive:
        # the entrypoint waits for a line on stdin before it ends the container: its cgroup
        # (final peak memory, CPU time, pids count) is read first (see engine.py)
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
