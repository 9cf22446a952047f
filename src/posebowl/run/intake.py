"""Intake: open the submission zip safely into the working directory, or say why not."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from posebowl import packing
from posebowl.errors import InvalidSubmissionError
from posebowl.findings import Violation
from posebowl.limits import Limits


@dataclass(frozen=True)
class Intake:
    """What was unzipped into the working directory, or the violations that refused the zip."""

    entries: tuple[packing.ZipEntry, ...] = ()
    refused: tuple[Violation, ...] = ()

    @property
    def accepted(self) -> bool:
        return not self.refused

    @property
    def bytes(self) -> int:
        return sum(e.size for e in self.entries)


def open_submission(zip_path: Path, workdir: Path, limits: Limits) -> Intake:
    """Check ``zip_path`` and extract it into ``workdir`` (refusals are an Intake, not errors)."""
    try:
        entries = packing.extract_zip(
            zip_path, workdir, limits.max_zip_entries, limits.max_unzipped_bytes
        )
    except InvalidSubmissionError as exc:
        return Intake(refused=tuple(exc.violations))
    return Intake(entries=tuple(entries))
