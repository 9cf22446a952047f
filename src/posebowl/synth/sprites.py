"""Render spacecraft sprites with Blender: the venv, the task list, the workers, the crops.

A sprite is one RGBA PNG of one spacecraft design (``spacecraft_id``) seen in one view,
cropped to the pixels with alpha > 0, alpha kept exact. Work is split into independent seeded
:class:`SpriteTask` units ``(design_id, view_id)``: any machine renders the same pixels for the
same task, tasks never share state, and a finished task is a file, so runs resume.

Locally :func:`render_sprites` fans tasks out to ``workers`` long-lived Blender processes (one
per group of designs, so a design's scene is built once for all its views). With a Ray
executor (:mod:`posebowl.scale`) each design's views are one Ray task (:func:`render_group`)
declaring ``threads`` CPUs and :data:`BLENDER_TASK_MEMORY`: it runs the Blender venv's python
on the worker, renders into a temporary folder of that node, crops, and writes the sprites into
the shared ``out_dir`` atomically (a temporary name, then a rename). Either way a sprite file
is whole or absent, and a rerun skips the sprites that are present and intact (a PNG from
signature to IEND); :func:`crop_sprite` and :func:`write_index` are shared.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pandas as pd

from posebowl.errors import InputError, SetupError
from posebowl.scale import Resources, Tally, raise_failures
from posebowl.scale.base import Failed, Finished, Retried
from posebowl.synth import design

if TYPE_CHECKING:
    from posebowl.scale import Executor, Progress

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
BLENDER_TASK_MEMORY = 2**30  # declared per Ray task; one Blender at 448 px peaked at 680 MB RSS
_PNG_HEAD = b"\x89PNG\r\n\x1a\n"
_PNG_TAIL = b"\x00\x00\x00\x00IEND\xaeB`\x82"


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
    check: list[str | Path] = [
        py,
        "-c",
        "import bpy, numpy; print(bpy.app.version_string, numpy.__version__)",
    ]
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
    _run([exe, "-m", "venv", str(root)], "Creating the Blender venv")
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


# Run by the Blender venv's python before it execs the worker: PR_SET_PDEATHSIG (1) makes the
# kernel SIGKILL Blender when its parent dies. Done after exec, not in a preexec_fn, which is
# unsafe in a threaded parent such as a Ray worker.
_DIE_WITH_PARENT = (
    "import ctypes, os, signal, sys; "
    "ctypes.CDLL(None).prctl(1, signal.SIGKILL); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


def run_worker(
    python: Path,
    tasks: list[dict[str, object]],
    task_file: Path,
    log_file: Path,
    *,
    die_with_parent: bool = False,
) -> subprocess.Popen[bytes]:
    """Start one Blender worker process on ``tasks`` (see blender_worker.py).

    ``die_with_parent`` (Linux) kills Blender when its parent dies, e.g. a Ray worker killed
    mid-task, so no orphan keeps rendering.
    """
    task_file.write_text(json.dumps(tasks))
    log = log_file.open("ab")
    env = dict(os.environ)
    # Cycles and OIDN would start one thread per core in every worker; the scene sets the count.
    env["OMP_NUM_THREADS"] = str(tasks[0]["threads"]) if tasks else "1"
    cmd = [str(python), str(WORKER), str(task_file)]
    if die_with_parent:
        cmd = [str(python), "-c", _DIE_WITH_PARENT, *cmd]
    return subprocess.Popen(
        cmd,
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


def intact(path: Path) -> bool:
    """True when ``path`` is a whole PNG (signature and IEND trailer): cheap, no decode."""
    try:
        with path.open("rb") as f:
            head = f.read(8)
            f.seek(-12, os.SEEK_END)
            return head == _PNG_HEAD and f.read(12) == _PNG_TAIL
    except OSError:
        return False


def save_sprite(raw: Path, out: Path, tmp_dir: Path, max_side: int | None, color_bits: int) -> None:
    """Crop the raw Blender frame ``raw`` and write it to ``out`` atomically."""
    tmp = tmp_dir / f"{out.stem}.{uuid.uuid4().hex[:8]}.png"
    write_sprite(tmp, crop_sprite(read_rgba(raw), max_side), color_bits)
    os.replace(tmp, out)


def _payload(
    tasks: Sequence[SpriteTask], raw_dir: Path, resolution: int, samples: int, threads: int
) -> list[dict[str, object]]:
    return [
        {
            "design_id": t.design_id,
            "view_id": t.view_id,
            "out": str((raw_dir / t.name).with_suffix(".raw.png").resolve()),
            "resolution": resolution,
            "samples": samples,
            "threads": threads,
        }
        for t in tasks
    ]


def _render_times(log_text: str) -> list[float]:
    return [float(x) for x in re.findall(r"POSEBOWL rendered \S+ in ([\d.]+)s", log_text)]


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
    progress: Progress | None = None,
    executor: Executor | None = None,
) -> RenderReport:
    """Render ``tasks`` into ``out_dir`` (sprites + ``index.csv``); skip finished ones.

    ``progress(tally)`` is called as sprites land. Raises SetupError when the venv is
    missing or a worker fails (with the tail of its log). With a non-local ``executor`` the
    designs run as its tasks (``workers`` is then the cluster's business).
    """
    local = executor is None or executor.name == "local"
    python = blender_python(venv) if local else None
    out_dir.mkdir(parents=True, exist_ok=True)
    todo = [t for t in tasks if not intact(out_dir / t.name)]
    skipped = len(tasks) - len(todo)
    tally = Tally(total=len(tasks), done=skipped, skipped=skipped)
    if executor is not None and not local:
        return _render_on(
            executor,
            todo,
            out_dir,
            venv=venv,
            threads=threads,
            resolution=resolution,
            samples=samples,
            max_side=max_side,
            color_bits=color_bits,
            progress=progress,
            tally=tally,
        )
    assert python is not None
    work = out_dir / ".work"
    work.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    pending = {(work / t.name).with_suffix(".raw.png"): t for t in todo}
    for i, group in enumerate(_group(todo, workers)):
        payload = _payload(group, work, resolution, samples, threads)
        log = work / f"worker{i}.log"
        log.write_bytes(b"")
        procs.append((run_worker(python, payload, work / f"tasks{i}.json", log), log))
    done = 0
    if progress:
        progress(tally)
    try:
        while pending:
            landed = [raw for raw in pending if raw.exists()]
            for raw in landed:
                task = pending.pop(raw)
                save_sprite(raw, out_dir / task.name, work, max_side, color_bits)
                raw.unlink()
                done += 1
                tally = tally.add(done=1)
                if progress:
                    progress(tally)
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
        per += _render_times(log.read_text())
    write_index(out_dir)
    shutil.rmtree(work, ignore_errors=True)
    return RenderReport(done, skipped, seconds, tuple(per))


# ----------------------------------------------------------------------------- on a cluster


class BlenderLost(RuntimeError):
    """Blender died of a signal (killed, out of memory): worth another attempt elsewhere."""


@dataclass(frozen=True)
class GroupJob:
    """One Ray task: the views of one design, and where the sprites go (picklable)."""

    tasks: tuple[SpriteTask, ...]
    out_dir: str  # the shared output folder, the same path on every node
    venv: str | None  # --venv, used as given on every node
    driver_venv: str  # the driver's venv path: the fallback when a node sets no env var
    threads: int
    resolution: int
    samples: int
    max_side: int | None
    color_bits: int


def worker_venv(job: GroupJob) -> Path:
    """The Blender venv on this worker: --venv if given, else this node's
    $POSEBOWL_BLENDER_VENV (set where `ray start` ran), else the driver's venv path."""
    if job.venv:
        return Path(job.venv)
    return Path(os.environ.get(VENV_ENV_VAR) or job.driver_venv)


def render_group(job: GroupJob) -> list[float]:
    """Render one design's views on this node; return Blender's seconds per sprite."""
    host = socket.gethostname()
    try:
        python = blender_python(worker_venv(job))
    except SetupError as exc:
        raise SetupError(f"On node {host}: {exc.message}", exc.fix) from None
    out_dir = Path(job.out_dir)
    tmp_dir = out_dir / ".work"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="posebowl-sprites-") as tmp:
        raw_dir = Path(tmp)
        payload = _payload(job.tasks, raw_dir, job.resolution, job.samples, job.threads)
        log = raw_dir / "worker.log"
        proc = run_worker(python, payload, raw_dir / "tasks.json", log, die_with_parent=True)
        try:
            rc = proc.wait()
        finally:
            if proc.poll() is None:  # this task was cancelled or interrupted
                proc.kill()
                proc.wait()
        text = log.read_text(errors="replace")
        tail = " | ".join(text.strip().splitlines()[-12:])
        if rc < 0:
            raise BlenderLost(f"Blender was killed by signal {-rc} on node {host}: {tail}")
        if rc != 0:
            raise SetupError(
                f"A Blender worker exited {rc} on node {host}: {tail}",
                "Check `posebowl synth setup` works on that node, then rerun (finished sprites "
                "are kept).",
            )
        for t in job.tasks:
            raw = (raw_dir / t.name).with_suffix(".raw.png")
            if not raw.exists():
                raise SetupError(
                    f"Blender ended without rendering {t.name} on node {host}: {tail}",
                    "Rerun; if it persists, render that design locally to see why.",
                )
            save_sprite(raw, out_dir / t.name, tmp_dir, job.max_side, job.color_bits)
        return _render_times(text)


def _render_on(
    executor: Executor,
    todo: Sequence[SpriteTask],
    out_dir: Path,
    *,
    venv: Path | None,
    threads: int,
    resolution: int,
    samples: int,
    max_side: int | None,
    color_bits: int,
    progress: Progress | None,
    tally: Tally,
) -> RenderReport:
    """:func:`render_sprites` on a cluster executor: one task per design."""
    out = out_dir.resolve()
    by_design: dict[int, list[SpriteTask]] = {}
    for t in sorted(todo):
        by_design.setdefault(t.design_id, []).append(t)
    jobs = [
        GroupJob(
            tuple(group),
            str(out),
            str(venv.resolve()) if venv is not None else None,
            str(venv_path(None).resolve()),
            threads,
            resolution,
            samples,
            max_side,
            color_bits,
        )
        for group in by_design.values()
    ]
    t0 = time.perf_counter()
    if progress:
        progress(tally)
    per: list[float] = []
    failures: list[Failed] = []
    events = executor.map(
        render_group,
        jobs,
        resources=Resources(num_cpus=threads, memory=BLENDER_TASK_MEMORY),
        retry_on=(BlenderLost, OSError),  # a killed Blender, a flaky shared file system
    )
    with contextlib.closing(events):  # an early stop (Ctrl-C) cancels what is still queued
        for ev in events:
            if isinstance(ev, Finished):
                per += ev.result
                tally = tally.add(done=len(jobs[ev.index].tasks))
            elif isinstance(ev, Retried):
                tally = tally.add(retries=ev.count)
            elif isinstance(ev, Failed):
                failures.append(ev)
                tally = tally.add(failed=len(jobs[ev.index].tasks))
            if progress:
                progress(tally)
    seconds = time.perf_counter() - t0
    raise_failures(failures, len(jobs), "sprite")
    write_index(out_dir)
    shutil.rmtree(out_dir / ".work", ignore_errors=True)
    return RenderReport(len(todo), tally.skipped, seconds, tuple(per))
