"""The example submissions that ship with posebowl, as package data.

    quickstart   the official quickstart: a valid, arbitrary box per image (main.sh + main.py)
    benchmark    the benchmark detector: a YOLO trained by posebowl, run with OpenVINO (or
                 onnxruntime) on the CPU, model weights included

In a checkout they are also at the top, as in the official runtime repository:
``example_src/`` and ``example_benchmark/`` are links to them. Installed, ``posebowl examples
copy NAME DEST`` copies one out to edit and pack.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from posebowl.errors import InputError

NAMES = ("quickstart", "benchmark")
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc")


def path(name: str) -> Path:
    """The folder of the example ``name`` (inside the installed package)."""
    if name not in NAMES:
        raise InputError(f"There is no example {name!r}.", f"Use one of: {', '.join(NAMES)}.")
    return Path(str(resources.files("posebowl.examples") / name))


def copy(name: str, dest: Path) -> Path:
    """Copy the example ``name`` into ``dest`` (which must not exist yet, or be empty)."""
    src = path(name)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise InputError(
            f"{dest} already exists and is not an empty folder.",
            "Choose a new folder: posebowl never overwrites files it did not make.",
        )
    if dest.is_dir():
        dest.rmdir()
    shutil.copytree(src, dest, ignore=SKIP)
    return dest
