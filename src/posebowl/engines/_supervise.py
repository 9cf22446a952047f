"""What every engine does while its child runs: pass the output on, wait for the exit."""

from __future__ import annotations

import contextlib
import os
import selectors
import subprocess
from collections.abc import Callable, Mapping, Sequence

from posebowl.engines.base import OutputSink

READ_CHUNK = 1 << 16


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
