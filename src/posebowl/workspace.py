"""Where posebowl keeps what it builds: runtime venvs, the Docker wheelhouse, caches.

Chosen once, in this order:

1. ``$POSEBOWL_HOME``, when set;
2. the posebowl checkout the package runs from (an editable install, ``make install``): its
   ``.runtime/`` and ``.cache/`` folders, as before;
3. otherwise (``pipx install posebowl``, ``uv tool install .``): ``$XDG_DATA_HOME/posebowl``,
   by default ``~/.local/share/posebowl``.

What a runtime *is* (its packages and locks) ships inside the package
(:mod:`posebowl.runtimes`); only what is built from it lives here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "POSEBOWL_HOME"


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def runtimes(self) -> Path:
        """One venv per runtime: ``runtimes/<name>``."""
        return self.root / ".runtime"

    def runtime_venv(self, name: str) -> Path:
        return self.runtimes / name

    @property
    def cache(self) -> Path:
        return self.root / ".cache"


def checkout() -> Path | None:
    """The source checkout posebowl runs from, if it does (``src/posebowl`` in it)."""
    here = Path(__file__).resolve().parent
    root = here.parents[1]
    project = root / "pyproject.toml"
    if (
        here.parent.name == "src"
        and project.is_file()
        and 'name = "posebowl"' in project.read_text()
    ):
        return root
    return None


def find() -> Workspace:
    """The workspace (see the module docstring)."""
    env = os.environ.get(HOME_ENV)
    if env:
        return Workspace(Path(env).expanduser())
    root = checkout()
    if root is not None:
        return Workspace(root)
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Workspace(Path(data) / "posebowl")
