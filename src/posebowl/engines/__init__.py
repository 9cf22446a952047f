"""Isolation engines: a registry by name and the automatic choice.

Each engine implements :class:`posebowl.engines.base.Engine`. ``select("auto")`` returns the
first engine in :data:`AUTO_ORDER` whose ``health_check`` passes (bwrap when it can make its
namespaces, else docker when a daemon answers), and fails closed (SetupError with every engine's
reason) when none does: a submission is never run unsandboxed. The command line takes the name
from ``--engine`` or the environment variable :data:`ENGINE_ENV`.
"""

from __future__ import annotations

from collections.abc import Callable

from posebowl.engines.base import Engine
from posebowl.engines.bwrap import BwrapEngine
from posebowl.engines.docker import DockerEngine
from posebowl.errors import InputError, SetupError

#: name -> factory.
ENGINES: dict[str, Callable[[], Engine]] = {"bwrap": BwrapEngine, "docker": DockerEngine}
#: the order ``auto`` tries them in: no daemon and ~10 ms to start first.
AUTO_ORDER: list[str] = ["bwrap", "docker"]
#: the environment variable naming the engine when --engine is not given.
ENGINE_ENV = "POSEBOWL_ENGINE"


def select(name: str = "auto") -> Engine:
    """The engine called ``name`` (or the first healthy one for ``auto``), checked healthy."""
    if name == "auto":
        reasons = []
        for candidate in AUTO_ORDER:
            engine = ENGINES[candidate]()
            reason = engine.health_check()
            if reason is None:
                return engine
            reasons.append(f"{candidate}: {reason}")
        raise SetupError("No sandbox engine works on this machine. " + " ".join(reasons))
    if name not in ENGINES:
        known = ", ".join(["auto", *sorted(ENGINES)])
        raise InputError(f"There is no engine {name!r}.", f"Use one of: {known}.")
    engine = ENGINES[name]()
    reason = engine.health_check()
    if reason is not None:
        raise SetupError(reason)
    return engine
