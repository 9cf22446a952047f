"""Build a runtime's venv from its lock, in the workspace, without ever breaking the last one.

The venv is made next to its final place (``NAME.new``), filled from the lock with
``uv pip sync --require-hashes`` (wheels only, every file checked), its bytecode compiled (the
venv is read-only in the sandbox; a file only a newer Python can compile is listed, not fatal),
and only then swapped in. A failed build leaves the previous venv as it was and says which
step failed. The venv is relocatable (``uv venv --relocatable``), so the swap changes nothing
inside it. Building one runtime never touches another.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from posebowl import scratch
from posebowl.errors import SetupError
from posebowl.runtimes.locate import STAMP, built_sha
from posebowl.runtimes.locks import Spec, uv_bin
from posebowl.workspace import Workspace

COMPILER = Path(__file__).with_name("compile_bytecode.py")


@dataclass(frozen=True)
class BuildResult:
    name: str
    venv: Path
    changed: bool
    seconds: float = 0.0
    not_compiled: tuple[str, ...] = ()  # files only a newer Python compiles (never imported)


def base_python() -> Path:
    """The real interpreter behind the one running posebowl (not a venv or pyenv shim)."""
    exe = getattr(sys, "_base_executable", None) or sys.executable
    return Path(exe).resolve()


def _run(cmd: Sequence[str], what: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise SetupError(
            f"{what} failed (exit code {proc.returncode}): {' '.join(cmd)}\n{tail}",
            "Read the output above; the previous runtime (if any) is unchanged.",
        )
    return proc.stdout


def build(
    s: Spec,
    workspace: Workspace,
    force: bool = False,
    python: Path | None = None,
    step: Callable[[str], None] | None = None,
) -> BuildResult:
    """Create or update the runtime ``s`` in ``workspace``; a no-op when its lock is unchanged.

    ``step(text)`` is told what is being done (the CLI shows it).
    """
    problem = s.problem()
    if problem:
        raise SetupError(f"The {s.name} runtime's lock is not usable: {problem}.", "Run make lock.")
    venv = workspace.runtime_venv(s.name)
    sha = s.lock_sha256()
    if not force and built_sha(venv) == sha:
        return BuildResult(s.name, venv, False)
    start = time.monotonic()
    new = venv.with_name(venv.name + ".new")
    scratch.remove_tree(new)  # what a build that was stopped left
    venv.parent.mkdir(parents=True, exist_ok=True)
    say = step or (lambda _text: None)
    try:
        say("creating the venv")
        py = str(python or base_python())
        _run(
            [uv_bin(), "venv", "--relocatable", "--quiet", "--python", py, str(new)],
            "Creating the venv",
        )
        say(f"installing {s.lock.name} (wheels, every hash checked)")
        env = {**os.environ, "VIRTUAL_ENV": str(new)}
        sync = [uv_bin(), "pip", "sync", "--python", str(new / "bin" / "python")]
        _run([*sync, "--require-hashes", "--quiet", str(s.lock)], f"Installing {s.lock.name}", env)
        say("compiling the bytecode")
        out = _run(
            [str(new / "bin" / "python"), str(COMPILER), str(new / "lib")], "Compiling the bytecode"
        )
        (new / STAMP).write_text(f"{s.name} {sha}\n")
    except BaseException:
        scratch.remove_tree(new)
        raise
    old = venv.with_name(venv.name + ".old")
    scratch.remove_tree(old)
    if venv.exists():
        os.replace(venv, old)
    os.replace(new, venv)
    scratch.remove_tree(old)
    skipped = tuple(
        ln.removeprefix("not compiled: ")
        for ln in out.splitlines()
        if ln.startswith("not compiled: ")
    )
    return BuildResult(s.name, venv, True, time.monotonic() - start, skipped)
