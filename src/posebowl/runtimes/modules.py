"""Which importable modules a runtime provides: to say, when a run fails on an import, whether
the official runtime has the module (build it) or the platform lacks it too (bundle a wheel).

``definition/official-modules.txt`` lists the top-level modules of every distribution in the
official lock, made from a built official venv by :func:`write_table` (``make lock`` refreshes
it; tests check it against a built venv). It ships with the package, so the diagnosis works
where only slim is built.
"""

from __future__ import annotations

import re
from pathlib import Path

from posebowl.runtimes.locks import DEFINITION

TABLE = DEFINITION / "official-modules.txt"
_MISSING = re.compile(r"(?:ModuleNotFoundError|ImportError): No module named '([^'.]+)")


def top_level_modules(venv: Path) -> dict[str, str]:
    """``module -> distribution`` for every distribution installed in ``venv``."""
    out: dict[str, str] = {}
    for info in sorted(venv.glob("lib/python3*/site-packages/*.dist-info")):
        dist = info.name.split("-")[0]
        names: set[str] = set()
        top = info / "top_level.txt"
        if top.is_file():
            names |= {n.strip() for n in top.read_text().splitlines() if n.strip()}
        record = info / "RECORD"
        if record.is_file():
            for line in record.read_text().splitlines():
                path = line.split(",", 1)[0]
                first = path.split("/", 1)[0]
                if first.endswith(".dist-info") or first.endswith(".data") or first == "..":
                    continue
                names.add(first.removesuffix(".py").split(".")[0] if "/" not in path else first)
        for n in names:
            if n.isidentifier() and not n.startswith("_"):
                out.setdefault(n, dist)
    return out


def write_table(venv: Path, path: Path = TABLE) -> Path:
    modules = top_level_modules(venv)
    lines = [f"{m} {d}" for m, d in sorted(modules.items())]
    path.write_text(
        "# module distribution: the top-level modules of the official runtime (generated from a\n"
        "# built venv by posebowl.runtimes.modules.write_table; do not edit)\n"
        + "\n".join(lines)
        + "\n"
    )
    return path


def official_modules(path: Path = TABLE) -> dict[str, str]:
    """``module -> distribution`` of the official runtime (the shipped table)."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            module, dist = line.split()
            out[module] = dist
    return out


def missing_module(line: str) -> str | None:
    """The top-level module a ``No module named`` error line names, if it is one."""
    m = _MISSING.search(line)
    return m.group(1) if m else None
