"""The one exception hierarchy for problems with *our* inputs or environment.

What a participant's code does (timeout, out of memory, a crash) is never an exception: it is a
status in the run result. Everything else that stops a command raises one of these; the CLI turns
it into one clear sentence (what is wrong, then how to fix it) and the exit code below.

    PoseBowlError                 INPUT    generic problem with an input file or folder
    ├── InputError                INPUT    a file is missing, unreadable or not what it should be
    ├── InvalidSubmissionError    INVALID  a submission/prediction breaks the submission rules
    ├── PackError                 INPUT    a folder cannot be packed into a submission zip
    └── SetupError                SETUP    the machine lacks something (bubblewrap, a venv, ...)

(the codes are named in :mod:`posebowl.exitcodes`)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from posebowl import exitcodes

if TYPE_CHECKING:
    from posebowl.findings import Violation


class PoseBowlError(Exception):
    """Base of every error posebowl raises on purpose."""

    exit_code = exitcodes.INPUT

    def __init__(self, message: str, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(message if fix is None else f"{message} {fix}")


class InputError(PoseBowlError):
    """An input file or folder is missing, unreadable or malformed."""


class InvalidSubmissionError(PoseBowlError):
    """Predictions break the submission rules; ``violations`` lists every problem found."""

    exit_code = exitcodes.INVALID

    def __init__(self, violations: Sequence[Violation], what: str = "predictions") -> None:
        self.violations = list(violations)
        first = self.violations[0].message if self.violations else "unknown problem"
        more = len(self.violations) - 1
        extra = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        super().__init__(f"The {what} are invalid: {first}{extra}.")


class PackError(PoseBowlError):
    """A folder cannot be packed into a submission zip."""


class SetupError(PoseBowlError):
    """Something this machine needs is missing or broken."""

    exit_code = exitcodes.SETUP
