"""Prototype: compile a runtime venv's bytecode; files that do not compile are listed, not fatal.

Run it with the venv's own interpreter (standard library only)::

    VENV/bin/python runtime/compile_bytecode.py VENV/lib

Wheels may ship files only a newer Python can compile (torch 2.13+ ships
``torch/testing/_internal/py312_intrinsics.py``, Python 3.12 syntax). ``python -m compileall``
compiles every other file but then exits with 1, which fails a build for a file nobody imports.
Here a file that raises ``SyntaxError`` (or ``ValueError``: null bytes) is skipped and listed;
only an ``OSError`` (cannot read a file or write its ``.pyc``) fails, with exit code 1.
The ``.pyc`` files are those ``compileall`` writes (timestamp-checked, optimization level 0).
"""

from __future__ import annotations

import os
import py_compile
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

CHUNK = 16  # files per task: small enough to keep every worker busy to the end


def python_files(root: Path) -> list[str]:
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        found += [os.path.join(folder, f) for f in sorted(files) if f.endswith(".py")]
    return found


def _compile(paths: list[str]) -> list[tuple[str, str, str]]:
    """(path, kind, message) for each file of ``paths`` that did not compile."""
    failed = []
    for path in paths:
        try:
            py_compile.compile(path, doraise=True)
        except py_compile.PyCompileError as exc:  # the source does not compile (SyntaxError, ...)
            failed.append((path, "skipped", f"{exc.exc_type_name}: {exc.exc_value}"))
        except OSError as exc:  # reading the source or writing the .pyc failed
            failed.append((path, "fatal", f"{type(exc).__name__}: {exc}"))
    return failed


def compile_tree(root: Path, workers: int | None = None) -> tuple[int, list[tuple[str, str, str]]]:
    """Compile every ``.py`` under ``root``; returns (files seen, failures)."""
    files = python_files(root)
    chunks = [files[i : i + CHUNK] for i in range(0, len(files), CHUNK)]
    failures: list[tuple[str, str, str]] = []
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        for result in pool.map(_compile, chunks):
            failures += result
    return len(files), sorted(failures)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.splitlines()[0], "\nusage: python compile_bytecode.py DIR", file=sys.stderr)
        return 2
    root = Path(argv[0])
    seen, failures = compile_tree(root)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for path, kind, message in failures:
        first = message.strip().splitlines()[0] if message.strip() else ""
        label = "not compiled" if kind == "skipped" else "ERROR"
        print(f"{label}: {os.path.relpath(path, root)} ({first})")
    skipped = sum(1 for f in failures if f[1] == "skipped")
    fatal = len(failures) - skipped
    print(
        f"compiled {seen - len(failures)} of {seen} files; {skipped} do not compile on "
        f"Python {version} (skipped; importing them would fail the same way); {fatal} errors"
    )
    return 1 if fatal else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
