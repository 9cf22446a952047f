"""What every engine does while its child runs, written once: pass the output on, keep the time
limit, stop the child politely and then hard, handle signals, and kill everything on the way out.

An engine starts its child with :func:`spawn` and hands it to :func:`supervise` together with a
:class:`Target`: the three engine-specific ways of stopping (``terminate``, ``kill``,
``abandon``) and what to sample while waiting (``tick``). The loop:

- passes every chunk of the child's merged output to the sink (:class:`OutputPump`);
- at the deadline calls ``terminate`` (the polite step), then ``kill`` when
  :attr:`Ladder.kill_after_s` more have passed, then ``abandon`` (the child itself hangs: let it
  go) after :attr:`Ladder.abandon_after_s` more, where the engine has such a step;
- calls ``tick`` every ``poll_s`` seconds (None: never);
- while it runs (in the main thread), SIGTERM and SIGHUP raise
  :class:`posebowl.signals.Interrupted` and, for an interactive child, Ctrl-C is ignored (it
  belongs to the shell on the same terminal);
- on any exception (Ctrl-C, a signal, a failing sink) calls ``kill``, waits for the child (then
  ``abandon``, if it does not end) and re-raises, so that nothing of the run outlives it.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from posebowl import signals
from posebowl.engines.base import OutputSink

READ_CHUNK = 1 << 16
MAX_WAIT_S = 1.0  # the loop looks at the clock at least this often


def spawn(
    argv: Sequence[str],
    capture: bool,
    preexec_fn: Callable[[], None] | None = None,
    env: Mapping[str, str] | None = None,
    stdin_pipe: bool = False,
) -> subprocess.Popen[bytes]:
    """Start ``argv``. ``capture``: no stdin (``stdin_pipe``: a pipe from us), stdout and stderr
    merged into one pipe, a new session (Ctrl-C is ours to handle); else it shares our terminal
    (an interactive run). ``env`` replaces posebowl's environment (None: inherit it)."""
    return subprocess.Popen(
        argv,
        env=env,
        stdin=(subprocess.PIPE if stdin_pipe else subprocess.DEVNULL) if capture else None,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.STDOUT if capture else None,
        start_new_session=capture,
        preexec_fn=preexec_fn,
    )


class OutputPump:
    """Reads a child's (merged) stdout without blocking and hands each chunk to ``sink``.

    ``proc`` started without a stdout pipe (an interactive run) has nothing to read: the pump
    is closed from the start and :meth:`step` only waits for the exit.
    """

    def __init__(self, proc: subprocess.Popen[bytes], sink: OutputSink | None) -> None:
        self._proc = proc
        self._sink = sink
        self._sel = selectors.DefaultSelector()
        self._open = proc.stdout is not None
        if proc.stdout is not None:
            self._fd = proc.stdout.fileno()
            os.set_blocking(self._fd, False)
            self._sel.register(self._fd, selectors.EVENT_READ)

    @property
    def open(self) -> bool:
        """False once the output reached its end (or there was none to read)."""
        return self._open

    def pump(self, wait_s: float) -> None:
        """Pass on what the output has within ``wait_s`` seconds; notice its end."""
        for _ in self._sel.select(timeout=wait_s):
            try:
                data = os.read(self._fd, READ_CHUNK)
            except BlockingIOError:
                continue
            if not data:
                self._open = False
                return
            if self._sink is not None:
                self._sink(data)

    def step(self, wait_s: float) -> int | None:
        """Pump for up to ``wait_s``, or once the output ended wait that long for the exit.

        The child's exit code (negative: killed by that signal) once it exited, else None.
        """
        if self._open:
            self.pump(wait_s)
            return None
        with contextlib.suppress(subprocess.TimeoutExpired):
            return self._proc.wait(timeout=wait_s)
        return None

    def close(self) -> None:
        self._sel.close()
        if self._proc.stdout is not None:
            self._proc.stdout.close()


class Target(Protocol):
    """One run of an engine, as the loop sees it: how to stop it, what to do while it runs."""

    def terminate(self) -> None:
        """The polite step at the deadline (SIGTERM, ``docker stop``); must not block long."""
        ...

    def kill(self) -> None:
        """The hard step: the whole tree goes (may block briefly). Also the way out on an
        exception, so it must work at any moment, even before the child got far."""
        ...

    def abandon(self) -> None:
        """The child itself does not end after ``kill`` (a hung client): let it go."""
        ...

    def tick(self) -> None:
        """Every ``poll_s`` while the child runs (sample usage); may do nothing."""
        ...


@dataclass(frozen=True)
class Ladder:
    """When each harsher step is due. ``kill_after_s``: after ``terminate`` (at the deadline);
    ``abandon_after_s``: after ``kill`` (None: never, wait for the child however long)."""

    kill_after_s: float
    abandon_after_s: float | None = None


@dataclass(frozen=True)
class Supervised:
    """How the child ended. ``exit_code`` is 128+N when it was killed by signal N."""

    exit_code: int
    wall_s: float
    timed_out: bool


def exit_status(returncode: int) -> int:
    """A Popen return code as a shell tells it: killed by signal N (negative) is 128+N."""
    return 128 - returncode if returncode < 0 else returncode


@contextlib.contextmanager
def _signal_handling(interactive: bool) -> Iterator[None]:
    """SIGTERM/SIGHUP raise Interrupted; an interactive child's Ctrl-C is not ours."""
    restore = None
    if interactive and threading.current_thread() is threading.main_thread():
        restore = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with signals.raising():
            yield
    finally:
        if restore is not None:
            signal.signal(signal.SIGINT, restore)


def _wait_then_abandon(
    proc: subprocess.Popen[bytes], target: Target, abandon_after_s: float | None
) -> None:
    if abandon_after_s is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=abandon_after_s)
        if proc.poll() is None:
            target.abandon()
    proc.wait()


def supervise(
    proc: subprocess.Popen[bytes],
    target: Target,
    time_limit_s: float,
    ladder: Ladder,
    on_output: OutputSink | None,
    *,
    interactive: bool = False,
    poll_s: float | None = None,
    start: float | None = None,
) -> Supervised:
    """Run the loop of the module docstring until ``proc`` exits; how it ended.

    ``start`` (``time.monotonic()``, default now) is when the run began: the deadline and the
    wall time count from it, so an engine passes the moment before it spawned the child.
    """
    start = time.monotonic() if start is None else start
    deadline = start + time_limit_s
    next_tick = start if poll_s is not None else None
    timed_out = False
    step_at: float | None = None  # when the next, harsher step is due
    steps: list[Callable[[], None]] = []  # what is still to do after terminate
    exit_code: int | None = None
    output = OutputPump(proc, on_output)
    try:
        with _signal_handling(interactive):
            try:
                while exit_code is None:
                    now = time.monotonic()
                    wake = step_at if step_at is not None else deadline
                    if next_tick is not None:
                        wake = min(wake, next_tick)
                    exit_code = output.step(max(0.0, min(wake - now, MAX_WAIT_S)))
                    if exit_code is not None:
                        break
                    now = time.monotonic()
                    if next_tick is not None and poll_s is not None and now >= next_tick:
                        next_tick = now + poll_s
                        target.tick()
                    if not timed_out and now >= deadline:
                        timed_out = True
                        target.terminate()
                        steps = [target.kill]
                        if ladder.abandon_after_s is not None:
                            steps.append(target.abandon)
                        step_at = now + ladder.kill_after_s
                    elif step_at is not None and now >= step_at:
                        step = steps.pop(0) if steps else None
                        if step is not None:
                            step()
                        if steps and ladder.abandon_after_s is not None:
                            step_at = now + ladder.abandon_after_s
                        else:
                            step_at = None  # nothing harsher is left: wait for the exit
            except BaseException:
                with signals.deferred():  # a second Ctrl-C must not cut the clean-up short
                    target.kill()
                    _wait_then_abandon(proc, target, ladder.abandon_after_s)
                raise
    finally:
        output.close()
    return Supervised(exit_status(exit_code), time.monotonic() - start, timed_out)
