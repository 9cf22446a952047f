"""A built runtime, ready to be mounted read-only into a sandbox, and the default choice."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from posebowl.errors import SetupError
from posebowl.runtimes.locks import Spec, spec
from posebowl.workspace import Workspace

STAMP = ".posebowl-lock"  # inside a built venv: "NAME SHA256" of the lock it was built from
#: what building ``official`` costs (measured on our 2-core machines; BENCHMARKS.md)
OFFICIAL_COST = "about 7 GB on disk; ~11 min to download and build the first time, ~1 min after"


@dataclass(frozen=True)
class Runtime:
    """A built runtime venv; ``name`` and ``lock_sha256`` are None for an arbitrary venv."""

    venv: Path
    base_prefix: Path  # the interpreter installation the venv points at (bind it too)
    name: str | None = None
    lock_sha256: str | None = None

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def label(self) -> str:
        return self.name or f"venv {self.venv}"


def _pyvenv_home(venv: Path) -> Path | None:
    try:
        text = (venv / "pyvenv.cfg").read_text()
    except OSError:
        return None
    m = re.search(r"^home\s*=\s*(.+)$", text, re.M)
    return Path(m.group(1).strip()) if m else None


def runtime_from_venv(venv: Path, name: str | None = None, sha: str | None = None) -> Runtime:
    """A Runtime for any venv (tests use small ones); the base prefix is read from pyvenv.cfg."""
    home = _pyvenv_home(venv)
    if home is None or not (venv / "bin" / "python").exists():
        raise SetupError(
            f"{venv} is not a Python virtual environment.", "Build it: posebowl runtime build."
        )
    return Runtime(venv.resolve(), home.resolve().parent, name, sha)


def build_command(name: str) -> str:
    return f"make build RUNTIME={name} (posebowl runtime build --runtime {name})"


def built_sha(venv: Path) -> str | None:
    """The lock hash a venv was built from (None: not built, or by something else)."""
    try:
        name, sha = (venv / STAMP).read_text().split()
    except (OSError, ValueError):
        return None
    return sha


def locate(name: str, workspace: Workspace, definition: Spec | None = None) -> Runtime:
    """The built runtime ``name``; SetupError when it is missing or older than its lock."""
    s = definition or spec(name)
    venv = workspace.runtime_venv(name)
    sha = built_sha(venv)
    if sha is None:
        raise SetupError(
            f"The {name} runtime is not built ({venv}).", f"Build it: {build_command(name)}."
        )
    if sha != s.lock_sha256():
        raise SetupError(
            f"The {name} runtime in {venv} was built from an older lock.",
            f"Rebuild it: {build_command(name)}.",
        )
    return runtime_from_venv(venv, name, sha)


def default_name(workspace: Workspace) -> str:
    """The runtime a run uses when none is named: official when built and current, else slim."""
    official = spec("official")
    if built_sha(workspace.runtime_venv("official")) == official.lock_sha256():
        return "official"
    return "slim"
