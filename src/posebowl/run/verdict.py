"""The verdict of a run: its status, one sentence, and everything result.json records.

A :class:`Verdict` is built once, at the end, from values the pipeline's steps handed on:
the :class:`RunSetup` (what was asked), the engine's :class:`~posebowl.engines.base.RunResult`,
the output checks and the score. :func:`classify` turns what the engine saw and the checks
into the status and its explanation.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

from posebowl.engines.base import Enforcement, RunResult, Status
from posebowl.findings import Violation
from posebowl.limits import Limits

LOG_NAME = "log.txt"
RESULT_NAME = "result.json"


def now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def mib(n: int | None) -> str:
    return "?" if n is None else f"{n / (1 << 20):,.0f} MiB"


@dataclass(frozen=True)
class RunSetup:
    """What a run was asked to do."""

    zip_path: Path
    data_dir: Path
    output_dir: Path
    engine: str
    profile: str
    limits: Limits
    smoke: int | None = None
    labels: Path | None = None
    runtime: str | None = None  # the runtime's name (official, slim), when one was named
    started_at: str = field(default_factory=now)
    # Set in the sandbox's environment as POSEBOWL_RUN_ID: ties processes and logs to one run.
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass(frozen=True)
class LogSummary:
    """What the log saw: its cap, and what the entrypoint reported."""

    truncated: bool = False
    dropped_bytes: int = 0
    background_processes: int = 0


@dataclass(frozen=True)
class Verdict:
    """The outcome of one run; written as result.json.

    ``submission`` (the checked submission.csv) and ``labels_table`` (the labels file) are the
    tables a report needs, each read once; they are not part of result.json.
    """

    status: Status
    message: str
    setup: RunSetup
    finished_at: str = field(default_factory=now)
    images: int = 0
    result: RunResult | None = None  # None when main.sh never ran (the zip was refused)
    problems: tuple[Violation, ...] = ()
    score: float | None = None
    score_error: str | None = None
    log: LogSummary = field(default_factory=LogSummary)
    notes: tuple[str, ...] = ()  # posebowl's own remarks (the engine's are in result.notes)
    submission: pd.DataFrame | None = field(default=None, repr=False, compare=False)
    labels_table: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    @property
    def process_exit_code(self) -> int:
        """The exit code ``posebowl run`` returns for this verdict."""
        return self.status.exit_code

    @property
    def exit_code(self) -> int | None:
        """main.sh's exit code (None when it never ran)."""
        return None if self.result is None else self.result.exit_code

    @property
    def enforced(self) -> dict[str, Enforcement]:
        return {} if self.result is None else dict(self.result.enforced)

    def to_dict(self) -> dict[str, object]:
        s, r = self.setup, self.result

        def rounded(x: float | None) -> float | None:
            return None if x is None else round(x, 3)

        return {
            "status": self.status.value,
            "message": self.message,
            "run_id": s.run_id,
            "posebowl_exit_code": self.process_exit_code,
            "exit_code": self.exit_code,
            "score": self.score,
            "score_error": self.score_error,
            "problems": [v.to_dict() for v in self.problems],
            "wall_seconds": rounded(r.wall_s if r else None),
            "cpu_seconds": rounded(r.cpu_s if r else None),
            "peak_memory_bytes": r.peak_memory_bytes if r else None,
            "oom_kills": r.oom_kills if r else 0,
            "pids_limit_hit": r.pids_limit_hit if r else False,
            "background_processes": self.log.background_processes,
            "profile": s.profile,
            "limits": s.limits.to_dict(),
            "enforced": {k: v.to_dict() for k, v in sorted(self.enforced.items())},
            "engine": s.engine,
            "runtime": {
                "name": r.runtime if r else None,
                "lock_sha256": r.runtime_lock if r else None,
            },
            "zip": str(s.zip_path),
            "data": str(s.data_dir),
            "labels": None if s.labels is None else str(s.labels),
            "smoke": s.smoke,
            "images": self.images,
            "log": LOG_NAME,
            "log_truncated": self.log.truncated,
            "log_dropped_bytes": self.log.dropped_bytes,
            "started_at": s.started_at,
            "finished_at": self.finished_at,
            "notes": [*(r.notes if r else ()), *self.notes],
        }


def classify(result: RunResult, problems: list[Violation], limits: Limits) -> tuple[Status, str]:
    """The status and its one-sentence explanation, from what the engine saw and the checks."""
    if result.timed_out:
        return Status.TIMEOUT, (
            f"main.sh was still running at the time limit of {limits.time_limit_s:g} s and was "
            "stopped (SIGTERM, then SIGKILL)."
        )
    if result.oom_kills:
        return Status.OUT_OF_MEMORY, (
            f"{result.oom_kills} process(es) were killed for using more than the memory limit "
            f"of {mib(limits.memory_bytes)}."
        )
    if result.exit_code != 0:
        why = ""
        if result.pids_limit_hit:
            why = f" (the limit of {limits.pids} processes and threads was reached)"
        return Status.FAILED, f"main.sh exited with code {result.exit_code}{why}."
    if problems:
        return Status.INVALID_OUTPUT, (
            f"main.sh succeeded but submission.csv fails {len(problems)} check(s): "
            f"{problems[0].message}."
        )
    return Status.SUCCESS, (
        f"main.sh finished in {result.wall_s:.1f} s and submission.csv passed every check."
    )
