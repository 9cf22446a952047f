"""The sandbox's layout: where things live inside, who runs there, and the environment.

The same on every engine and as on the platform: the data read-only at ``/code_execution/data``,
the unzipped submission in ``/code_execution/workdir`` (the working directory), the output
folder ``/code_execution/submission``; an unprivileged ``appuser`` with a private home.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

ROOT = "/code_execution"
DATA = f"{ROOT}/data"
SUBMISSION = f"{ROOT}/submission"
WORKDIR = f"{ROOT}/workdir"
HOME = "/home/appuser"
#: where posebowl's own scripts are mounted: the entrypoint (``run/entrypoint.sh``) and the
#: launcher that confines main.sh (``run/confine.py``)
TOOLS = "/opt/posebowl"
ENTRYPOINT = f"{TOOLS}/entrypoint.sh"
CONFINE = f"{TOOLS}/confine.py"
UID = 1000
GID = 1000
USER = "appuser"
#: the runtime venv is read-only: ``pip install`` inside goes here, first on the import path
PIP_TARGET = f"{HOME}/.local/posebowl-site-packages"

#: The environment inside the sandbox: nothing of the host's (engines add PATH for the runtime).
ENV: dict[str, str] = {
    "HOME": HOME,
    "USER": USER,
    "LOGNAME": USER,
    "LANG": "C.UTF-8",
    "TMPDIR": "/tmp",
    # Stream the output as it is printed, so log.txt's timestamps say when things happened.
    "PYTHONUNBUFFERED": "1",
    # The runtime venv is read-only: `pip install` (e.g. of a wheel bundled in the zip, offline)
    # goes to a writable folder that is first on the import path, as if installed in the venv.
    "PIP_TARGET": PIP_TARGET,
    "PYTHONPATH": PIP_TARGET,
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
}


def entrypoint_file() -> Path:
    """The entrypoint script on the host (package data), mounted at :data:`ENTRYPOINT`."""
    return Path(str(resources.files("posebowl.run") / "entrypoint.sh"))


def confine_file() -> Path:
    """The confinement launcher on the host (package data), mounted at :data:`CONFINE`."""
    return Path(str(resources.files("posebowl.run") / "confine.py"))


def tool_mounts() -> list[tuple[Path, str]]:
    """``(host file, path inside)`` of posebowl's scripts, for every engine to mount."""
    return [(entrypoint_file(), ENTRYPOINT), (confine_file(), CONFINE)]
