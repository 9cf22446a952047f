"""Labelled folders in the competition layout, and their conversion to the ultralytics layout.

A labelled folder (real training data or the synthetic generator's output) holds::

    images/<image_id>.png|.jpg   one spacecraft per image
    train_labels.csv             image_id,xmin,ymin,xmax,ymax (pixels, xyxy)
    train_metadata.csv           optional: image_id,spacecraft_id,background_id

:func:`build_yolo_dataset` turns one or more of them into what ultralytics trains on::

    images/{train,val}/<image_id>.<ext>   hard links (symlinks across file systems), no copies
    labels/{train,val}/<image_id>.txt     "0 cx cy w h", normalised to the image size
    data.yaml                             paths and the one class name
    heldout/                              the validation images again, in the competition layout

Validation images are a set of whole spacecraft designs (``spacecraft_id``) never seen in
training when metadata exists, else a random sample of images; or the folders given as ``val``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from posebowl import datafolder as layout
from posebowl import rules
from posebowl.errors import InputError

CLASS_NAME = "spacecraft"
MARKER = "data.yaml"


@dataclass(frozen=True)
class LabelledFolder:
    """A folder in the competition layout: labels (and metadata) in image order, image paths."""

    root: Path
    labels: pd.DataFrame  # columns rules.COLUMNS, image_id as str
    metadata: pd.DataFrame | None  # image_id, spacecraft_id, background_id (as read)
    images: dict[str, Path] = field(repr=False)

    def __len__(self) -> int:
        return len(self.labels)


def read_labelled_folder(root: str | Path) -> LabelledFolder:
    """Read a labelled folder; raise InputError naming what is missing or malformed."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"The data folder {root} does not exist.", "Check the path.")
    labels_path = layout.first_existing(root, layout.LABEL_NAMES)
    if labels_path is None:
        raise InputError(
            f"The data folder {root} has no {layout.TRAIN_LABELS}.",
            "Give a folder in the competition layout (images/ and train_labels.csv).",
        )
    labels = pd.read_csv(labels_path, dtype={rules.INDEX_COLUMN: str})
    problems = rules.label_violations(labels)
    if problems:
        raise InputError(
            f"The labels in {labels_path} are invalid: {problems[0].message}.",
            "Fix or drop those rows.",
        )
    metadata = None
    meta_path = layout.first_existing(root, layout.METADATA_NAMES)
    if meta_path is not None:
        metadata = pd.read_csv(meta_path, dtype={rules.INDEX_COLUMN: str})
        metadata = metadata.set_index(rules.INDEX_COLUMN).reindex(labels[rules.INDEX_COLUMN])
        metadata = metadata.reset_index()
    images_dir = root / layout.IMAGES_DIR
    if not images_dir.is_dir():
        raise InputError(f"The data folder {root} has no images/ folder.", "Put the images there.")
    found = layout.image_names(images_dir)
    ids = labels[rules.INDEX_COLUMN].tolist()
    missing = [i for i in ids if i not in found]
    if missing:
        shown = ", ".join(missing[:5])
        raise InputError(
            f"{len(missing)} labelled images are missing from {images_dir} (e.g. {shown}).",
            "Regenerate the folder or drop those rows from the labels.",
        )
    return LabelledFolder(root, labels, metadata, {i: found[i] for i in ids})


@dataclass(frozen=True)
class YoloDataset:
    """What :func:`build_yolo_dataset` wrote."""

    root: Path
    data_yaml: Path
    heldout: Path
    n_train: int
    n_val: int
    val_groups: tuple[str, ...]  # spacecraft ids held out ("" when split by image or given)
    linked: str  # "hardlink" or "symlink"


def heldout_split(
    folders: Sequence[LabelledFolder], fraction: float, seed: int = 0
) -> list[np.ndarray]:
    """Boolean masks (one per folder) of the images to hold out for validation.

    Whole spacecraft designs go to validation when every folder has a ``spacecraft_id``;
    designs are drawn at random until they hold ``fraction`` of the images (at least one
    design, and never all of them). Without metadata, images are drawn at random.
    """
    if not 0 < fraction < 1:
        raise InputError(
            f"The validation fraction must be between 0 and 1, got {fraction}.",
            "Pass e.g. --val-fraction 0.1, or give held-out folders with --val.",
        )
    rng = np.random.default_rng(seed)
    by_design = all(
        f.metadata is not None and "spacecraft_id" in f.metadata.columns for f in folders
    )
    if not by_design:
        return [rng.random(len(f)) < fraction for f in folders]
    groups = [
        np.array([f"{k}:{s}" for s in f.metadata["spacecraft_id"].astype(str)])  # type: ignore[index]
        for k, f in enumerate(folders)
    ]
    all_groups = np.concatenate(groups)
    names, counts = np.unique(all_groups, return_counts=True)
    if len(names) < 2:
        return [rng.random(len(f)) < fraction for f in folders]
    order = rng.permutation(len(names))
    target = fraction * len(all_groups)
    chosen: list[str] = []
    total = 0
    for i in order[:-1]:
        if total >= target:
            break
        chosen.append(names[i])
        total += counts[i]
    return [np.isin(g, chosen) for g in groups]


def _link(src: Path, dst: Path) -> str:
    try:
        os.link(src, dst)
        return "hardlink"
    except OSError:
        os.symlink(src.resolve(), dst)
        return "symlink"


def _yolo_line(box: np.ndarray, width: int, height: int) -> str:
    x0, y0, x1, y1 = np.clip(box, 0, [width, height, width, height])
    if x1 <= x0 or y1 <= y0:
        return ""  # box entirely outside the image: a background-only image
    cx, cy = (x0 + x1) / 2 / width, (y0 + y1) / 2 / height
    w, h = (x1 - x0) / width, (y1 - y0) / height
    return f"0 {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n"


def build_yolo_dataset(
    train: Sequence[str | Path],
    out: str | Path,
    val: Sequence[str | Path] = (),
    val_fraction: float = 0.1,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> YoloDataset:
    """Write the ultralytics layout for ``train`` folders (see the module docstring)."""
    if not train:
        raise InputError("No training data folder was given.", "Pass --data DIR (or --generate N).")
    out = Path(out).resolve()
    train_folders = [read_labelled_folder(p) for p in train]
    val_folders = [read_labelled_folder(p) for p in val]
    seen: set[str] = set()
    for f in [*train_folders, *val_folders]:
        ids = set(f.labels[rules.INDEX_COLUMN])
        clash = seen & ids
        if clash:
            raise InputError(
                f"Image id {sorted(clash)[0]} appears in more than one data folder.",
                "Give each image a unique id across the folders.",
            )
        seen |= ids
    plan: list[tuple[LabelledFolder, np.ndarray]] = []  # (folder, is_val mask)
    val_groups: tuple[str, ...] = ()
    if val_folders:
        plan += [(f, np.zeros(len(f), bool)) for f in train_folders]
        plan += [(f, np.ones(len(f), bool)) for f in val_folders]
    else:
        masks = heldout_split(train_folders, val_fraction, seed)
        plan += list(zip(train_folders, masks, strict=True))
        for f, m in plan:
            if f.metadata is not None and "spacecraft_id" in f.metadata.columns:
                val_groups += tuple(sorted(set(f.metadata["spacecraft_id"].astype(str)[m])))
    n_val = int(sum(m.sum() for _, m in plan))
    n_total = sum(len(f) for f, _ in plan)
    if n_val == 0 or n_val == n_total:
        raise InputError(
            f"The split left {n_val} of {n_total} images for validation.",
            "Use more images, another --val-fraction, or give --val folders.",
        )

    # replaces its own earlier output in ``out`` (and the label caches ultralytics wrote beside
    # it when posebowl trained on it); anything else there is refused, never deleted
    claim = layout.claim(out, force=True, what="a training set", also=_label_cache)
    with claim.saving():
        return _write_yolo(claim, plan, val_groups, n_total, n_val, progress)


def _label_cache(rel: str) -> bool:
    """The label caches ultralytics writes beside a split's labels folder while training on
    a set posebowl made (``labels/train.cache``, and its ``.cache.npy`` while saving)."""
    return rel in {
        f"labels/{split}.cache{tail}" for split in ("train", "val") for tail in ("", ".npy")
    }


def _write_yolo(
    claim: layout.Claim,
    plan: list[tuple[LabelledFolder, np.ndarray]],
    val_groups: tuple[str, ...],
    n_total: int,
    n_val: int,
    progress: Callable[[int, int], None] | None,
) -> YoloDataset:
    out = claim.folder
    for split in ("train", "val"):
        (out / "images" / split).mkdir(parents=True)
        (out / "labels" / split).mkdir(parents=True)
    heldout_images = out / "heldout" / "images"
    heldout_images.mkdir(parents=True)
    linked = "hardlink"
    held_labels: list[pd.DataFrame] = []
    held_meta: list[pd.DataFrame] = []
    done = 0
    for folder, is_val in plan:
        boxes = rules.box_array(folder.labels)
        for k, image_id in enumerate(folder.labels[rules.INDEX_COLUMN]):
            src = folder.images[image_id]
            split = "val" if is_val[k] else "train"
            with Image.open(src) as im:
                width, height = im.size
            kind = _link(src, out / "images" / split / src.name)
            linked = "symlink" if kind == "symlink" else linked
            line = _yolo_line(boxes[k], width, height)
            (out / "labels" / split / f"{image_id}.txt").write_text(line)
            claim.record(f"images/{split}/{src.name}", f"labels/{split}/{image_id}.txt")
            if is_val[k]:
                _link(src, heldout_images / src.name)
                claim.record(f"heldout/images/{src.name}")
            done += 1
            if progress is not None:
                progress(done, n_total)
        held_labels.append(folder.labels[is_val])
        if folder.metadata is not None:
            held_meta.append(folder.metadata[is_val])
    labels = pd.concat(held_labels, ignore_index=True)
    layout.write_csv(claim, f"heldout/{layout.TRAIN_LABELS}", labels)
    fmt = layout.zeroed_format(labels[rules.INDEX_COLUMN])
    layout.write_csv(claim, f"heldout/{layout.FORMAT_CSV}", fmt)
    if held_meta and len(held_meta) == len(held_labels):
        meta = pd.concat(held_meta, ignore_index=True)
        layout.write_csv(claim, f"heldout/{layout.TRAIN_METADATA}", meta)
    data = {
        "path": str(out),
        "train": "images/train",
        "val": "images/val",
        "names": {0: CLASS_NAME},
    }
    # JSON is valid YAML: no yaml dependency needed to write it.
    (out / MARKER).write_text(json.dumps(data, indent=2) + "\n")
    claim.record(MARKER)
    return YoloDataset(
        out, out / MARKER, out / "heldout", n_total - n_val, n_val, val_groups, linked
    )
