"""``log.txt`` and the entrypoint's protocol: timestamped lines tagged by where they came from
(``[posebowl]`` on the host, ``[sandbox]`` from inside), a cap, posebowl's own notes.

The in-sandbox entrypoint (``entrypoint.sh``) speaks in lines starting with
``posebowl-entrypoint: ``: a ``FATAL`` before main.sh started (the sandbox is broken), the
``running:`` line when main.sh starts, then (from ``confine.py``, before main.sh exists) how
main.sh is confined, and at the end the count of background processes left running.
:class:`RunLog` reads them from the output as it passes through.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from posebowl.runtimes.modules import missing_module

MARKER = "posebowl-entrypoint: "
MAX_LINE = 1 << 16  # a longer line without a newline is logged in pieces
#: every line says where it came from: posebowl on the host, or the sandbox's output (main.sh,
#: and the entrypoint); a submission printing "[posebowl] score 1.0" shows as
#: "[sandbox] [posebowl] score 1.0", and result.json stays the authority
HOST_PREFIX = "[posebowl]"
SANDBOX_PREFIX = "[sandbox]"


class RunLog:
    """``log.txt``: every line timestamped, cut at ``cap_bytes`` with a note; echoed as written.

    Also reads the entrypoint's own lines (see the module docstring).
    """

    def __init__(
        self, path: Path, cap_bytes: int, echo: Callable[[str], None] | None = None
    ) -> None:
        self.path = path
        self.cap = cap_bytes
        self.echo = echo
        self._f = open(path, "wb")  # noqa: SIM115 - closed by close()
        self._buf = b""
        self.written = 0
        self.truncated = False
        self.dropped_bytes = 0
        self.fatal: str | None = None
        self.started = False
        self.background_processes = 0
        self.confinement: str | None = None  # "landlock ABI N" or "none (why)", as reported
        self.missing_module: str | None = None  # the first "No module named 'X'" seen
        self._sec = -1
        self._stamp = ""

    def _ts(self) -> str:
        now = time.time()
        sec = int(now)
        if sec != self._sec:
            self._sec = sec
            self._stamp = datetime.fromtimestamp(sec).strftime("%Y-%m-%d %H:%M:%S")
        return f"{self._stamp}.{int((now - sec) * 1000):03d}"

    def _emit(self, text: str) -> None:
        data = f"{self._ts()} {SANDBOX_PREFIX} {text}\n".encode("utf-8", "replace")
        if self.truncated or self.written + len(data) > self.cap:
            if not self.truncated:
                self.truncated = True
                if self.echo is not None:
                    self.echo(
                        f"{self._ts()} {HOST_PREFIX} log.txt reached its cap of "
                        f"{self.cap:,} bytes: the rest of the output is neither kept nor shown"
                    )
            self.dropped_bytes += len(data)
            return
        self._f.write(data)
        self.written += len(data)
        if self.echo is not None:
            self.echo(data[:-1].decode("utf-8", "replace"))

    def _markers(self, text: str) -> None:
        rest = text[len(MARKER) :]
        if rest.startswith("FATAL ") and not self.started and self.fatal is None:
            self.fatal = rest[len("FATAL ") :]
        elif rest.startswith("running: "):
            self.started = True
        elif rest.startswith("confinement ") and self.started and self.confinement is None:
            # the first one after "running:" comes from confine.py, before main.sh exists
            self.confinement = rest[len("confinement ") :]
        elif rest.startswith("background-processes "):
            with contextlib.suppress(ValueError, IndexError):
                self.background_processes = int(rest.split()[1])

    def _line(self, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace").rstrip("\r")
        if text.startswith(MARKER):
            self._markers(text)
        elif self.missing_module is None and "No module named" in text:
            self.missing_module = missing_module(text)
        self._emit(text)

    def feed(self, chunk: bytes) -> None:
        """Output from the sandbox, in arbitrary pieces."""
        if self.truncated and MARKER.encode() not in chunk and b"\n" not in self._buf:
            self.dropped_bytes += len(chunk)  # fast path for a flood past the cap
            return
        self._buf += chunk
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                if len(self._buf) > MAX_LINE:
                    self._line(self._buf[:MAX_LINE])
                    self._buf = self._buf[MAX_LINE:]
                    continue
                break
            self._line(self._buf[:nl])
            self._buf = self._buf[nl + 1 :]
        self._f.flush()  # one write per chunk read: `tail -f log.txt` follows the run

    def note(self, text: str, echo: bool = True) -> None:
        """A line from posebowl itself (always kept: notes bypass the cap); ``echo=False``
        keeps it off the terminal (the verdict, which the command prints itself)."""
        for line in text.splitlines() or [""]:
            data = f"{self._ts()} {HOST_PREFIX} {line}\n".encode()
            self._f.write(data)
            self.written += len(data)
            if echo and self.echo is not None:
                self.echo(data[:-1].decode())
        self._f.flush()

    def close(self) -> None:
        if self._f.closed:
            return
        if self._buf:
            self._line(self._buf)
            self._buf = b""
        if self.truncated:
            self.note(
                f"log truncated: {self.dropped_bytes:,} more bytes of output were not kept "
                f"(the cap is {self.cap:,} bytes; write less to the log)"
            )
        self._f.close()
