"""Render spacecraft sprites with Blender: the venv, the task list, the workers, the crops.

A sprite is one RGBA PNG of one spacecraft design (``spacecraft_id``) seen in one view,
cropped to the pixels with alpha > 0, alpha kept exact. Work is split into independent seeded
:class:`SpriteTask` units ``(design_id, view_id)``: any machine renders the same pixels for the
same task, tasks never share state, and a finished task is a file, so runs resume.

Locally :func:`render_sprites` fans tasks out to ``workers`` long-lived Blender processes (one
per group of designs, so a design's scene is built once for all its views). **A distributed
engine plugs in at** :func:`render_sprites`'s ``groups`` loop: e.g. Ray would submit one
``@ray.remote`` call of :func:`run_worker` per group (or per task) and gather the raw frames;
:func:`crop_sprite` and :func:`write_index` stay as they are.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from posebowl.errors import InputError, SetupError
from posebowl.synth import design

# Pinned: bpy wheels exist for exactly one Python (3.11 for Blender 4.2) and need numpy < 2.
BPY_REQUIREMENTS = ("bpy==4.2.0", "numpy==1.26.4")
BLENDER_PYTHON = "python3.11"
DEFAULT_VENV = Path(".cache/blender-venv")
VENV_ENV_VAR = "POSEBOWL_BLENDER_VENV"
WORKER = Path(__file__).with_name("blender_worker.py")

INDEX_NAME = "index.csv"
INDEX_COLUMNS = (
    "sprite",
    "spacecraft_id",
    "view_id",
    "held_out",
    "family",
    "split",
    "width",
    "height",
)
HELD_OUT_EVERY = 6  # designs of the training families with id % 6 == 5 are held out
_NAME = re.compile(r"^sc(\d{4})_v(\d{2})\.png$")


@dataclass(frozen=True, order=True)
class SpriteTask:
    """One independent unit of rendering work: a design seen in one view."""

    design_id: int
    view_id: int

    @property
    def name(self) -> str:
        return f"sc{self.design_id:04d}_v{self.view_id:02d}.png"


@dataclass(frozen=True)
class RenderReport:
    """What :func:`render_sprites` did."""

    rendered: int
    skipped: int
    seconds: float
    render_seconds: tuple[float, ...]  # Blender's time per rendered sprite (build + render)

    @property
    def seconds_per_sprite(self) -> float:
        return float(np.mean(self.render_seconds)) if self.render_seconds else float("nan")


def split_of(design_id: int) -> str:
    """Which split a design belongs to.

    ``family``: every design of the held-out family (``design.HELD_OUT_FAMILY``, a recipe no
    training design uses); ``heldout``: designs of the training families with id % 6 == 5
    (unseen designs of seen families); ``train``: the rest.
    """
    if design.family_of(design_id) == design.HELD_OUT_FAMILY:
        return "family"
    return "heldout" if design_id % HELD_OUT_EVERY == HELD_OUT_EVERY - 1 else "train"


def is_held_out(design_id: int) -> bool:
    """Designs kept out of training (the held-out designs and the held-out family)."""
    return split_of(design_id) != "train"


def plan_tasks(designs: Iterable[int], views: int) -> list[SpriteTask]:
    """Every (design, view) pair, designs in order."""
    if views < 1:
        raise InputError(f"views must be at least 1, got {views}.", "Pass --views 1 or more.")
    return [SpriteTask(d, v) for d in designs for v in range(views)]


# ----------------------------------------------------------------------------- the venv


def venv_path(venv: Path | None = None) -> Path:
    """The Blender venv: ``venv``, else $POSEBOWL_BLENDER_VENV, else ``.cache/blender-venv``."""
    if venv is not None:
        return venv
    return Path(os.environ.get(VENV_ENV_VAR, DEFAULT_VENV))


def blender_python(venv: Path | None = None) -> Path:
    """The venv's python, or SetupError saying how to build it."""
    py = venv_path(venv) / "bin" / "python"
    if not py.exists():
        raise SetupError(
            f"The Blender venv {venv_path(venv)} does not exist.",
            "Run `posebowl synth setup` (about 1.6 GB; needs python3.11 and PyPI).",
        )
    return py


def _run(cmd: Sequence[str | Path], what: str) -> str:
    """Run ``cmd``; on failure raise SetupError with the command, exit code and output tail."""
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
        raise SetupError(
            f"{what} failed: `{' '.join(map(str, cmd))}` exited {proc.returncode}: "
            + " | ".join(tail),
            "Fix the problem shown, then run `posebowl synth setup` again.",
        )
    return proc.stdout


def setup_venv(venv: Path | None = None, python: str = BLENDER_PYTHON) -> Path:
    """Create the Blender venv with pinned ``bpy`` and numpy < 2; return its python.

    Idempotent: an existing venv whose ``import bpy`` works is left alone.
    """
    root = venv_path(venv)
    py = root / "bin" / "python"
    check = [py, "-c", "import bpy, numpy; print(bpy.app.version_string, numpy.__version__)"]
    if py.exists():
        probe = subprocess.run([str(c) for c in check], capture_output=True, check=False)
        if probe.returncode == 0:
            return py
    exe = shutil.which(python)
    if exe is None:
        raise SetupError(
            f"{python} is not on PATH; bpy needs exactly Python 3.11.",
            "Install it (apt-get install python3.11 python3.11-venv, or pyenv install 3.11).",
        )
    root.parent.mkdir(parents=True, exist_ok=True)
    _run([exe, "-m", "venv", root], "Creating the Blender venv")
    _run([py, "-m", "pip", "install", "-q", *BPY_REQUIREMENTS], "Installing bpy")
    _run(check, "Importing bpy")
    return py


# ----------------------------------------------------------------------------- cropping


def crop_sprite(rgba: np.ndarray, max_side: int | None = None) -> np.ndarray:
    """Crop an ``[H, W, 4]`` uint8 frame to its alpha > 0 box; zero the colour where alpha is 0.

    ``max_side`` downscales (area interpolation on premultiplied colour) so the longer side is
    at most that; alpha stays > 0 exactly where any source pixel under it was > 0.
    """
    if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.dtype != np.uint8:
        raise ValueError(f"rgba must be a uint8 array of shape (H, W, 4), got {rgba.shape}")
    alpha = rgba[..., 3]
    ys, xs = np.nonzero(alpha)
    if len(ys) == 0:
        raise ValueError("the frame is empty: no pixel has alpha > 0")
    out = rgba[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].copy()
    h, w = out.shape[:2]
    if max_side is not None and max(h, w) > max_side:
        f = max_side / max(h, w)
        size = (max(1, round(w * f)), max(1, round(h * f)))
        a = out[..., 3:].astype(np.float32) / 255.0
        pre = np.concatenate([out[..., :3].astype(np.float32) * a, a * 255.0], axis=2)
        small = cv2.resize(pre, size, interpolation=cv2.INTER_AREA)
        covered = (
            cv2.resize(
                (alpha[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] > 0).astype(np.float32),
                size,
                interpolation=cv2.INTER_AREA,
            )
            > 0
        )
        a2 = np.where(covered, np.maximum(small[..., 3], 1.0), 0.0)
        rgb = small[..., :3] / np.maximum(a2[..., None] / 255.0, 1e-6)
        out = np.concatenate([rgb, a2[..., None]], axis=2).round().clip(0, 255).astype(np.uint8)
        return crop_sprite(out)  # the area filter can leave empty borders
    out[alpha[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] == 0, :3] = 0
    return out


def write_sprite(path: Path, rgba: np.ndarray, color_bits: int = 8) -> None:
    """Write an RGBA sprite as PNG at maximum compression; alpha is always kept exact.

    ``color_bits`` < 8 drops the low bits of the colour (6 bits: ~25% smaller files, banding
    invisible once composited with noise and blur); the shipped pool uses 6.
    """
    if not 1 <= color_bits <= 8:
        raise ValueError(f"color_bits must be in 1..8, got {color_bits}")
    bgra = cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA)
    if color_bits < 8:
        drop = 8 - color_bits
        bgra[..., :3] = (bgra[..., :3] >> drop) << drop
    if not cv2.imwrite(str(path), bgra, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise InputError(f"Could not write {path}.", "Check the folder is writable.")


def read_rgba(path: Path) -> np.ndarray:
    """Read a PNG with alpha as ``[H, W, 4]`` RGBA uint8."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None or img.ndim != 3 or img.shape[2] != 4:
        raise InputError(f"{path} is not an RGBA PNG.", "Re-render it or remove it.")
    return cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)


def write_index(sprite_dir: Path) -> pd.DataFrame:
    """Scan ``sprite_dir`` for ``scDDDD_vVV.png`` and write ``index.csv`` (sorted)."""
    rows = []
    for p in sorted(sprite_dir.glob("sc*_v*.png")):
        m = _NAME.match(p.name)
        if not m:
            continue
        h, w = read_rgba(p).shape[:2]
        d = int(m.group(1))
        rows.append(
            (p.name, d, int(m.group(2)), is_held_out(d), design.family_of(d), split_of(d), w, h)
        )
    df = pd.DataFrame(rows, columns=list(INDEX_COLUMNS))
    df.to_csv(sprite_dir / INDEX_NAME, index=False)
    return df


# ----------------------------------------------------------------------------- rendering


def run_worker(
    python: Path, tasks: list[dict[str, object]], task_file: Path, log_file: Path
) -> subprocess.Popen[bytes]:
    """Start one Blender worker process on ``tasks`` (see blender_worker.py)."""
    task_file.write_text(json.dumps(tasks))
    log = log_file.open("ab")
    env = dict(os.environ)
    # Cycles and OIDN would start one thread per core in every worker; the scene sets the count.
    env["OMP_NUM_THREADS"] = str(tasks[0]["threads"]) if tasks else "1"
    return subprocess.Popen(
        [str(python), str(WORKER), str(task_file)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
    )


def _group(tasks: Sequence[SpriteTask], workers: int) -> list[list[SpriteTask]]:
    """Split tasks into ``workers`` groups, whole designs per group, balanced by count."""
    by_design: dict[int, list[SpriteTask]] = {}
    for t in sorted(tasks):
        by_design.setdefault(t.design_id, []).append(t)
    groups: list[list[SpriteTask]] = [[] for _ in range(max(1, workers))]
    for design_tasks in by_design.values():
        min(groups, key=len).extend(design_tasks)
    return [g for g in groups if g]


def render_sprites(
    tasks: Sequence[SpriteTask],
    out_dir: Path,
    *,
    venv: Path | None = None,
    workers: int = 1,
    threads: int = 2,
    resolution: int = 448,
    samples: int = 16,
    max_side: int | None = None,
    color_bits: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> RenderReport:
    """Render ``tasks`` into ``out_dir`` (sprites + ``index.csv``); skip finished ones.

    ``progress(done, total)`` is called as sprites land. Raises SetupError when the venv is
    missing or a worker fails (with the tail of its log).
    """
    python = blender_python(venv)
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / ".work"
    work.mkdir(exist_ok=True)
    todo = [t for t in tasks if not (out_dir / t.name).exists()]
    skipped = len(tasks) - len(todo)
    t0 = time.perf_counter()
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    pending = {(work / t.name).with_suffix(".raw.png"): t for t in todo}
    # Distributed engines plug in here: each group is independent (see the module docstring).
    for i, group in enumerate(_group(todo, workers)):
        payload = [
            {
                "design_id": t.design_id,
                "view_id": t.view_id,
                "out": str((work / t.name).with_suffix(".raw.png").resolve()),
                "resolution": resolution,
                "samples": samples,
                "threads": threads,
            }
            for t in group
        ]
        log = work / f"worker{i}.log"
        log.write_bytes(b"")
        procs.append((run_worker(python, payload, work / f"tasks{i}.json", log), log))
    done = 0
    if progress:
        progress(done, len(todo))
    try:
        while pending:
            landed = [raw for raw in pending if raw.exists()]
            for raw in landed:
                task = pending.pop(raw)
                write_sprite(out_dir / task.name, crop_sprite(read_rgba(raw), max_side), color_bits)
                raw.unlink()
                done += 1
                if progress:
                    progress(done, len(todo))
            if not landed:
                failed = [(p, log) for p, log in procs if p.poll() not in (None, 0)]
                if failed:
                    p, log = failed[0]
                    tail = log.read_text(errors="replace").strip().splitlines()[-12:]
                    raise SetupError(
                        f"A Blender worker exited {p.returncode}: " + " | ".join(tail),
                        f"See {log}; check `posebowl synth setup` works, then rerun (finished "
                        "sprites are kept).",
                    )
                if all(p.poll() == 0 for p, _ in procs) and not any(r.exists() for r in pending):
                    raise SetupError(
                        f"The Blender workers ended without rendering {len(pending)} sprites.",
                        f"See the logs in {work}.",
                    )
                time.sleep(0.2)
    finally:
        for p, _ in procs:
            if p.poll() is None:
                p.terminate()
                p.wait()
    seconds = time.perf_counter() - t0
    per = []
    for _, log in procs:
        per += [
            float(x) for x in re.findall(r"POSEBOWL rendered \S+ in ([\d.]+)s", log.read_text())
        ]
    write_index(out_dir)
    shutil.rmtree(work, ignore_errors=True)
    return RenderReport(done, skipped, seconds, tuple(per))
