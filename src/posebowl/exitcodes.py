"""Every exit code posebowl returns, in one place.

The command line's help and README's table are generated from, or checked against, this
module (tests/test_exitcodes.py). Codes 0-4 and 130 mean the same for every command;
``posebowl run`` adds one code per verdict status (10 and up).
"""

from __future__ import annotations

from dataclasses import dataclass

SUCCESS = 0
INVALID = 1
USAGE = 2
INPUT = 3
SETUP = 4
INTERRUPTED = 130


@dataclass(frozen=True)
class ExitCode:
    code: int
    meaning: str


#: what every command may return
COMMON: tuple[ExitCode, ...] = (
    ExitCode(SUCCESS, "success"),
    ExitCode(
        INVALID,
        "what was checked is invalid (`validate` found problems, `score` rejected the "
        "predictions)",
    ),
    ExitCode(USAGE, "usage error (bad option or argument)"),
    ExitCode(INPUT, "a problem with an input file or folder (missing, unreadable, malformed)"),
    ExitCode(
        SETUP, "this machine lacks something the command needs (the message says how to fix it)"
    ),
    ExitCode(INTERRUPTED, "interrupted (Ctrl-C)"),
)


@dataclass(frozen=True)
class RunExitCode:
    status: str
    code: int
    meaning: str


#: ``posebowl run``: one code per verdict status (SUCCESS shares 0)
RUN_CODES: tuple[RunExitCode, ...] = (
    RunExitCode("SUCCESS", SUCCESS, "main.sh exited 0 and submission.csv passed every check"),
    RunExitCode(
        "FAILED", 10, "main.sh exited non-zero (the message says if the process limit was hit)"
    ),
    RunExitCode(
        "TIMEOUT",
        11,
        "still running at the time limit: SIGTERM to every process, SIGKILL 10 s later",
    ),
    RunExitCode(
        "OUT_OF_MEMORY",
        12,
        "a process was killed for exceeding the memory limit — even if main.sh carried on",
    ),
    RunExitCode("INVALID_SUBMISSION", 13, "the zip was refused and not run"),
    RunExitCode("INVALID_OUTPUT", 14, "submission.csv is missing, unreadable or fails a check"),
    RunExitCode(
        "INTERRUPTED",
        15,
        "posebowl itself got Ctrl-C, SIGTERM or SIGHUP: the sandbox was stopped and removed",
    ),
)
RUN: dict[str, int] = {c.status: c.code for c in RUN_CODES}


def common_help() -> str:
    """The help text's table of the common codes (click's ``\\b`` keeps its lines)."""
    rows = "\n".join(f"  {c.code:>3}  {c.meaning}" for c in COMMON)
    return "\b\nExit codes:\n" + rows


def run_help() -> str:
    """The help text of ``posebowl run``'s codes: one per verdict, then the common ones."""
    rows = [f"  {c.code:>3}  {c.status}: {c.meaning}" for c in RUN_CODES]
    rows += [f"  {c.code:>3}  {c.meaning}" for c in COMMON if c.code not in RUN.values()]
    return "\b\nExit codes (one per verdict, then the common ones):\n" + "\n".join(rows)


def markdown_table() -> str:
    """README's table of every exit code (tests/test_exitcodes.py checks README holds it)."""
    rows = ["| code | meaning |", "|---|---|"]
    run = {c.code: c for c in RUN_CODES}
    for c in COMMON:
        extra = ""
        if c.code in run:
            extra = f"; `posebowl run`: {run[c.code].status}, {run[c.code].meaning}"
        rows.append(f"| {c.code} | {c.meaning}{extra} |")
    for r in RUN_CODES:
        if r.code not in {c.code for c in COMMON}:
            rows.append(f"| {r.code} | `posebowl run`: {r.status}, {r.meaning} |")
    return "\n".join(rows)
