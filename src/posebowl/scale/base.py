"""What every executor shares: the resources a task declares, task events, the tally.

An executor runs one function over a list of independent, idempotent tasks and yields an
event as each one ends::

    Finished(index, result)   task ``index`` returned ``result``
    Retried(count)            ``count`` more attempts were lost (worker or node died) and rerun
    Failed(index, error)      task ``index`` failed for good (retries spent, or not retryable)

Events come in completion order; callers put results back in task order, so what they write
never depends on the number of workers or on which finished first.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

from posebowl.errors import PoseBowlError, SetupError

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Resources:
    """What one task needs on a worker, as Ray schedules it: CPUs and memory in bytes."""

    num_cpus: float = 1.0
    memory: int | None = None


@dataclass(frozen=True)
class Finished:
    index: int
    result: Any


@dataclass(frozen=True)
class Retried:
    count: int


@dataclass(frozen=True)
class Failed:
    index: int
    error: BaseException


Event = Finished | Retried | Failed


class Executor(Protocol):
    """Runs ``fn`` over ``items`` somewhere; see the module docstring for the events."""

    name: str

    def map(
        self,
        fn: Callable[[T], R],
        items: Sequence[T],
        *,
        resources: Resources | None = None,
        retry_on: tuple[type[BaseException], ...] = (),
    ) -> Generator[Event, None, None]: ...

    def describe(self) -> str:
        """One line for the user: where the tasks run."""
        ...

    def close(self) -> None:
        """Release what the executor holds (processes, a connection)."""
        ...

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc: object) -> None: ...


@dataclass(frozen=True)
class Tally:
    """Progress of one job in *units* (images, sprites); ``retries`` counts task attempts."""

    total: int
    done: int = 0  # finished units, skipped ones included
    skipped: int = 0  # found finished on disk (resumed)
    retries: int = 0  # attempts lost to a dead worker or node (or a retryable error), rerun
    failed: int = 0  # units whose task failed for good

    def add(self, **changes: int) -> Tally:
        return replace(self, **{k: getattr(self, k) + v for k, v in changes.items()})

    @property
    def note(self) -> str:
        """``'16 resumed, 2 retried, 0 failed'``, the parts that are not zero."""
        parts = [
            f"{self.skipped} resumed" if self.skipped else "",
            f"{self.retries} retried" if self.retries else "",
            f"{self.failed} failed" if self.failed else "",
        ]
        return ", ".join(p for p in parts if p)


Progress = Callable[[Tally], None]


def error_text(error: BaseException) -> str:
    """One line for an error from a task: our own message, else the type and first line."""
    if isinstance(error, PoseBowlError):
        return str(error)
    first = str(error).strip().splitlines()
    return f"{type(error).__name__}: {first[0] if first else ''}".rstrip(": ")


def raise_failures(failures: Sequence[Failed], n_tasks: int, what: str) -> None:
    """SetupError for tasks that failed for good, or nothing when none did."""
    if not failures:
        return
    first = min(failures, key=lambda f: f.index)
    raise SetupError(
        f"{len(failures)} of {n_tasks} {what} tasks failed (first: {error_text(first.error)})",
        "The finished files are kept: fix the problem and rerun the same command to resume.",
    )
