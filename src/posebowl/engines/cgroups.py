"""Memory, process-count and CPU limits with Linux cgroups, v1 or v2, whichever the host has.

:func:`create` makes one cgroup per run (per controller hierarchy on v1) next to the caller's own
cgroup, writes the limits, and never raises for what it cannot do: each limit it could not set is
recorded in :attr:`Cgroup.enforced` with the reason. The child joins with :meth:`Cgroup.join_self`
(called between fork and exec, so everything the run starts is inside from its first instruction);
afterwards :meth:`Cgroup.usage` reads CPU time, peak memory and out-of-memory kills, and
:meth:`Cgroup.close` kills anything left and removes the cgroup.

v1 (as on our machines): ``memory.limit_in_bytes`` (+ ``memory.memsw.limit_in_bytes`` so swap
cannot stretch it), ``pids.max``, ``cpu.cfs_quota_us``; OOM kills from ``memory.oom_control``.
v2 (a systemd desktop with delegation, or root): a sibling of the caller's cgroup with
``memory.max``, ``memory.swap.max=0``, ``pids.max``, ``cpu.max``; OOM kills from
``memory.events``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from posebowl.engines.base import Enforcement
from posebowl.limits import Limits

CPU_PERIOD_US = 100_000
PREFIX = "posebowl-"


@dataclass(frozen=True)
class Mount:
    fstype: str  # "cgroup" (v1) or "cgroup2"
    root: str  # the cgroup path the mount shows at its mount point
    point: Path
    controllers: frozenset[str]  # v1 only


def parse_mountinfo(text: str) -> list[Mount]:
    """The cgroup mounts listed in ``/proc/self/mountinfo``."""
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 3 or rfields[0] not in ("cgroup", "cgroup2"):
            continue
        point = fields[4].replace("\\040", " ")
        opts = set(rfields[2].split(",")) | set(fields[5].split(","))
        ctrls = frozenset(opts & {"memory", "pids", "cpu", "cpuacct"})
        mounts.append(Mount(rfields[0], fields[3], Path(point), ctrls))
    return mounts


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """``/proc/self/cgroup`` -> {controller: path}; the v2 path is under the key ``""``."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, ctrls, path = parts
        for c in ctrls.split(",") if ctrls else [""]:
            out[c] = path
    return out


def _host_dir(mount: Mount, path: str) -> Path:
    rel = path
    if mount.root != "/" and (path == mount.root or path.startswith(mount.root + "/")):
        rel = path[len(mount.root) :]
    return mount.point / rel.lstrip("/")


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _keyed(text: str | None, key: str) -> int | None:
    """The value of ``key N`` in a flat-keyed cgroup file (memory.events, pids.events, ...)."""
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == key:
            with contextlib.suppress(ValueError):
                return int(parts[1])
    return None


def _int(text: str | None) -> int | None:
    try:
        return int((text or "").strip())
    except ValueError:
        return None


def _write(path: Path, value: str) -> None:
    path.write_text(value)


@dataclass
class Usage:
    cpu_s: float | None = None
    peak_memory_bytes: int | None = None
    oom_kills: int = 0
    pids_limit_hit: bool = False
    oom_counted: bool = False  # the kernel keeps an oom_kill count here (oom_kills is known)


@dataclass
class Cgroup:
    """One run's cgroup(s). ``dirs`` maps a role ('memory', 'pids', 'cpu', 'cpuacct') to a dir."""

    version: int | None
    dirs: dict[str, Path] = field(default_factory=dict)
    enforced: dict[str, Enforcement] = field(default_factory=dict)
    _fds: list[int] = field(default_factory=list)
    _created: list[Path] = field(default_factory=list)

    def join_self(self) -> None:
        """Move the calling process into every cgroup of this run (for ``preexec_fn``).

        Writes ``0`` ("the writer") to pre-opened ``cgroup.procs`` fds: no allocation or import
        happens between fork and exec.
        """
        for fd in self._fds:
            os.write(fd, b"0")

    def pids(self) -> set[int]:
        out: set[int] = set()
        for d in set(self.dirs.values()):
            for line in (_read(d / "cgroup.procs") or "").split():
                with contextlib.suppress(ValueError):
                    out.add(int(line))
        return out

    def usage(self) -> Usage:
        u = Usage()
        mem, pids, acct = self.dirs.get("memory"), self.dirs.get("pids"), self.dirs.get("cpuacct")
        if self.version == 1:
            if mem is not None:
                u.peak_memory_bytes = _int(_read(mem / "memory.max_usage_in_bytes"))
                kills = _keyed(_read(mem / "memory.oom_control"), "oom_kill")
                u.oom_kills, u.oom_counted = kills or 0, kills is not None
            if pids is not None:
                u.pids_limit_hit = (_keyed(_read(pids / "pids.events"), "max") or 0) > 0
            if acct is not None:
                ns = _int(_read(acct / "cpuacct.usage"))
                u.cpu_s = ns / 1e9 if ns is not None else None
        elif self.version == 2:
            d = next(iter(self.dirs.values()), None)
            if d is not None:
                u.peak_memory_bytes = _int(_read(d / "memory.peak"))
                kills = _keyed(_read(d / "memory.events"), "oom_kill")
                u.oom_kills, u.oom_counted = kills or 0, kills is not None
                u.pids_limit_hit = (_keyed(_read(d / "pids.events"), "max") or 0) > 0
                usec = _keyed(_read(d / "cpu.stat"), "usage_usec")
                u.cpu_s = usec / 1e6 if usec is not None else None
        return u

    def kill_all(self, timeout_s: float = 5.0) -> int:
        """SIGKILL every process still in the cgroup; return how many there were."""
        first = self.pids()
        if not first:
            return 0
        if self.version == 2:
            d = next(iter(self.dirs.values()))
            with contextlib.suppress(OSError):
                _write(d / "cgroup.kill", "1")
        deadline = time.monotonic() + timeout_s
        while (left := self.pids()) and time.monotonic() < deadline:
            for pid in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)
        return len(first)

    def close(self) -> None:
        """Kill what is left, then remove the cgroup directories (idempotent)."""
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []
        self.kill_all()
        for d in reversed(self._created):
            for _ in range(50):  # v1 memory cgroups may need a moment to drain
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
        self._created = []


def _not(reason: str) -> Enforcement:
    return Enforcement(False, reason)


def _owner_alive(d: Path) -> bool:
    """Whether the posebowl process named in ``d`` (``PREFIX<pid>-<hex>``) still runs."""
    try:
        pid = int(d.name[len(PREFIX) :].split("-")[0])
    except ValueError:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sweep_stale(parent: Path) -> None:
    """Remove empty cgroups left by earlier runs that were killed before cleaning up.

    Only those whose posebowl process is gone: a concurrent run's cgroup is empty between its
    creation and its child joining it, and removing it then breaks that run.
    """
    with contextlib.suppress(OSError):
        for d in parent.glob(PREFIX + "*"):
            if not _owner_alive(d):
                with contextlib.suppress(OSError):
                    d.rmdir()


def _make_dir(parent: Path, name: str, cg: Cgroup) -> Path:
    _sweep_stale(parent)
    d = parent / name
    d.mkdir()
    cg._created.append(d)
    return d


def _create_v1(limits: Limits, mounts: list[Mount], own: dict[str, str], name: str) -> Cgroup:
    cg = Cgroup(version=1)
    by_ctrl: dict[str, Mount] = {}
    for m in mounts:
        if m.fstype == "cgroup":
            for c in m.controllers:
                by_ctrl.setdefault(c, m)
    made: dict[Path, Path] = {}  # mount point -> run dir (cpu and cpuacct may share a mount)
    errors: dict[str, str] = {}
    for ctrl in ("memory", "pids", "cpu", "cpuacct"):
        found = by_ctrl.get(ctrl)
        if found is None:
            errors[ctrl] = f"no cgroup v1 {ctrl} hierarchy is mounted"
            continue
        m = found
        if m.point in made:
            cg.dirs[ctrl] = made[m.point]
            continue
        parent = _host_dir(m, own.get(ctrl, "/"))
        try:
            d = _make_dir(parent, name, cg)
            cg._fds.append(os.open(d / "cgroup.procs", os.O_WRONLY | os.O_CREAT, 0o644))
        except OSError as exc:
            errors[ctrl] = f"cannot create a cgroup in {parent} ({exc.strerror})"
            continue
        made[m.point] = d
        cg.dirs[ctrl] = d

    if limits.memory_bytes is None:
        cg.enforced["memory"] = _not("no memory limit asked for")
    elif "memory" in cg.dirs:
        d = cg.dirs["memory"]
        try:
            _write(d / "memory.limit_in_bytes", str(limits.memory_bytes))
            how = "cgroup v1 memory.limit_in_bytes"
            if (d / "memory.memsw.limit_in_bytes").exists():
                _write(d / "memory.memsw.limit_in_bytes", str(limits.memory_bytes))
                how += " + memory.memsw.limit_in_bytes (no swap past it)"
            cg.enforced["memory"] = Enforcement(True, how)
        except OSError as exc:
            cg.enforced["memory"] = _not(f"cannot write the memory limit ({exc.strerror})")
    else:
        cg.enforced["memory"] = _not(errors["memory"])

    if limits.pids is None:
        cg.enforced["pids"] = _not("no process limit asked for")
    elif "pids" in cg.dirs:
        try:
            _write(cg.dirs["pids"] / "pids.max", str(limits.pids))
            cg.enforced["pids"] = Enforcement(True, "cgroup v1 pids.max")
        except OSError as exc:
            cg.enforced["pids"] = _not(f"cannot write pids.max ({exc.strerror})")
    else:
        cg.enforced["pids"] = _not(errors["pids"])

    cpus = limits.effective_cpus()
    if cpus is None:
        cg.enforced["cpus"] = _not("no CPU limit asked for")
    elif "cpu" in cg.dirs:
        d = cg.dirs["cpu"]
        try:
            _write(d / "cpu.cfs_period_us", str(CPU_PERIOD_US))
            _write(d / "cpu.cfs_quota_us", str(max(1000, int(cpus * CPU_PERIOD_US))))
            cg.enforced["cpus"] = Enforcement(True, f"cgroup v1 cpu.cfs_quota_us ({cpus:g} cores)")
        except OSError as exc:
            cg.enforced["cpus"] = _not(f"cannot write the CPU quota ({exc.strerror})")
    else:
        cg.enforced["cpus"] = _not(errors["cpu"])
    return cg


def _create_v2(limits: Limits, mount: Mount, own: dict[str, str], name: str) -> Cgroup:
    cg = Cgroup(version=2)
    want = {"memory", "pids", "cpu"}
    own_path = own.get("", "/")
    own_dir = _host_dir(mount, own_path)
    parent = own_dir if own_dir == mount.point else own_dir.parent
    available = set((_read(parent / "cgroup.controllers") or "").split())
    enabled = set((_read(parent / "cgroup.subtree_control") or "").split())
    for c in sorted((want & available) - enabled):
        with contextlib.suppress(OSError):
            _write(parent / "cgroup.subtree_control", f"+{c}")
    enabled = set((_read(parent / "cgroup.subtree_control") or "").split())
    try:
        d = _make_dir(parent, name, cg)
        cg._fds.append(os.open(d / "cgroup.procs", os.O_WRONLY | os.O_CREAT, 0o644))
    except OSError as exc:
        reason = f"cannot create a cgroup v2 in {parent} ({exc.strerror})"
        for k in ("memory", "pids", "cpus"):
            cg.enforced[k] = _not(reason)
        return cg
    for role in ("memory", "pids", "cpu", "cpuacct"):
        cg.dirs[role] = d
    have = enabled  # a child gets exactly the controllers its parent enables for it

    def missing(c: str) -> Enforcement:
        return _not(f"the {c} controller is not delegated to {parent}")

    if limits.memory_bytes is None:
        cg.enforced["memory"] = _not("no memory limit asked for")
    elif "memory" in have:
        try:
            _write(d / "memory.max", str(limits.memory_bytes))
            with contextlib.suppress(OSError):
                _write(d / "memory.swap.max", "0")
            cg.enforced["memory"] = Enforcement(True, "cgroup v2 memory.max, memory.swap.max=0")
        except OSError as exc:
            cg.enforced["memory"] = _not(f"cannot write memory.max ({exc.strerror})")
    else:
        cg.enforced["memory"] = missing("memory")
    if limits.pids is None:
        cg.enforced["pids"] = _not("no process limit asked for")
    elif "pids" in have:
        try:
            _write(d / "pids.max", str(limits.pids))
            cg.enforced["pids"] = Enforcement(True, "cgroup v2 pids.max")
        except OSError as exc:
            cg.enforced["pids"] = _not(f"cannot write pids.max ({exc.strerror})")
    else:
        cg.enforced["pids"] = missing("pids")
    cpus = limits.effective_cpus()
    if cpus is None:
        cg.enforced["cpus"] = _not("no CPU limit asked for")
    elif "cpu" in have:
        try:
            _write(d / "cpu.max", f"{max(1000, int(cpus * CPU_PERIOD_US))} {CPU_PERIOD_US}")
            cg.enforced["cpus"] = Enforcement(True, f"cgroup v2 cpu.max ({cpus:g} cores)")
        except OSError as exc:
            cg.enforced["cpus"] = _not(f"cannot write cpu.max ({exc.strerror})")
    else:
        cg.enforced["cpus"] = missing("cpu")
    return cg


def create(
    limits: Limits,
    mountinfo: str | None = None,
    proc_cgroup: str | None = None,
) -> Cgroup:
    """Make this run's cgroup(s) and set the limits; see :attr:`Cgroup.enforced` for the outcome.

    ``mountinfo`` and ``proc_cgroup`` default to this process's own (tests pass fakes).
    """
    if mountinfo is None:
        mountinfo = _read(Path("/proc/self/mountinfo")) or ""
    if proc_cgroup is None:
        proc_cgroup = _read(Path("/proc/self/cgroup")) or ""
    mounts = parse_mountinfo(mountinfo)
    own = parse_proc_cgroup(proc_cgroup)
    name = f"{PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
    if any(m.fstype == "cgroup" and m.controllers & {"memory", "pids", "cpu"} for m in mounts):
        return _create_v1(limits, mounts, own, name)
    v2 = [m for m in mounts if m.fstype == "cgroup2"]
    if v2:
        return _create_v2(limits, v2[0], own, name)
    cg = Cgroup(version=None)
    for k in ("memory", "pids", "cpus"):
        cg.enforced[k] = _not("no cgroup filesystem is mounted")
    return cg


def of_process(
    pid: int,
    must_contain: str,
    mountinfo: str | None = None,
    proc_cgroup: str | None = None,
) -> Cgroup | None:
    """The cgroup(s) of an existing process, to read its usage from (e.g. a Docker container's).

    Only cgroup paths holding ``must_contain`` (the container's id) are used, so a process of
    another machine or namespace is never mistaken for it; ``None`` when none is found. The
    result is for :meth:`Cgroup.usage` only: never call ``kill_all`` or ``close`` on it.
    """
    if mountinfo is None:
        mountinfo = _read(Path("/proc/self/mountinfo")) or ""
    if proc_cgroup is None:
        proc_cgroup = _read(Path(f"/proc/{pid}/cgroup")) or ""
    mounts = parse_mountinfo(mountinfo)
    paths = parse_proc_cgroup(proc_cgroup)
    if not must_contain:
        return None
    v1 = [m for m in mounts if m.fstype == "cgroup" and m.controllers]
    if v1:
        dirs: dict[str, Path] = {}
        for ctrl in ("memory", "pids", "cpuacct"):
            path = paths.get(ctrl)
            mount = next((m for m in v1 if ctrl in m.controllers), None)
            if path is not None and mount is not None and must_contain in path:
                dirs[ctrl] = _host_dir(mount, path)
        return Cgroup(version=1, dirs=dirs) if dirs else None
    v2 = [m for m in mounts if m.fstype == "cgroup2"]
    path = paths.get("")
    if v2 and path is not None and must_contain in path:
        d = _host_dir(v2[0], path)
        return Cgroup(version=2, dirs=dict.fromkeys(("memory", "pids", "cpu", "cpuacct"), d))
    return None
