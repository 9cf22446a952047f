"""Findings: the value every checker returns, one per broken rule (never only the first).

A :class:`Violation` names its rule with a stable identifier, says what is wrong in a sentence
and carries the offending image ids (the first :data:`SHOW_IDS`, plus how many there are in
all). The submission rules (:mod:`posebowl.rules`), the zip checks (:mod:`posebowl.packing`),
the report's left-out rows and the run's verdict all speak in these.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

SHOW_IDS = 10  # how many offending image ids a message names


@dataclass(frozen=True)
class Violation:
    """One broken rule: a stable ``rule`` name, a sentence, and the offending image ids."""

    rule: str
    message: str
    image_ids: tuple[str, ...] = ()
    count: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "message": self.message,
            "count": self.count,
            "image_ids": list(self.image_ids),
        }


def violation(rule: str, what: str, ids: Iterable[object]) -> Violation:
    """A violation naming the first SHOW_IDS offending ids and how many there are in all."""
    shown_ids = [str(i) for i in ids]
    shown = ", ".join(shown_ids[:SHOW_IDS])
    more = f" and {len(shown_ids) - SHOW_IDS} more" if len(shown_ids) > SHOW_IDS else ""
    row = "row" if len(shown_ids) == 1 else "rows"
    message = f"{what} in {len(shown_ids)} {row} (image_id {shown}{more})"
    return Violation(rule, message, tuple(shown_ids[:SHOW_IDS]), len(shown_ids))
