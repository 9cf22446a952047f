"""Where posebowl's seeded synth tasks run: this machine (``local``) or a Ray cluster (``ray``).

The synth code splits its work into independent, idempotent tasks (a chunk of image indices,
the views of one sprite design) and hands them to an :class:`Executor`; it puts the results
back in task order, so the output is the same bytes whatever ran them.

    base.py      Executor protocol, Resources, task events, Tally (progress), failures
    local.py     LocalExecutor: a process pool, as posebowl always ran (the default)
    rayexec.py   RayExecutor: Ray tasks, Ray's retries (needs the [scale] extra)
    records.py   idempotent tasks: atomic writes, records of files checked by size and CRC-32

``ray`` is imported only when a RayExecutor connects, so everything works without the extra.
"""

from __future__ import annotations

import importlib.util

from posebowl.errors import InputError
from posebowl.scale.base import (
    Event,
    Executor,
    Failed,
    Finished,
    Progress,
    Resources,
    Retried,
    Tally,
    raise_failures,
)
from posebowl.scale.local import LocalExecutor
from posebowl.scale.rayexec import RayExecutor

EXECUTORS = ("local", "ray")


def ray_installed() -> bool:
    """True when ``ray`` can be imported (the ``[scale]`` extra)."""
    try:
        return importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):
        return False


def make_executor(name: str, *, workers: int | None = None, address: str | None = None) -> Executor:
    """``local`` (``workers`` processes) or ``ray`` (the cluster at ``address``)."""
    if name == "local":
        if address is not None:
            raise InputError(
                "--ray-address needs --executor ray.", "Add --executor ray, or drop the address."
            )
        return LocalExecutor(workers)
    if name == "ray":
        return RayExecutor(address)
    raise InputError(f"Unknown executor {name!r}.", f"Use one of {', '.join(EXECUTORS)}.")


__all__ = [
    "EXECUTORS",
    "Event",
    "Executor",
    "Failed",
    "Finished",
    "LocalExecutor",
    "Progress",
    "RayExecutor",
    "Resources",
    "Retried",
    "Tally",
    "make_executor",
    "raise_failures",
    "ray_installed",
]
