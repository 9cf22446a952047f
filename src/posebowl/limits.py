"""The resource limits of a run: one frozen :class:`Limits` value and the named profiles.

``r5`` (the default) is what the platform allows a submission: 4 GiB of memory, the CPU time of
4 cores (or of every core the host has, if fewer), 1024 processes and threads, 3 hours. Engines
enforce what they can and report, limit by limit, what they did (see
:class:`posebowl.engines.base.Enforcement`); a limit that could not be enforced is said so, never
assumed.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from typing import Any

from posebowl.errors import InputError

GIB = 1 << 30
MIB = 1 << 20
DEFAULT_PROFILE = "r5"


@dataclass(frozen=True)
class Limits:
    """What one run may use. ``None`` means unlimited for that resource."""

    memory_bytes: int | None = 4 * GIB
    cpus: float | None = 4.0
    pids: int | None = 1024
    time_limit_s: float = 3 * 3600.0
    kill_grace_s: float = 10.0  # between the polite SIGTERM and the SIGKILL of the whole tree
    shm_bytes: int | None = None  # /dev/shm size; None: the memory limit (8 GiB if unlimited)
    log_bytes: int = 50 * MIB  # log.txt is cut here, with a note saying how much was dropped
    max_zip_entries: int = 100_000
    max_unzipped_bytes: int = 20 * GIB

    def __post_init__(self) -> None:
        checks = (
            ("memory_bytes", self.memory_bytes, 16 * MIB),
            ("cpus", self.cpus, 0.01),
            ("pids", self.pids, 8),
            ("time_limit_s", self.time_limit_s, 0.1),
            ("log_bytes", self.log_bytes, 1024),
            ("max_zip_entries", self.max_zip_entries, 1),
            ("max_unzipped_bytes", self.max_unzipped_bytes, 1),
        )
        for name, value, least in checks:
            if value is not None and value < least:
                raise InputError(
                    f"The limit {name}={value} is below the smallest usable value {least}.",
                    "Raise it (or leave it out to use the profile's value).",
                )
        if self.kill_grace_s < 0:
            raise InputError(
                f"kill_grace_s={self.kill_grace_s} is negative.", "Use 0 or more seconds."
            )

    @property
    def effective_shm_bytes(self) -> int:
        if self.shm_bytes is not None:
            return self.shm_bytes
        return self.memory_bytes if self.memory_bytes is not None else 8 * GIB

    def effective_cpus(self, host_cpus: int | None = None) -> float | None:
        """The CPU quota actually asked for: the profile's, capped at the host's core count."""
        if self.cpus is None:
            return None
        host = host_cpus if host_cpus is not None else (os.cpu_count() or 1)
        return min(self.cpus, float(host))

    def with_overrides(self, **changes: Any) -> Limits:
        """A copy with the given fields replaced (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


PROFILES: dict[str, Limits] = {
    # The platform: 4 GiB, 4 cores (the UP board's Atom x5-Z8350 has 4), 3 h.
    "r5": Limits(),
    # The board's speed rather than its core count: community emulations used --cpus=1.4.
    "atom": Limits(cpus=1.4),
    # No resource limits (isolation only): to find out what a submission needs.
    "unlimited": Limits(memory_bytes=None, cpus=None, pids=None, time_limit_s=7 * 24 * 3600.0),
}


def profile(name: str = DEFAULT_PROFILE) -> Limits:
    """The named profile, or InputError listing the known names."""
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise InputError(f"There is no limits profile {name!r}.", f"Use one of: {known}.") from None


_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": MIB, "g": GIB, "t": 1 << 40}


def parse_bytes(text: str) -> int:
    """``"4g"``, ``"256M"``, ``"512mib"``, ``"1073741824"`` -> bytes (binary units)."""
    s = text.strip().lower().removesuffix("ib").removesuffix("b")
    num = s.rstrip("kmgt")
    unit = s[len(num) :]
    try:
        value = float(num)
    except ValueError:
        raise InputError(
            f"{text!r} is not a size.", "Write a number with an optional unit: 512m, 4g, 1.5g."
        ) from None
    if unit not in _UNITS or value <= 0:
        raise InputError(
            f"{text!r} is not a size.", "Write a number with an optional unit: 512m, 4g, 1.5g."
        )
    return int(value * _UNITS[unit])


def parse_duration(text: str) -> float:
    """``"90"``, ``"90s"``, ``"15m"``, ``"3h"``, ``"1h30m"`` -> seconds."""
    s = text.strip().lower()
    total, num = 0.0, ""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0}
    try:
        for ch in s:
            if ch in units:
                total += float(num) * units[ch]
                num = ""
            else:
                num += ch
        if num:
            total += float(num)
    except ValueError:
        raise InputError(
            f"{text!r} is not a duration.", "Write seconds or use h/m/s: 90, 15m, 3h, 1h30m."
        ) from None
    if total <= 0:
        raise InputError(f"{text!r} is not a positive duration.", "Use e.g. 90s, 15m or 3h.")
    return total
