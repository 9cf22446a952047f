"""Whole synthetic data sets in the competition's layout, made on all cores.

Training layout (``generate``)::

    OUT/images/<32-hex id>.png   1280x1024 RGB (or .jpg with image_format="jpg")
    OUT/train_labels.csv         image_id,xmin,ymin,xmax,ymax (integers, xmax/ymax exclusive)
    OUT/train_metadata.csv       image_id,spacecraft_id,background_id
    OUT/submission_format.csv    image_id,xmin,ymin,xmax,ymax (zeros)

Test layout (``sample_test_set``): ``data/`` (images + submission_format.csv, what the sandbox
mounts) and ``data_labels/test_labels.csv`` + ``test_metadata.csv`` beside it, never mounted.

Image ``i`` of a run depends only on ``(seed, i)`` and the sprite folder, never on the number
of workers. Works on Python >= 3.11 with numpy 1.26 or 2.x; never imports bpy.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import pandas as pd

from posebowl.errors import InputError
from posebowl.format import BOX_COLUMNS, COLUMNS, INDEX_COLUMN
from posebowl.synth.backgrounds import RECIPES
from posebowl.synth.compose import N_BACKGROUNDS, SynthImage, make_image
from posebowl.synth.pool import SHIPPED_SPRITES, SpritePool

IMAGE_FORMATS = ("png", "jpg")
PNG_LEVEL = 1  # zlib level: 3-4x faster than 6 for ~5% larger files
JPEG_QUALITY = 95
META_COLUMNS = (INDEX_COLUMN, "spacecraft_id", "background_id")
CHUNK = 16  # images per task sent to a worker process


@dataclass(frozen=True)
class Job:
    """What a worker process needs to make and write images (picklable)."""

    sprite_dir: str
    split: str
    seed: int
    image_dir: str
    image_format: str
    n_backgrounds: int
    recipe: str | None = None  # background recipe; None: the split's own (see compose)


_POOL: SpritePool | None = None
_POOL_KEY: tuple[str, str] | None = None


def _pool(sprite_dir: str, split: str) -> SpritePool:
    """One sprite pool per process, loaded lazily (sprites load on first use)."""
    global _POOL, _POOL_KEY
    if _POOL is None or (sprite_dir, split) != _POOL_KEY:
        _POOL = SpritePool(Path(sprite_dir), split)
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


def make_chunk(job: Job, indices: list[int]) -> list[tuple[object, ...]]:
    """Make, encode and write images ``indices``; return their label/metadata rows."""
    pool = _pool(job.sprite_dir, job.split)
    rows = []
    for i in indices:
        img = make_image(pool, job.seed, i, n_backgrounds=job.n_backgrounds, recipe=job.recipe)
        name, data = encode(img, job.image_format)
        Path(job.image_dir, name).write_bytes(data)
        rows.append((img.image_id, *img.box, img.spacecraft_id, img.background_id))
    return rows


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


def _prepare(folder: Path, force: bool, what: str) -> None:
    images = folder / "images"
    if images.is_dir() and any(images.iterdir()):
        if not force:
            raise InputError(
                f"{images} already holds images.",
                f"Pass --force to replace the {what}, or choose another folder.",
            )
        shutil.rmtree(images)
    images.mkdir(parents=True, exist_ok=True)


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
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Write ``n`` images into ``image_dir``; return labels + metadata, one row per image.

    ``recipe`` (``train`` or ``val``) overrides the split's own background recipe.
    """
    w = _check(n, image_format, workers, recipe)
    SpritePool(sprite_dir, split)  # fail early, in this process, on a bad sprite folder
    job = Job(str(sprite_dir), split, seed, str(image_dir), image_format, n_backgrounds, recipe)
    chunks = [list(range(s, min(n, s + CHUNK))) for s in range(0, n, CHUNK)]
    rows: list[tuple[object, ...]] = []
    done = 0
    if progress:
        progress(0, n)
    pool = ProcessPoolExecutor(max_workers=w, initializer=_worker_init) if w > 1 else None
    if pool is None:
        _worker_init()  # one worker: compose in this process, no pickling
    with pool or contextlib.nullcontext():
        mapper = pool.map if pool else map
        for r in mapper(make_chunk, [job] * len(chunks), chunks):
            rows += r
            done += len(r)
            if progress:
                progress(done, n)
    return pd.DataFrame(rows, columns=[*COLUMNS, *META_COLUMNS[1:]])


def _format_frame(ids: pd.Series) -> pd.DataFrame:
    fmt = pd.DataFrame({INDEX_COLUMN: ids})
    for c in BOX_COLUMNS:
        fmt[c] = 0
    return fmt


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
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """A data set in the competition's layout in ``out_dir``; returns labels + metadata.

    ``split`` picks the designs (``train``, ``heldout``, ``family``, ``all``); the family split
    gets the validation background recipe unless ``recipe`` says otherwise.
    """
    _check(n, image_format, workers, recipe)
    _prepare(out_dir, force, "data set")
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
    )
    df[list(COLUMNS)].to_csv(out_dir / "train_labels.csv", index=False)
    df[list(META_COLUMNS)].to_csv(out_dir / "train_metadata.csv", index=False)
    _format_frame(df[INDEX_COLUMN]).to_csv(out_dir / "submission_format.csv", index=False)
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
    progress: Callable[[int, int], None] | None = None,
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
    _prepare(data_dir, force, "test set")
    df = make_rows(
        n,
        data_dir / "images",
        split=split,
        seed=seed,
        workers=workers,
        sprite_dir=sprite_dir,
        recipe=recipe,
        progress=progress,
    )
    _format_frame(df[INDEX_COLUMN]).to_csv(data_dir / "submission_format.csv", index=False)
    labels_dir.mkdir(parents=True, exist_ok=True)
    df[list(COLUMNS)].to_csv(labels_dir / "test_labels.csv", index=False)
    df[list(META_COLUMNS)].to_csv(labels_dir / "test_metadata.csv", index=False)
    return df
