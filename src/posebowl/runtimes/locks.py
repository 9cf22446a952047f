"""The runtime locks: ``official`` resolved from PyPI, ``slim`` selected from it, both checked
offline.

- ``NAME.in`` lists packages as uv reads them; a line ``# lock-option: ARGS`` adds ``ARGS`` to
  its ``uv pip compile`` command, so the file (whose SHA-256 its lock records) says everything
  the resolution depends on.
- A derived runtime's ``.in`` lists bare package names. Its lock is the closure of those
  packages within the base lock: each entry copied from the base lock with its pin and hashes,
  following the base lock's ``# via`` annotations (the resolved dependency graph). So a derived
  runtime never has a version its base does not have, and needs no network.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from posebowl.errors import InputError, SetupError

DEFINITION = Path(str(resources.files("posebowl.runtimes") / "definition"))
NAMES = ("official", "slim")
DERIVED = {"slim": "official"}  # a derived runtime -> the lock it selects from
PYTHON_VERSION = "3.11"
PLATFORM = "x86_64-manylinux_2_28"  # the sandbox is Linux x86_64, like the platform
HASH_LINE = re.compile(r"^# requirements-in-sha256: ([0-9a-f]{64})\s*$", re.M)
BASE_HASH_LINE = re.compile(r"^# base-lock-sha256: ([0-9a-f]{64})\s*$", re.M)
OPTION_LINE = re.compile(r"^#\s*lock-option:\s*(.+?)\s*$", re.M)
ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==(\S+)")
NAME_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:#.*)?$")


def normalize(name: str) -> str:
    """PEP 503 name normalization (``PyYAML`` and ``pyyaml`` are the same project)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Spec:
    """One runtime's definition: its ``.in`` file and its lock, in ``folder``."""

    name: str
    folder: Path = DEFINITION

    @property
    def source(self) -> Path:
        return self.folder / f"{self.name}.in"

    @property
    def lock(self) -> Path:
        return self.folder / f"{self.name}.txt"

    @property
    def base(self) -> Spec | None:
        """The runtime whose lock this one selects from (slim: official)."""
        base = DERIVED.get(self.name)
        return None if base is None else Spec(base, self.folder)

    def lock_sha256(self) -> str:
        return sha256_file(self.lock)

    def pins(self) -> dict[str, str]:
        """Normalized package name -> pinned version."""
        return {e.name: e.version for e in parse_lock(self.lock.read_text()).values()}

    def problem(self) -> str | None:
        """``None`` when the lock matches its sources, else what is wrong (no network)."""
        if not self.source.is_file():
            return f"{self.source} does not exist"
        if not self.lock.is_file():
            return f"{self.lock} does not exist; run make lock"
        text = self.lock.read_text()
        m = HASH_LINE.search(text)
        if not m or m.group(1) != sha256_file(self.source):
            return (
                f"{self.lock.name} was not made from the current {self.source.name}; run make lock"
            )
        base = self.base
        if base is None:
            return None
        b = BASE_HASH_LINE.search(text)
        if not b or not base.lock.is_file() or b.group(1) != base.lock_sha256():
            chosen = f"{self.lock.name} was not selected from the current {base.lock.name}"
            return f"{chosen}; run make lock"
        base_pins = base.pins()
        for entry in parse_lock(text).values():
            if base_pins.get(entry.name) != entry.version:
                return (
                    f"{self.lock.name} has {entry.name}=={entry.version}, {base.lock.name} has "
                    f"{base_pins.get(entry.name, 'no such package')}"
                )
        return None


def spec(name: str) -> Spec:
    """The runtime called ``name``, or InputError listing the known ones."""
    if name not in NAMES:
        raise InputError(f"There is no runtime {name!r}.", f"Use one of: {', '.join(NAMES)}.")
    return Spec(name)


# -- reading a lock ------------------------------------------------------------------------------
@dataclass
class Entry:
    name: str  # normalized
    version: str
    lines: list[str]  # the requirement line and its --hash continuation lines, verbatim
    via: list[str] = field(default_factory=list)  # normalized dependents; "-r x.in" for roots


def _via_name(text: str) -> str:
    return text if text.startswith("-") else normalize(text.split("[")[0])


def parse_lock(text: str) -> dict[str, Entry]:
    """The entries of a ``uv pip compile`` lock (split annotation style), by normalized name."""
    entries: dict[str, Entry] = {}
    current: Entry | None = None
    continued = False
    in_via = False
    for line in text.splitlines():
        stripped = line.strip()
        if continued and current is not None:  # a --hash line of the current entry
            current.lines.append(line)
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
            raise InputError(f"Unexpected line in the lock: {line!r}.", "Re-lock: make lock.")
    return entries


def read_names(src: Path) -> list[str]:
    """The bare package names of a derived runtime's ``.in`` file (comments ignored)."""
    names = []
    for n, raw in enumerate(src.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = NAME_LINE.match(line)
        if not m:
            raise InputError(
                f"{src.name}:{n}: {line!r} is not a bare package name.",
                "A derived runtime takes its versions from its base lock: write the name only.",
            )
        names.append(normalize(m.group(1)))
    return names


def closure(roots: list[str], base: dict[str, Entry]) -> list[str]:
    """``roots`` and everything they depend on within ``base``, sorted by name."""
    missing = [r for r in roots if r not in base]
    if missing:
        raise InputError(
            f"Not in the base lock: {', '.join(missing)}.",
            "Add them to the base runtime's .in file and re-lock it first.",
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


# -- making a lock -------------------------------------------------------------------------------
def uv_bin() -> str:
    """The uv executable (a dependency of posebowl)."""
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found:
            return found
    raise SetupError("uv is not installed.", "Install posebowl's dependencies: make install.")


def lock_options(src: Path) -> list[str]:
    """The extra ``uv pip compile`` arguments a ``.in`` file asks for, in file order."""
    return [arg for m in OPTION_LINE.finditer(src.read_text()) for arg in shlex.split(m.group(1))]


def resolve(s: Spec) -> Path:
    """Resolve ``NAME.in`` into ``NAME.txt`` with hashes (needs PyPI or a warm uv cache)."""
    if s.base is not None:
        return derive(s)
    if not s.source.is_file():
        raise InputError(f"{s.source} does not exist.", "Create it with one package per line.")
    cmd = [
        uv_bin(),
        "pip",
        "compile",
        s.source.name,
        "--generate-hashes",
        "--python-version",
        PYTHON_VERSION,
        "--python-platform",
        PLATFORM,
        "--annotation-style",
        "split",
        "--no-header",
        "--quiet",
        *lock_options(s.source),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=s.folder)
    if proc.returncode != 0:
        raise SetupError(
            f"Resolving {s.source.name} failed:\n{proc.stderr.strip()}",
            "Fix the conflicting pins in the .in file (uv's message names them).",
        )
    options = " ".join(shlex.quote(a) for a in lock_options(s.source))
    header = (
        f"# The `{s.name}` runtime lock. Do not edit: change {s.source.name}, then re-lock.\n"
        f"# Resolved by `uv pip compile --generate-hashes` for Python {PYTHON_VERSION} on "
        f"{PLATFORM}\n"
        f"# with the lock options of {s.source.name}: {options or '(none)'}\n"
        f"# requirements-in-sha256: {sha256_file(s.source)}\n"
    )
    s.lock.write_text(header + proc.stdout)
    return s.lock


def derive(s: Spec) -> Path:
    """Write a derived runtime's lock: the closure of its ``.in`` within its base's lock."""
    base = s.base
    assert base is not None
    roots = read_names(s.source)
    entries = parse_lock(base.lock.read_text())
    selected = closure(roots, entries)
    chosen = set(selected)
    body = []
    for pkg in selected:
        entry = entries[pkg]
        via = sorted({v for v in entry.via if v in chosen})
        if pkg in roots:
            via.insert(0, f"-r {s.source.name}")
        body += entry.lines
        if len(via) == 1:
            body.append(f"    # via {via[0]}")
        elif via:
            body += ["    # via", *(f"    #   {v}" for v in via)]
    header = (
        f"# The `{s.name}` runtime lock: the packages of {s.source.name} and their dependencies, "
        f"selected from {base.lock.name}\n"
        f"# with its pins and hashes. Do not edit: change {s.source.name} (or {base.source.name}),"
        " then re-lock.\n"
        f"# requirements-in-sha256: {sha256_file(s.source)}\n"
        f"# base-lock-sha256: {base.lock_sha256()}\n"
    )
    s.lock.write_text(header + "\n".join(body) + "\n")
    return s.lock
