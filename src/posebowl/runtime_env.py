"""The runtime environment: what a submission may import, as a pinned lock and a venv.

``runtime/requirements.in`` lists the packages (edit it to add one); ``runtime/requirements.txt``
is the lock resolved from it by ``uv pip compile`` with hashes, and records the SHA-256 of the
``.in`` file it was resolved from, so a stale lock is detected without network. ``build`` makes
``.runtime/venv`` from the lock (doing nothing when the lock has not changed since the last
build); ``locate`` returns the built venv for the sandbox, refusing a missing or stale one.

Optional groups (``runtime/requirements-<group>.in``, e.g. ``torch``) are locked on top of the
main lock and installed only when asked for.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from posebowl.errors import InputError, SetupError

RUNTIME_DIR = "runtime"
VENV_DIR = Path(".runtime") / "venv"
STAMP = ".posebowl-lock"  # inside the venv: the hashes of the locks it was built from
HASH_LINE = re.compile(r"^# requirements-in-sha256: ([0-9a-f]{64})\s*$", re.M)
PYTHON_VERSION = "3.11"
PLATFORM = "x86_64-manylinux_2_28"  # the sandbox is Linux x86_64, like the platform


@dataclass(frozen=True)
class Project:
    """Where the runtime definition and the built venv live."""

    root: Path

    @property
    def runtime_dir(self) -> Path:
        return self.root / RUNTIME_DIR

    def requirements_in(self, group: str | None = None) -> Path:
        return self.runtime_dir / ("requirements.in" if not group else f"requirements-{group}.in")

    def lock_file(self, group: str | None = None) -> Path:
        return self.runtime_dir / ("requirements.txt" if not group else f"requirements-{group}.txt")

    @property
    def venv(self) -> Path:
        return self.root / VENV_DIR

    @property
    def tests_dir(self) -> Path:
        return self.runtime_dir / "tests"

    def groups(self) -> list[str]:
        """The optional groups defined next to the main requirements."""
        return sorted(
            p.name.removeprefix("requirements-").removesuffix(".in")
            for p in self.runtime_dir.glob("requirements-*.in")
        )


@dataclass(frozen=True)
class Runtime:
    """A built runtime venv, ready to be mounted read-only into a sandbox."""

    venv: Path
    base_prefix: Path  # the interpreter installation the venv points at (bind it too)

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"


def find_project(start: Path | None = None) -> Project:
    """The nearest folder above ``start`` (default: cwd) holding runtime/requirements.in.

    Falls back to the source checkout posebowl itself is installed from (editable installs).
    """
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / RUNTIME_DIR / "requirements.in").is_file():
            return Project(d)
    src = Path(__file__).resolve().parents[2]
    if (src / RUNTIME_DIR / "requirements.in").is_file():
        return Project(src)
    raise InputError(
        f"No {RUNTIME_DIR}/requirements.in found in {here} or above.",
        "Run posebowl from the posebowl checkout (or pass --project DIR).",
    )


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def recorded_in_hash(lock: Path) -> str | None:
    """The requirements.in hash written in a lock's header, if any."""
    try:
        m = HASH_LINE.search(lock.read_text())
    except OSError:
        return None
    return m.group(1) if m else None


def lock_problem(project: Project, group: str | None = None) -> str | None:
    """``None`` when the lock matches its .in file, else what is wrong (no network needed)."""
    src, lock = project.requirements_in(group), project.lock_file(group)
    if not src.is_file():
        return f"{src} does not exist"
    if not lock.is_file():
        return f"{lock} does not exist; run make lock"
    if recorded_in_hash(lock) != sha256_file(src):
        return f"{lock} was not resolved from the current {src.name}; run make lock"
    return None


def uv_bin() -> str:
    """The uv executable (a dependency of posebowl)."""
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found:
            return found
    raise SetupError("uv is not installed.", "Install posebowl's dependencies: make install.")


def _run(cmd: Sequence[str], what: str, env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise SetupError(
            f"{what} failed (exit code {proc.returncode}): {' '.join(cmd)}\n{tail}",
            "Read the output above; check the package names and versions in runtime/.",
        )


def lock(project: Project, group: str | None = None, upgrade: bool = False) -> Path:
    """Resolve ``requirements[-group].in`` into its lock with ``uv pip compile`` (needs PyPI).

    A group is resolved with the main lock as constraints, so it never moves a main pin.
    """
    src, out = project.requirements_in(group), project.lock_file(group)
    if not src.is_file():
        raise InputError(f"{src} does not exist.", "Create it with one package per line.")
    cmd = [
        uv_bin(),
        "pip",
        "compile",
        str(src.relative_to(project.root)),
        "--generate-hashes",
        "--python-version",
        PYTHON_VERSION,
        "--python-platform",
        PLATFORM,
        "--no-header",
        "--quiet",
    ]
    if group:
        cmd += ["-c", str(project.lock_file().relative_to(project.root))]
    if upgrade:
        cmd.append("--upgrade")
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=project.root)
    if proc.returncode != 0:
        raise SetupError(
            f"Resolving {src.name} failed:\n{proc.stderr.strip()}",
            "Fix the conflicting pins in the .in file (uv's message names them).",
        )
    header = (
        f"# The pinned runtime lock. Do not edit: change {src.name}, then run `make lock`.\n"
        f"# Resolved by `uv pip compile --generate-hashes` for Python {PYTHON_VERSION} on "
        f"{PLATFORM}.\n"
        f"# requirements-in-sha256: {sha256_file(src)}\n"
    )
    out.write_text(header + proc.stdout)
    return out


def _stamp_text(project: Project, groups: Sequence[str]) -> str:
    lines = [f"main {sha256_file(project.lock_file())}"]
    lines += [f"{g} {sha256_file(project.lock_file(g))}" for g in sorted(groups)]
    return "\n".join(lines) + "\n"


def base_python() -> Path:
    """The real interpreter behind the one running posebowl (not a venv or pyenv shim)."""
    exe = getattr(sys, "_base_executable", None) or sys.executable
    return Path(exe).resolve()


@dataclass(frozen=True)
class BuildResult:
    venv: Path
    changed: bool
    groups: tuple[str, ...]


def build(
    project: Project, groups: Sequence[str] = (), force: bool = False, python: Path | None = None
) -> BuildResult:
    """Create or update the runtime venv from the lock(s); a no-op when nothing changed."""
    for g in (None, *groups):
        problem = lock_problem(project, g)
        if problem:
            raise SetupError(f"The runtime lock is not usable: {problem}.", "Run make lock.")
    venv = project.venv
    stamp = venv / STAMP
    want = _stamp_text(project, groups)
    if not force and stamp.is_file() and stamp.read_text() == want:
        return BuildResult(venv, False, tuple(groups))
    py = python or base_python()
    if force and venv.exists():
        shutil.rmtree(venv)
    if not (venv / "bin" / "python").exists():
        _run([str(py), "-m", "venv", "--without-pip", str(venv)], "Creating the runtime venv")
    stamp.unlink(missing_ok=True)
    locks = [str(project.lock_file(g)) for g in (None, *groups)]
    env = {**os.environ, "VIRTUAL_ENV": str(venv)}
    sync = [uv_bin(), "pip", "sync", "--python", str(venv / "bin" / "python"), "--require-hashes"]
    _run(
        [*sync, *locks],
        "Installing the runtime lock",
        env=env,
    )
    # Compile bytecode now: the venv is read-only inside the sandbox, and every run would
    # otherwise pay for compiling what it imports.
    _run(
        [str(venv / "bin" / "python"), "-m", "compileall", "-q", "-j", "0", str(venv / "lib")],
        "Compiling the runtime's bytecode",
    )
    stamp.write_text(want)
    return BuildResult(venv, True, tuple(groups))


def _pyvenv_home(venv: Path) -> Path | None:
    try:
        text = (venv / "pyvenv.cfg").read_text()
    except OSError:
        return None
    m = re.search(r"^home\s*=\s*(.+)$", text, re.M)
    return Path(m.group(1).strip()) if m else None


def runtime_from_venv(venv: Path) -> Runtime:
    """A Runtime for any venv (tests use small ones); the base prefix is read from pyvenv.cfg."""
    home = _pyvenv_home(venv)
    if home is None or not (venv / "bin" / "python").exists():
        raise SetupError(
            f"{venv} is not a Python virtual environment.", "Build it: posebowl runtime build."
        )
    return Runtime(venv.resolve(), home.resolve().parent)


def locate(project: Project) -> Runtime:
    """The built runtime; SetupError when it is missing or older than the lock."""
    venv = project.venv
    stamp = venv / STAMP
    if not stamp.is_file():
        raise SetupError(
            f"The runtime environment {venv} is not built.",
            "Build it: make build (or posebowl runtime build).",
        )
    built = stamp.read_text().splitlines()
    if not built or built[0] != f"main {sha256_file(project.lock_file())}":
        raise SetupError(
            f"The runtime environment {venv} was built from an older runtime/requirements.txt.",
            "Rebuild it: make build (or posebowl runtime build).",
        )
    return runtime_from_venv(venv)


def built_groups(project: Project) -> list[str]:
    try:
        lines = (project.venv / STAMP).read_text().splitlines()
    except OSError:
        return []
    return [ln.split()[0] for ln in lines[1:] if ln.strip()]
