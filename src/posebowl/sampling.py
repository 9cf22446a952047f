"""Local test sets sampled from downloaded data: the official notebook's "sample N images".

:func:`split_dev` takes a development folder in the competition's layout (``images/``,
``train_labels.csv`` and, when present, ``train_metadata.csv``), samples ``n`` images
(stratified by ``spacecraft_id`` x ``background_id`` when the metadata exists) and lays them out
as the runtime sees them: ``data/images`` + ``data/submission_format.csv``, with the labels kept
outside in ``data_labels/test_labels.csv`` (and ``test_metadata.csv``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from posebowl import datafolder as layout
from posebowl.errors import InputError
from posebowl.rules import COLUMNS, INDEX_COLUMN

STRATA = layout.METADATA_COLUMNS


def stratified_sample(
    df: pd.DataFrame, n: int, by: list[str], rng: np.random.Generator
) -> pd.DataFrame:
    """``n`` rows of ``df``, each group of ``by`` represented in proportion (largest remainder)."""
    groups = list(df.groupby(by, sort=True).indices.values())
    sizes = np.array([len(g) for g in groups], np.float64)
    quota = sizes * n / sizes.sum()
    take = np.floor(quota).astype(int)
    # Hand out the remaining rows to the largest remainders (ties broken at random).
    left = n - int(take.sum())
    order = np.lexsort((rng.random(len(groups)), -(quota - take)))
    for k in order:
        if left == 0:
            break
        if take[k] < sizes[k]:
            take[k] += 1
            left -= 1
    picked = np.concatenate(
        [rng.choice(g, size=t, replace=False) for g, t in zip(groups, take, strict=True) if t]
    )
    return df.iloc[np.sort(picked)]


def split_dev(
    data_dev: Path,
    n: int,
    *,
    out_dir: Path = Path("data"),
    labels_dir: Path = Path("data_labels"),
    seed: int = 0,
    force: bool = False,
) -> pd.DataFrame:
    """Sample ``n`` images of ``data_dev`` into ``out_dir``; return the sampled labels (+meta)."""
    if not data_dev.is_dir():
        raise InputError(
            f"{data_dev} is not a folder.",
            "Pass the folder holding images/ and train_labels.csv (the downloaded data).",
        )
    labels_path = data_dev / layout.TRAIN_LABELS
    if not labels_path.is_file():
        raise InputError(
            f"{labels_path} does not exist.", f"Download {layout.TRAIN_LABELS} into it."
        )
    labels = layout.read_table(labels_path, COLUMNS, "labels file")
    meta_path = data_dev / layout.TRAIN_METADATA
    meta = (
        layout.read_table(meta_path, layout.META_COLUMNS, "metadata file")
        if meta_path.is_file()
        else None
    )
    if n < 1:
        raise InputError(f"N must be at least 1, got {n}.", "Ask for 1 or more images.")
    if n > len(labels):
        raise InputError(
            f"{data_dev} has {len(labels)} labelled images, fewer than the {n} asked for.",
            f"Ask for at most {len(labels)}.",
        )
    if out_dir.resolve() in (labels_dir.resolve(), *labels_dir.resolve().parents):
        raise InputError(
            f"The labels folder {labels_dir} is inside {out_dir}, which the sandbox mounts.",
            "Keep them apart, e.g. data/ and data_labels/.",
        )
    rng = np.random.default_rng(seed)
    if meta is not None:
        df = labels.merge(meta[list(layout.META_COLUMNS)], on=INDEX_COLUMN, how="left")
        unmatched = df["spacecraft_id"].isna().sum()
        if unmatched:
            raise InputError(
                f"{unmatched} labelled images have no row in {meta_path}.",
                "Use the metadata file that came with these labels.",
            )
        pick = stratified_sample(df, n, list(STRATA), rng)
    else:
        pick = labels.iloc[np.sort(rng.choice(len(labels), size=n, replace=False))]
    images = data_dev / layout.IMAGES_DIR
    paths = [layout.image_file(images, i) for i in pick[INDEX_COLUMN]]
    absent = [i for i, p in zip(pick[INDEX_COLUMN], paths, strict=True) if p is None]
    if absent:
        raise InputError(
            f"{len(absent)} sampled images are missing from {images} (e.g. {absent[0]}.png).",
            "Download or unpack all the images listed in train_labels.csv.",
        )
    data_claim, labels_claim = layout.claim_all(
        [(out_dir, "a test set"), (labels_dir, "test labels")], force=force
    )
    out_images = out_dir / layout.IMAGES_DIR
    out_images.mkdir()
    with data_claim.saving():
        for p in paths:
            assert p is not None
            dest = out_images / p.name
            try:
                os.link(p, dest)  # same disk: no copy
            except OSError:
                shutil.copy2(p, dest)
            data_claim.record(dest)
        layout.write_format(data_claim, pick[INDEX_COLUMN])
    with labels_claim.saving():
        layout.write_labels(labels_claim, pick, kind="test")
    return pick.reset_index(drop=True)
