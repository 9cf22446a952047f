"""The data view: what the sandbox sees at /code_execution/data, built in a scratch folder.

Only ``images/`` and ``submission_format.csv`` of the data folder are shown (read-only), never
labels or anything else; ``smoke`` cuts both to the first N images of the format file.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from posebowl import datafolder, sandbox
from posebowl.engines.base import Bind
from posebowl.errors import InputError


@dataclass(frozen=True)
class DataView:
    """The binds that make up /code_execution/data, and the format table they show."""

    binds: list[Bind]
    format_csv: Path
    fmt: pd.DataFrame  # as the platform's checks read it (pandas' defaults)
    ids: list[str]  # the image ids as written (they name the image files)
    not_mounted: list[str] = field(default_factory=list)
    missing_images: int = 0


def prepare_data_view(data_dir: Path, scratch: Path, smoke: int | None = None) -> DataView:
    """Build the read-only data view: submission_format.csv and images/, nothing else.

    With ``smoke``, only the first ``smoke`` rows of the format file and their images.
    """
    datafolder.check_data_dir(data_dir)
    if smoke is not None and smoke < 1:
        raise InputError(f"--smoke {smoke} is not a positive number of images.", "Use 1 or more.")
    view = scratch / "data"
    (view / datafolder.IMAGES_DIR).mkdir(parents=True)
    src_fmt, dst_fmt = data_dir / datafolder.FORMAT_CSV, view / datafolder.FORMAT_CSV
    if smoke is None:
        shutil.copyfile(src_fmt, dst_fmt)
    else:
        with open(src_fmt, "rb") as f, open(dst_fmt, "wb") as out:
            out.write(f.readline())
            for _ in range(smoke):
                line = f.readline()
                if not line:
                    break
                out.write(line)
    fmt, ids = datafolder.read_format(dst_fmt)
    binds = [Bind(view, sandbox.DATA)]
    images = data_dir / datafolder.IMAGES_DIR
    present = set(os.listdir(images))
    missing = sum(1 for i in ids if f"{i}.png" not in present)
    if smoke is None:
        binds.append(Bind(images.resolve(), f"{sandbox.DATA}/{datafolder.IMAGES_DIR}"))
    else:
        for i in ids:
            name = f"{i}.png"
            if name in present:
                (view / datafolder.IMAGES_DIR / name).touch()
                dest = f"{sandbox.DATA}/{datafolder.IMAGES_DIR}/{name}"
                binds.append(Bind((images / name).resolve(), dest))
    shown = (datafolder.FORMAT_CSV, datafolder.IMAGES_DIR, datafolder.MANIFEST)
    hidden = sorted(p.name for p in data_dir.iterdir() if p.name not in shown)
    return DataView(binds, dst_fmt, fmt, ids, hidden, missing)
