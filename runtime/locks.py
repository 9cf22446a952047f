"""Prototype: the runtime locks, `official` resolved from PyPI and `slim` selected from it.

Standalone (standard library only; uv is needed for ``lock``), to be folded into posebowl's
``runtimes`` package. Run from the repository root::

    python runtime/locks.py lock official   # runtime/official.in -> runtime/official.txt (PyPI)
    python runtime/locks.py derive slim     # runtime/slim.in + official.txt -> slim.txt (offline)
    python runtime/locks.py check           # both locks match their sources (offline)

- A ``NAME.in`` file lists packages as uv reads them; lines ``# lock-option: ARGS`` add ``ARGS`` to
  its ``uv pip compile`` command, so the file (and the SHA-256 its lock records) says everything
  the resolution depends on.
- A derived runtime's ``.in`` lists bare package names (no versions). Its lock is the closure of
  those packages within the base lock: each entry is copied from the base lock with its pin and
  hashes, following the base lock's ``# via`` annotations (the resolved dependency graph). So a
  derived runtime never has a version the base lock does not have, and needs no network.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

RUNTIME_DIR = Path(__file__).resolve().parent
PYTHON_VERSION = "3.11"
PLATFORM = "x86_64-manylinux_2_28"
DERIVED = {"slim": "official"}  # derived runtime -> the lock it selects from
HASH_LINE = re.compile(r"^# requirements-in-sha256: ([0-9a-f]{64})\s*$", re.M)
BASE_HASH_LINE = re.compile(r"^# base-lock-sha256: ([0-9a-f]{64})\s*$", re.M)
OPTION_LINE = re.compile(r"^#\s*lock-option:\s*(.+?)\s*$", re.M)
ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==(\S+)")
NAME_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:#.*)?$")


class LockError(Exception):
    """A lock cannot be made or is out of date; the message says what and how to fix it."""


def normalize(name: str) -> str:
    """PEP 503 name normalization (``PyYAML`` and ``pyyaml`` are the same project)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lock_options(src: Path) -> list[str]:
    """The extra ``uv pip compile`` arguments a ``.in`` file asks for, in file order."""
    return [arg for m in OPTION_LINE.finditer(src.read_text()) for arg in shlex.split(m.group(1))]


def uv_bin() -> str:
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found:
            return found
    raise LockError("uv is not installed: install posebowl's dependencies (make install).")


def compile_command(src: Path) -> list[str]:
    return [
        uv_bin(),
        "pip",
        "compile",
        src.name,
        "--generate-hashes",
        "--python-version",
        PYTHON_VERSION,
        "--python-platform",
        PLATFORM,
        "--annotation-style",
        "split",
        "--no-header",
        "--quiet",
        *lock_options(src),
    ]


def lock(name: str, runtime_dir: Path = RUNTIME_DIR) -> Path:
    """Resolve ``NAME.in`` into ``NAME.txt`` with hashes (needs PyPI or a warm uv cache)."""
    src, out = runtime_dir / f"{name}.in", runtime_dir / f"{name}.txt"
    if not src.is_file():
        raise LockError(f"{src} does not exist: create it with one package per line.")
    cmd = compile_command(src)
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=runtime_dir)
    if proc.returncode != 0:
        raise LockError(f"Resolving {src.name} failed:\n{proc.stderr.strip()}")
    options = " ".join(shlex.quote(a) for a in lock_options(src))
    header = (
        f"# The `{name}` runtime lock. Do not edit: change {src.name}, then re-lock.\n"
        f"# Resolved by `uv pip compile --generate-hashes` for Python {PYTHON_VERSION} on "
        f"{PLATFORM}\n"
        f"# with the lock options of {src.name}: {options or '(none)'}\n"
        f"# requirements-in-sha256: {sha256_file(src)}\n"
    )
    out.write_text(header + proc.stdout)
    return out


# -- reading a lock ------------------------------------------------------------------------------
@dataclass
class Entry:
    name: str  # normalized
    version: str
    lines: list[str]  # the requirement line and its --hash continuation lines, verbatim
    via: list[str] = field(default_factory=list)  # normalized dependents; "-r x.in" for roots


def parse_lock(text: str) -> dict[str, Entry]:
    """The entries of a ``uv pip compile`` lock (split annotation style), by normalized name."""
    entries: dict[str, Entry] = {}
    current: Entry | None = None
    continued = False
    in_via = False
    for line in text.splitlines():
        stripped = line.strip()
        if continued:  # a --hash line of the current entry
            current.lines.append(line)  # type: ignore[union-attr]
            continued = line.endswith("\\")
            continue
        m = ENTRY.match(line)
        if m:
            current = Entry(normalize(m.group(1)), m.group(3), [line])
            entries[current.name] = current
            continued = line.endswith("\\")
            in_via = False
            continue
        if current is not None and stripped.startswith("# via"):
            rest = stripped.removeprefix("# via").strip()
            in_via = not rest
            if rest:
                current.via.append(_via_name(rest))
            continue
        if current is not None and in_via and stripped.startswith("#   "):
            current.via.append(_via_name(stripped.removeprefix("#").strip()))
            continue
        in_via = False
        if stripped and not stripped.startswith("#"):
            raise LockError(f"Unexpected line in the lock: {line!r}")
    return entries


def _via_name(text: str) -> str:
    return text if text.startswith("-") else normalize(text.split("[")[0])


def read_names(src: Path) -> list[str]:
    """The bare package names of a derived runtime's ``.in`` file (comments ignored)."""
    names = []
    for n, raw in enumerate(src.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = NAME_LINE.match(line)
        if not m:
            raise LockError(
                f"{src.name}:{n}: {line!r} is not a bare package name. A derived runtime takes "
                "its versions from its base lock: write the name only."
            )
        names.append(normalize(m.group(1)))
    return names


def closure(roots: list[str], base: dict[str, Entry]) -> list[str]:
    """``roots`` and everything they depend on within ``base``, sorted by name."""
    missing = [r for r in roots if r not in base]
    if missing:
        raise LockError(
            f"Not in the base lock: {', '.join(missing)}. Add them to the base .in file and "
            "re-lock it first."
        )
    deps: dict[str, list[str]] = {n: [] for n in base}  # package -> its dependencies
    for entry in base.values():
        for parent in entry.via:
            if parent in deps:
                deps[parent].append(entry.name)
    seen, todo = set(roots), list(roots)
    while todo:
        for dep in deps[todo.pop()]:
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return sorted(seen)


def derive(name: str, runtime_dir: Path = RUNTIME_DIR) -> Path:
    """Write ``NAME.txt``: the closure of ``NAME.in``'s packages within the base lock."""
    base_name = DERIVED[name]
    src, base_lock = runtime_dir / f"{name}.in", runtime_dir / f"{base_name}.txt"
    out = runtime_dir / f"{name}.txt"
    roots = read_names(src)
    base = parse_lock(base_lock.read_text())
    selected = closure(roots, base)
    chosen = set(selected)
    body = []
    for pkg in selected:
        entry = base[pkg]
        via = sorted({v for v in entry.via if v in chosen})
        if pkg in roots:
            via.insert(0, f"-r {src.name}")
        body += entry.lines
        if len(via) == 1:
            body.append(f"    # via {via[0]}")
        elif via:
            body += ["    # via", *(f"    #   {v}" for v in via)]
    header = (
        f"# The `{name}` runtime lock: the packages of {src.name} and their dependencies, selected "
        f"from {base_lock.name}\n"
        f"# with its pins and hashes. Do not edit: change {src.name} (or {base_name}.in), then "
        "re-lock.\n"
        f"# requirements-in-sha256: {sha256_file(src)}\n"
        f"# base-lock-sha256: {sha256_file(base_lock)}\n"
    )
    out.write_text(header + "\n".join(body) + "\n")
    return out


def problems(runtime_dir: Path = RUNTIME_DIR) -> list[str]:
    """What is out of date, offline: each lock against its .in (and a derived one's base)."""
    found = []
    for src in sorted(runtime_dir.glob("*.in")):
        name = src.stem
        if name.startswith("requirements"):
            continue  # the old single-runtime files, checked by posebowl itself
        out = runtime_dir / f"{name}.txt"
        if not out.is_file():
            found.append(f"{out.name} does not exist")
            continue
        text = out.read_text()
        m = HASH_LINE.search(text)
        if not m or m.group(1) != sha256_file(src):
            found.append(f"{out.name} was not made from the current {src.name}")
        if name in DERIVED:
            base_lock = runtime_dir / f"{DERIVED[name]}.txt"
            b = BASE_HASH_LINE.search(text)
            if not b or not base_lock.is_file() or b.group(1) != sha256_file(base_lock):
                found.append(f"{out.name} was not selected from the current {base_lock.name}")
            else:
                base = parse_lock(base_lock.read_text())
                for entry in parse_lock(text).values():
                    pin = base.get(entry.name)
                    if pin is None or pin.version != entry.version:
                        found.append(
                            f"{out.name} has {entry.name}=={entry.version}, {base_lock.name} "
                            f"has {pin.version if pin else 'no such package'}"
                        )
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("lock", help="resolve NAME.in into NAME.txt (PyPI)").add_argument("name")
    sub.add_parser("derive", help="select NAME.txt from its base lock").add_argument("name")
    sub.add_parser("check", help="say which locks are out of date (offline)")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "lock":
            print(lock(args.name))
        elif args.cmd == "derive":
            if args.name not in DERIVED:
                raise LockError(f"{args.name} is not a derived runtime ({', '.join(DERIVED)}).")
            print(derive(args.name))
        else:
            found = problems()
            for p in found:
                print(p, file=sys.stderr)
            return 1 if found else 0
    except LockError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
