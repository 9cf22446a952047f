"""The ``local`` executor: this machine's processes, exactly as posebowl always ran.

``workers`` > 1 maps tasks over a :class:`~concurrent.futures.ProcessPoolExecutor` in task
order; 1 runs them in this process (no pickling). Nothing is retried: an error in a task
propagates at once, as before executors existed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from posebowl.scale.base import Event, Finished, Resources

T = TypeVar("T")
R = TypeVar("R")


class LocalExecutor:
    """Run tasks in ``workers`` local processes (1: in this process)."""

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers if workers is not None else (os.cpu_count() or 1)

    def map(
        self,
        fn: Callable[[T], R],
        items: Sequence[T],
        *,
        resources: Resources | None = None,
        retry_on: tuple[type[BaseException], ...] = (),
    ) -> Generator[Event, None, None]:
        if self.workers <= 1:
            for i, item in enumerate(items):
                yield Finished(i, fn(item))
            return
        pool = ProcessPoolExecutor(max_workers=self.workers)
        try:
            for i, result in enumerate(pool.map(fn, items)):
                yield Finished(i, result)
        finally:  # on an early stop (an error, Ctrl-C) queued tasks are dropped, not run
            pool.shutdown(wait=True, cancel_futures=True)

    def describe(self) -> str:
        n = self.workers
        return "this process" if n <= 1 else f"{n} local processes"

    def close(self) -> None:
        """Nothing to release: each map owns its process pool."""

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
