"""The engine boundary: what every isolation backend gets, does and reports.

An engine only *executes* a prepared run inside its isolation: it mounts the :class:`Bind` list,
applies the :class:`~posebowl.limits.Limits`, runs ``command`` from ``cwd``, streams the merged
output to a callback, enforces the wall-time limit (SIGTERM, then SIGKILL of the whole tree) and
reports a :class:`RunResult`: exit code, timeout, out-of-memory kills, resource use and, limit by
limit, whether it was enforced. Everything else (opening the zip, the data view, the log, the
output checks, the verdict) is shared by all engines in :mod:`posebowl.run`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from posebowl import exitcodes
from posebowl.limits import Limits

if TYPE_CHECKING:
    from posebowl.runtimes import Runtime

OutputSink = Callable[[bytes], None]


class Status(StrEnum):
    """The verdict of a run; each has its own ``posebowl run`` exit code."""

    SUCCESS = "SUCCESS"
    FAILED = "FAILED"  # main.sh exited non-zero
    TIMEOUT = "TIMEOUT"  # the wall-time limit was reached; the whole tree was killed
    OUT_OF_MEMORY = "OUT_OF_MEMORY"  # a process was killed for exceeding the memory limit
    INVALID_SUBMISSION = "INVALID_SUBMISSION"  # the zip is unsafe or lacks main.sh at its root
    INVALID_OUTPUT = "INVALID_OUTPUT"  # submission.csv is missing or fails the platform's checks
    INTERRUPTED = "INTERRUPTED"  # posebowl itself got Ctrl-C, SIGTERM or SIGHUP during the run

    @property
    def exit_code(self) -> int:
        """The exit code of ``posebowl run`` for this status (:mod:`posebowl.exitcodes`)."""
        return exitcodes.RUN[self.value]


#: ``posebowl run`` exit codes by status (:data:`posebowl.exitcodes.RUN`).
EXIT_CODES: dict[Status, int] = {s: s.exit_code for s in Status}


@dataclass(frozen=True)
class Bind:
    """Make the host path ``source`` visible at ``dest`` inside; read-only unless ``writable``."""

    source: Path
    dest: str
    writable: bool = False


@dataclass(frozen=True)
class Enforcement:
    """Whether one limit was enforced, and how (or why not)."""

    enforced: bool
    how: str

    def to_dict(self) -> dict[str, object]:
        return {"enforced": self.enforced, "how": self.how}


@dataclass(frozen=True)
class RunRequest:
    """A prepared run. Binds are applied in order (a parent before what is mounted inside it)."""

    binds: tuple[Bind, ...]
    command: tuple[str, ...]
    cwd: str
    limits: Limits
    env: Mapping[str, str] = field(default_factory=dict)
    runtime: Runtime | None = None  # the venv engines without their own image put first on PATH
    network: bool = False  # True only for `posebowl shell`: share the host's network
    interactive: bool = False  # True: inherit the terminal, no output capture


@dataclass(frozen=True)
class RunResult:
    """What an engine observed. ``exit_code`` is 128+N when killed by signal N."""

    exit_code: int
    wall_s: float
    timed_out: bool = False
    oom_kills: int = 0
    pids_limit_hit: bool = False
    cpu_s: float | None = None
    peak_memory_bytes: int | None = None
    enforced: Mapping[str, Enforcement] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    runtime: str | None = None  # what the submission ran in: a runtime's name, or an image's
    runtime_lock: str | None = None  # the SHA-256 of its lock (None: unknown)


class Engine(Protocol):
    """An isolation backend (bwrap, docker, ...)."""

    name: str
    #: True: runs need the host's runtime venv (``RunRequest.runtime``); False: the engine brings
    #: its own copy of the runtime (the docker engine's image, built from the same lock).
    needs_runtime_venv: bool

    def health_check(self) -> str | None:
        """``None`` when this engine works on this machine, else the reason and the fix."""
        ...

    def select_runtime(self, name: str, lock_sha256: str) -> None:
        """Run in the runtime ``name`` (engines with their own copy: its image)."""
        ...

    def execute(self, request: RunRequest, on_output: OutputSink | None) -> RunResult:
        """Run ``request`` to the end (or to its time limit); never raises for what it runs.

        ``on_output`` receives the merged stdout/stderr in chunks as they come; ``None`` (only
        with ``request.interactive``) lets the command use the terminal directly.
        """
        ...
