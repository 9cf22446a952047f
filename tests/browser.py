"""Drive headless Chromium over the DevTools protocol: load a page, collect console errors.

A small, dependency-light client (websocket-client): start Chromium with a debugging port
chosen by the OS, open the page, record every console error, uncaught exception and failed
resource load, evaluate JavaScript in the page, and take a screenshot.
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websocket

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",  # root in a container: Chromium's own sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",  # no update checks, no field trials: nothing leaves
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--remote-debugging-port=0",  # the OS picks a free port; Chromium writes it to a file
)


def find_chromium() -> str | None:
    """The path of a Chromium (or Chrome) executable, or None."""
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageLoad:
    """What happened while a page loaded."""

    errors: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


class Browser:
    """One headless Chromium with one page; use as a context manager."""

    def __init__(self, executable: str, width: int = 1280, height: int = 900) -> None:
        self.executable = executable
        self.width, self.height = width, height
        self._ids = itertools.count(1)

    def __enter__(self) -> Browser:
        self._profile = tempfile.TemporaryDirectory(prefix="posebowl-chromium-")
        self._proc = subprocess.Popen(
            [
                self.executable,
                *FLAGS,
                f"--user-data-dir={self._profile.name}",
                f"--window-size={self.width},{self.height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        port = self._wait_port(Path(self._profile.name) / "DevToolsActivePort")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            targets = json.load(r)
        page = next(t for t in targets if t.get("type") == "page")
        self._ws = websocket.create_connection(
            page["webSocketDebuggerUrl"], timeout=30, suppress_origin=True
        )
        return self

    def _wait_port(self, file: Path, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise RuntimeError(f"Chromium exited with {self._proc.returncode}: {err[-2000:]}")
            if file.is_file() and (text := file.read_text().strip()):
                return int(text.splitlines()[0])
            time.sleep(0.05)
        raise TimeoutError(f"Chromium did not open its debugging port within {timeout:.0f} s")

    def __exit__(self, *exc: object) -> None:
        try:
            self._ws.close()
        finally:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            if self._proc.stderr:
                self._proc.stderr.close()
            self._profile.cleanup()

    def call(self, method: str, log: PageLoad | None = None, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its answer, keeping the events that arrive meanwhile."""
        msg_id = next(self._ids)
        self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self._ws.recv())
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method} failed: {msg['error']}")
                return msg.get("result", {})
            if log is not None and "method" in msg:
                _record(log, msg)

    def open(self, url: str, timeout: float = 60.0) -> PageLoad:
        """Navigate to ``url`` and wait for its load event; return the errors seen."""
        log = PageLoad()
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", log)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            log,
            width=self.width,
            height=self.height,
            deviceScaleFactor=1,
            mobile=False,
        )
        self.call("Page.navigate", log, url=url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = json.loads(self._ws.recv())
            if "method" in msg:
                _record(log, msg)
                if msg["method"] == "Page.loadEventFired":
                    break
        else:
            raise TimeoutError(f"{url} did not finish loading within {timeout:.0f} s")
        self.call("Runtime.evaluate", log, expression="1", awaitPromise=True)  # flush events
        return log

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression evaluated in the page."""
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"{expression!r} raised {res['exceptionDetails']}")
        return res["result"].get("value")

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        """Save a PNG of the page (the whole scroll height when ``full_page``)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            height = int(self.evaluate("document.documentElement.scrollHeight"))
            params["clip"] = {"x": 0, "y": 0, "width": self.width, "height": height, "scale": 1}
            params["captureBeyondViewport"] = True
        data = self.call("Page.captureScreenshot", **params)["data"]
        path.write_bytes(base64.b64decode(data))
        return path


def _record(log: PageLoad, msg: dict[str, Any]) -> None:
    method, params = msg["method"], msg.get("params", {})
    log.events.append(msg)
    if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
        args = [a.get("value", a.get("description", "")) for a in params.get("args", [])]
        log.errors.append("console: " + " ".join(str(a) for a in args))
    elif method == "Runtime.exceptionThrown":
        log.errors.append("exception: " + json.dumps(params.get("exceptionDetails", {}))[:500])
    elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
        entry = params["entry"]
        log.errors.append(f"log: {entry.get('text')} {entry.get('url', '')}".strip())
    elif method == "Network.loadingFailed" and not params.get("canceled"):
        log.errors.append(f"network: {params.get('errorText')} ({params.get('type')})")


def environment_ok() -> str | None:
    """None when a headless Chromium can run here, else why not (for a skip message)."""
    if find_chromium() is None:
        return (
            "Chromium is not installed (run `make system-deps` as root, or "
            "`sudo apt-get install chromium`)"
        )
    return None
