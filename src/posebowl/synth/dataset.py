"""Whole synthetic data sets in the competition's layout, made on all cores.

Training layout (``generate``)::

    OUT/images/<32-hex id>.png   1280x1024 RGB (or .jpg with image_format="jpg")
    OUT/train_labels.csv         image_id,xmin,ymin,xmax,ymax (integers, xmax/ymax exclusive)
    OUT/train_metadata.csv       image_id,spacecraft_id,background_id
    OUT/submission_format.csv    image_id,xmin,ymin,xmax,ymax (zeros)

Test layout (``sample_test_set``): ``data/`` (images + submission_format.csv, what the sandbox
mounts) and ``data_labels/test_labels.csv`` + ``test_metadata.csv`` beside it, never mounted.

Image ``i`` of a run depends only on ``(seed, i)`` and the sprite folder, never on the number
of workers or on where it ran. Works on Python >= 3.11 with numpy 1.26 or 2.x; never imports bpy.

Mapping: the indices are cut into chunks of :data:`CHUNK`, each an idempotent task
(:func:`run_chunk`) handed to an executor (:mod:`posebowl.scale`: local processes, or Ray
tasks on a cluster whose nodes all see the output folder at the same path). A task writes its
images atomically (a temporary name in the work folder, then a rename) and then a record of
its rows, sizes and CRC-32s; rows come back in index order, so the CSVs never depend on which
task finished first. While a run is unfinished its folder holds ``.posebowl-synth/``
(``run.json``, the settings, and the chunk records): a rerun with the same settings verifies
each finished chunk (size and CRC-32 of its files) and makes only the rest.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pandas as pd

from posebowl import __version__, datafolder, scratch
from posebowl.errors import InputError, SetupError
from posebowl.rules import COLUMNS, INDEX_COLUMN
from posebowl.scale import LocalExecutor, Resources, Tally, raise_failures, records
from posebowl.scale.base import Failed, Finished, Retried
from posebowl.synth.backgrounds import RECIPES
from posebowl.synth.compose import N_BACKGROUNDS, SynthImage, make_image
from posebowl.synth.pool import INDEX_NAME, SHIPPED_SPRITES, SpritePool

if TYPE_CHECKING:
    from posebowl.scale import Executor, Progress

IMAGE_FORMATS = ("png", "jpg")
PNG_LEVEL = 1  # zlib level: 3-4x faster than 6 for ~5% larger files
JPEG_QUALITY = 95
META_COLUMNS = datafolder.META_COLUMNS
CHUNK = 16  # images per task (a resumable unit); part of a run's settings
WORK_NAME = ".posebowl-synth"  # an unfinished run's settings and chunk records
IMAGE_TASK_CPUS = 1.0  # one OpenCV thread per task
IMAGE_TASK_MEMORY = 512 * 2**20  # declared per task; a worker measured ~180 MiB RSS (shipped pool)


@dataclass(frozen=True)
class Job:
    """What a worker process needs to make and write images (picklable)."""

    sprite_dir: str
    split: str
    seed: int
    image_dir: str
    image_format: str
    n_backgrounds: int
    work_dir: str  # temporary names and chunk records: on the same file system as image_dir
    recipe: str | None = None  # background recipe; None: the split's own (see compose)


@dataclass(frozen=True)
class ChunkResult:
    """What a chunk task returns: its rows, whether they were already on disk, its software."""

    rows: list[tuple[object, ...]]
    resumed: bool
    software: tuple[tuple[str, str], ...]


_POOL: SpritePool | None = None
_POOL_KEY: tuple[str, str] | None = None


SHIPPED = "shipped"  # Job.sprite_dir for the shipped pool: each worker uses its own copy


def _sprite_path(sprite_dir: str) -> Path:
    return SHIPPED_SPRITES if sprite_dir == SHIPPED else Path(sprite_dir)


def _pool(sprite_dir: str, split: str) -> SpritePool:
    """One sprite pool per process, loaded lazily (sprites load on first use)."""
    global _POOL, _POOL_KEY
    if _POOL is None or (sprite_dir, split) != _POOL_KEY:
        _POOL = SpritePool(_sprite_path(sprite_dir), split)
        _POOL_KEY = (sprite_dir, split)
    return _POOL


def _worker_init() -> None:
    cv2.setNumThreads(1)  # one process per core; OpenCV threads would oversubscribe


def encode(image: SynthImage, image_format: str) -> tuple[str, bytes]:
    """``(file name, bytes)`` of an image: PNG (zlib level 1) or JPEG (quality 95)."""
    bgr = cv2.cvtColor(image.image, cv2.COLOR_RGB2BGR)
    if image_format == "png":
        ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, PNG_LEVEL])
    else:
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:  # pragma: no cover - OpenCV fails only on impossible arrays
        raise RuntimeError(f"could not encode {image.image_id}")
    return f"{image.image_id}.{image_format}", buf.tobytes()


def software(sprite_dir: str) -> tuple[tuple[str, str], ...]:
    """What decides the bytes of an image besides its seed: posebowl (its synth code), numpy,
    OpenCV and the sprite folder as this process sees it."""
    return (*_software(), ("sprites", _sprites_key_cached(_sprite_path(sprite_dir))))


@functools.cache
def _sprites_key_cached(sprite_dir: Path) -> str:
    return _sprites_key(sprite_dir)


@functools.cache
def _software() -> tuple[tuple[str, str], ...]:
    code = hashlib.sha256()
    for p in sorted(Path(__file__).parent.glob("*.py")):
        code.update(p.read_bytes())
    return (
        ("posebowl", f"{__version__}+{code.hexdigest()[:12]}"),
        ("numpy", np.__version__),
        ("opencv", cv2.__version__),
    )


def make_chunk(job: Job, indices: list[int]) -> tuple[list[tuple[object, ...]], list[list[object]]]:
    """Make, encode and write images ``indices``; return their rows and ``[name, size, crc32]``."""
    pool = _pool(job.sprite_dir, job.split)
    rows, files = [], []
    tmp = Path(job.work_dir, "tmp")
    for i in indices:
        img = make_image(pool, job.seed, i, n_backgrounds=job.n_backgrounds, recipe=job.recipe)
        name, data = encode(img, job.image_format)
        records.write_atomic(Path(job.image_dir, name), data, tmp)
        files.append(records.entry(name, data))
        rows.append(
            (img.image_id, *(int(v) for v in img.box), int(img.spacecraft_id), img.background_id)
        )
    return rows, files


def _record(job: Job, indices: list[int]) -> Path:
    return Path(job.work_dir, "chunks", f"{indices[0]:08d}+{len(indices)}.json")


def _finished(job: Job, indices: list[int]) -> ChunkResult | None:
    """A finished chunk whose files are all intact (with the software that made them)."""
    rec = records.load_intact(_record(job, indices), Path(job.image_dir))
    if rec is None or rec.get("indices") != indices or "software" not in rec:
        return None
    made_with = tuple((str(k), str(v)) for k, v in rec["software"])
    return ChunkResult([tuple(r) for r in rec["rows"]], True, made_with)


def run_chunk(job: Job, indices: list[int]) -> ChunkResult:
    """The idempotent task: the chunk's rows, from its record when its files are intact,
    else made and written again (images first, then the record, each atomically). It reports
    the software that made the images, so a node (or an earlier run) with other versions
    cannot slip other bytes in."""
    _worker_init()
    done = _finished(job, indices)
    if done is not None:
        return done
    rows, files = make_chunk(job, indices)
    here = software(job.sprite_dir)
    tmp = Path(job.work_dir, "tmp")
    records.save(_record(job, indices), files, tmp, indices=indices, rows=rows, software=here)
    return ChunkResult(rows, False, here)


def _check(n: int, image_format: str, workers: int | None, recipe: str | None = None) -> int:
    if recipe is not None and recipe not in RECIPES:
        raise InputError(
            f"Unknown background recipe {recipe!r}.", f"Use one of {', '.join(RECIPES)}."
        )
    if n < 1:
        raise InputError(f"--n must be at least 1, got {n}.", "Ask for 1 or more images.")
    if image_format not in IMAGE_FORMATS:
        raise InputError(
            f"Unknown image format {image_format!r}.", f"Use one of {', '.join(IMAGE_FORMATS)}."
        )
    w = workers if workers is not None else (os.cpu_count() or 1)
    if w < 1:
        raise InputError(f"--workers must be at least 1, got {w}.", "Use 1 or more.")
    return w


def _sprites_key(sprite_dir: Path) -> str:
    """A cheap fingerprint of a sprite folder: its index and the size of every file in it."""
    h = hashlib.sha256((sprite_dir / INDEX_NAME).read_bytes())
    for p in sorted(sprite_dir.glob("*.png")):
        h.update(f"{p.name}:{p.stat().st_size};".encode())
    return h.hexdigest()[:16]


def _settings(
    n: int,
    split: str,
    seed: int,
    image_format: str,
    sprite_dir: Path,
    n_backgrounds: int,
    recipe: str | None,
) -> dict[str, object]:
    """What decides a run's output; a rerun resumes only when these are equal."""
    return {
        "n": n,
        "split": split,
        "seed": seed,
        "image_format": image_format,
        "n_backgrounds": n_backgrounds,
        "recipe": recipe,
        "chunk": CHUNK,
        "sprites": _sprites_key(sprite_dir),
    }


def _ours_in(folder: Path) -> datafolder.Owned:
    """What of ``folder`` an unfinished run made: its work folder, and the images its chunk
    records list (the manifest is written only when a run ends)."""
    names: set[str] = set()
    for record in (folder / WORK_NAME / "chunks").glob("*.json"):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            names |= {f"images/{f[0]}" for f in json.loads(record.read_text())["files"]}
    return lambda rel: rel.startswith(f"{WORK_NAME}/") or rel in names


def _resumable(folder: Path, force: bool, what: str, settings: dict[str, object]) -> bool:
    """True when ``folder`` holds an unfinished run with these settings (and not ``force``);
    InputError when it holds one with other settings."""
    run_file = folder / WORK_NAME / "run.json"
    if force or not run_file.is_file():
        return False
    try:
        earlier = json.loads(run_file.read_text())
    except ValueError:
        earlier = {}
    if earlier == settings:
        return True
    diff = ", ".join(
        f"{k} {earlier.get(k)!r} then, {v!r} now"
        for k, v in settings.items()
        if earlier.get(k) != v
    )
    raise InputError(
        f"{folder} holds an unfinished run with other settings ({diff}).",
        f"Rerun with the same settings to finish it, or pass --force to replace the {what}.",
    )


def _prepare(
    folder: Path,
    force: bool,
    what: str,
    settings: dict[str, object],
    labels_dir: Path | None = None,
) -> tuple[Path, datafolder.Claim, datafolder.Claim | None]:
    """Make ``folder`` (and ``labels_dir``) ready, losing nothing posebowl did not make.

    Returns the run's work folder (an unfinished run's is kept when its settings equal
    ``settings``, so the rerun resumes it) and the claims to record the written files in.
    """
    work = folder / WORK_NAME
    resume = _resumable(folder, force, what, settings)
    wanted: list[tuple[Path, str, datafolder.Owned | None]] = [(folder, what, _ours_in(folder))]
    if labels_dir is not None:
        wanted.append((labels_dir, "test labels", None))
    if resume:  # the data folder is kept; earlier labels no longer match it
        data_claim = datafolder.Claim(folder)
        labels = datafolder.claim_all(wanted[1:], force=True) if labels_dir else []
        (work / "tmp").mkdir(exist_ok=True)
        return work, data_claim, labels[0] if labels else None
    claims = datafolder.claim_all(wanted, force=force)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (work / "chunks").mkdir(parents=True)
    (work / "tmp").mkdir()
    records.write_atomic(work / "run.json", json.dumps(settings, indent=1).encode(), work / "tmp")
    return work, claims[0], claims[1] if labels_dir is not None else None


def _finish(claim: datafolder.Claim, df: pd.DataFrame, image_format: str, work: Path) -> None:
    """Record the images written, write the manifest, remove the run's work folder."""
    claim.record(*(f"images/{i}.{image_format}" for i in df[INDEX_COLUMN]))
    claim.save()
    scratch.remove_tree(work)


def make_rows(
    n: int,
    image_dir: Path,
    *,
    split: str = "train",
    seed: int = 0,
    workers: int | None = None,
    image_format: str = "png",
    sprite_dir: Path = SHIPPED_SPRITES,
    n_backgrounds: int = N_BACKGROUNDS,
    recipe: str | None = None,
    progress: Progress | None = None,
    executor: Executor | None = None,
    work_dir: Path | None = None,
) -> pd.DataFrame:
    """Write ``n`` images into ``image_dir``; return labels + metadata, one row per image.

    ``recipe`` (``train`` or ``val``) overrides the split's own background recipe. Tasks run
    on ``executor`` (default: ``workers`` local processes). ``work_dir`` holds the
    chunk records (default: a fresh one beside ``image_dir``, removed at the end); finished
    chunks recorded there are verified and kept. ``progress(tally)`` follows the images.
    """
    w = _check(n, image_format, workers, recipe)
    SpritePool(sprite_dir, split)  # fail early, in this process, on a bad sprite folder
    own_work = work_dir is None
    work = (work_dir or image_dir.parent / f"{WORK_NAME}-{uuid.uuid4().hex[:8]}").resolve()
    for sub in ("chunks", "tmp"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    sprites = Path(sprite_dir).resolve()
    job = Job(
        SHIPPED if sprites == SHIPPED_SPRITES.resolve() else str(sprites),
        split,
        seed,
        str(Path(image_dir).resolve()),
        image_format,
        n_backgrounds,
        str(work),
        recipe,
    )
    here = software(job.sprite_dir)  # before any task: what the workers must match
    chunks = [list(range(s, min(n, s + CHUNK))) for s in range(0, n, CHUNK)]
    results: dict[int, ChunkResult] = {}
    failures: list[Failed] = []
    tally = Tally(total=n)
    if progress:
        progress(tally)
    ex = executor or LocalExecutor(w)
    events = ex.map(
        functools.partial(run_chunk, job),
        chunks,
        resources=Resources(IMAGE_TASK_CPUS, IMAGE_TASK_MEMORY),
        retry_on=(OSError,),  # a flaky shared file system; our own errors are not retried
    )
    with contextlib.closing(events):  # an early stop (Ctrl-C) cancels what is still queued
        _follow(events, chunks, results, failures, tally, progress)
    raise_failures(failures, len(chunks), "image")
    _check_software(results.values(), here)
    rows = [r for i in range(len(chunks)) for r in results[i].rows]
    if own_work:
        scratch.remove_tree(work)
    return pd.DataFrame(rows, columns=[*COLUMNS, *META_COLUMNS[1:]])


def _follow(
    events: Iterable[object],
    chunks: list[list[int]],
    results: dict[int, ChunkResult],
    failures: list[Failed],
    tally: Tally,
    progress: Progress | None,
) -> None:
    """Collect the chunk events into ``results``/``failures``, reporting the images."""
    for ev in events:
        if isinstance(ev, Finished):
            res: ChunkResult = ev.result
            results[ev.index] = res
            k = len(chunks[ev.index])
            tally = tally.add(done=k, skipped=k if res.resumed else 0)
        elif isinstance(ev, Retried):
            tally = tally.add(retries=ev.count)
        elif isinstance(ev, Failed):
            failures.append(ev)
            tally = tally.add(failed=len(chunks[ev.index]))
        if progress:
            progress(tally)


def _check_software(results: Iterable[ChunkResult], here: tuple[tuple[str, str], ...]) -> None:
    """SetupError when a worker (or the run being resumed) made images with other software
    or sprites than this machine has."""
    for res in results:
        if res.software != here:
            theirs = ", ".join(f"{k} {v}" for k, v in res.software)
            ours = ", ".join(f"{k} {v}" for k, v in here)
            raise SetupError(
                f"Some images were made with {theirs}, but this machine has {ours}: the bytes "
                "would differ from a local run.",
                "Install the same posebowl, numpy and OpenCV (and sprites) on every node, then "
                "rerun with --force.",
            )


def generate(
    out_dir: Path,
    n: int,
    *,
    split: str = "train",
    seed: int = 0,
    workers: int | None = None,
    image_format: str = "png",
    sprite_dir: Path = SHIPPED_SPRITES,
    n_backgrounds: int = N_BACKGROUNDS,
    recipe: str | None = None,
    force: bool = False,
    progress: Progress | None = None,
    executor: Executor | None = None,
) -> pd.DataFrame:
    """A data set in the competition's layout in ``out_dir``; returns labels + metadata.

    ``split`` picks the designs (``train``, ``heldout``, ``family``, ``all``); the family split
    gets the validation background recipe unless ``recipe`` says otherwise. An unfinished run
    in ``out_dir`` with the same settings is resumed (see the module docstring); ``force``
    starts over.
    """
    _check(n, image_format, workers, recipe)
    SpritePool(sprite_dir, split)
    settings = _settings(n, split, seed, image_format, sprite_dir, n_backgrounds, recipe)
    work, claim, _ = _prepare(out_dir, force, "a data set", settings)
    df = make_rows(
        n,
        out_dir / "images",
        split=split,
        seed=seed,
        workers=workers,
        image_format=image_format,
        sprite_dir=sprite_dir,
        n_backgrounds=n_backgrounds,
        recipe=recipe,
        progress=progress,
        executor=executor,
        work_dir=work,
    )
    datafolder.write_labels(claim, df, kind="train")
    datafolder.write_format(claim, df[INDEX_COLUMN])
    _finish(claim, df, image_format, work)
    return df


def sample_test_set(
    data_dir: Path = Path("data"),
    labels_dir: Path = Path("data_labels"),
    n: int = 24,
    *,
    split: str = "heldout",
    seed: int = 2024,
    workers: int | None = 1,
    sprite_dir: Path = SHIPPED_SPRITES,
    recipe: str | None = None,
    force: bool = False,
    progress: Progress | None = None,
    executor: Executor | None = None,
) -> pd.DataFrame:
    """A local test set: PNGs + submission_format.csv in ``data_dir``, labels in ``labels_dir``.

    The default (24 images of held-out designs) is the embedded data ``make demo`` runs on.
    """
    _check(n, "png", workers, recipe)
    if labels_dir.resolve() == data_dir.resolve() or labels_dir.resolve().is_relative_to(
        data_dir.resolve()
    ):
        raise InputError(
            f"The labels folder {labels_dir} is inside the data folder {data_dir}.",
            "Keep labels outside what the sandbox mounts, e.g. data/ and data_labels/.",
        )
    SpritePool(sprite_dir, split)
    settings = _settings(n, split, seed, "png", sprite_dir, N_BACKGROUNDS, recipe)
    work, claim, labels_claim = _prepare(data_dir, force, "a test set", settings, labels_dir)
    assert labels_claim is not None
    df = make_rows(
        n,
        data_dir / "images",
        split=split,
        seed=seed,
        workers=workers,
        sprite_dir=sprite_dir,
        recipe=recipe,
        progress=progress,
        executor=executor,
        work_dir=work,
    )
    datafolder.write_format(claim, df[INDEX_COLUMN])
    with labels_claim.saving():
        datafolder.write_labels(labels_claim, df, kind="test")
    _finish(claim, df, "png", work)
    return df
