"""Talking to the Docker daemon through the ``docker`` command: finding it, short calls, and
whether a daemon answers (``docker info``) with what it can do."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

from posebowl.engines.docker.argv import DaemonInfo
from posebowl.errors import SetupError

INSTALL_HINT = (
    "Install Docker (https://docs.docker.com/get-docker/) and start it, or use --engine bwrap."
)
DAEMON_HINT = (
    "Start Docker (Docker Desktop, or `sudo systemctl start docker`) and check that your user "
    "may use it (`docker info`; on Linux, add yourself to the docker group)."
)


def find(docker: str | None = None) -> str:
    """The docker command to use (``docker`` when given, else the first on PATH)."""
    found = docker or shutil.which("docker")
    if not found:
        raise SetupError("Docker is not installed (no docker command).", INSTALL_HINT)
    return found


def cli(docker: str, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """``docker ARGS`` with its output captured; a failure to start it is an exit code of 1."""
    try:
        return subprocess.run(
            [docker, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess([docker, *args], 1, "", str(exc))


def tail(text: str, lines: int = 5) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def probe(docker: str | None = None) -> DaemonInfo | str:
    """What the daemon says about itself, or why none can be used (with the fix)."""
    exe = docker or shutil.which("docker")
    if not exe or not os.access(exe, os.X_OK):
        return f"Docker is not installed (no docker command). {INSTALL_HINT}"
    proc = cli(exe, "info", "--format", "{{json .}}", timeout=20)
    if proc.returncode != 0:
        why = tail(proc.stderr or proc.stdout, 1) or f"exit code {proc.returncode}"
        return f"The Docker daemon does not answer ({why}). {DAEMON_HINT}"
    try:
        info = DaemonInfo.from_json(json.loads(proc.stdout))
    except (ValueError, TypeError) as exc:
        return f"`docker info` printed something unexpected ({exc}). {DAEMON_HINT}"
    if info.os_type != "linux":
        return (
            f"The Docker daemon runs {info.os_type} containers; the runtime image is Linux. "
            "Switch Docker Desktop to Linux containers."
        )
    return info


def answering(docker: str | None = None) -> str:
    """The docker command, once a daemon answers it; SetupError saying why not otherwise."""
    found = probe(docker)
    if isinstance(found, str):
        raise SetupError(found)
    return find(docker)
