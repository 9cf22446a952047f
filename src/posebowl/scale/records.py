"""What makes a task idempotent on a shared output: atomic writes and checked records.

A task writes each file under a temporary name in ``tmp_dir`` (on the same file system) and
renames it into place, so a file is whole or absent however the task dies; when all its files
are written it saves a record of them (name, size, CRC-32) the same way. A rerun trusts a
task only when its record is there and every file still has its size and CRC-32.
"""

from __future__ import annotations

import json
import os
import uuid
import zlib
from pathlib import Path
from typing import Any


def write_atomic(path: Path, data: bytes, tmp_dir: Path) -> None:
    """Write ``data`` to ``path`` via a temporary name, so ``path`` is whole or absent."""
    tmp = tmp_dir / f"{path.name}.{uuid.uuid4().hex[:8]}.part"
    tmp.write_bytes(data)
    os.replace(tmp, path)


def entry(name: str, data: bytes) -> list[object]:
    """The record line of a file written from ``data``: ``[name, size, crc32]``."""
    return [name, len(data), zlib.crc32(data)]


def crc32(path: Path) -> int:
    crc = 0
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            crc = zlib.crc32(block, crc)
    return crc


def save(record: Path, files: list[list[object]], tmp_dir: Path, **payload: Any) -> None:
    """Save the record of a finished task: its ``files`` entries and a JSON ``payload``."""
    write_atomic(record, json.dumps({**payload, "files": files}).encode(), tmp_dir)


def load_intact(record: Path, folder: Path) -> dict[str, Any] | None:
    """The payload of ``record`` when every file it lists is in ``folder`` unchanged, else None."""
    try:
        rec = json.loads(record.read_text())
        for name, size, crc in rec["files"]:
            path = folder / name
            if path.stat().st_size != size or crc32(path) != crc:
                return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return rec
