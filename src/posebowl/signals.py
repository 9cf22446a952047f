"""Termination signals during a run: turned into an exception, so the sandbox is stopped and
everything is cleaned up, then held back while the verdict is written.

Ctrl-C already raises KeyboardInterrupt; :func:`raising` makes SIGTERM and SIGHUP (a closed
terminal, ``kill``, a CI timeout) do the same, as :class:`Interrupted`. Engines stop their
sandbox on any exception, and the run turns it into the INTERRUPTED verdict.
:func:`deferred` blocks them while the verdict and the clean-up must finish.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

TERMINATING = (signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """A termination signal arrived (``signum``) while a run was going on."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


def name_of(exc: BaseException) -> str:
    """``SIGTERM``, ``SIGHUP`` or ``Ctrl-C`` (a plain KeyboardInterrupt)."""
    return signal.Signals(exc.signum).name if isinstance(exc, Interrupted) else "Ctrl-C"


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def raising(signals: tuple[int, ...] = TERMINATING) -> Iterator[None]:
    """While the block runs (in the main thread), ``signals`` raise :class:`Interrupted`."""
    if not _main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signum)

    old = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def deferred(signals: tuple[int, ...] = (signal.SIGINT, *TERMINATING)) -> Iterator[None]:
    """Hold ``signals`` back while the block runs; one that came is delivered at its end."""
    if not _main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
