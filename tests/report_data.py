"""Tiny report inputs made with OpenCV: labels, predictions, metadata and a few PNG frames."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from tests.conftest import make_ids

W, H = 1280, 1024


@dataclass(frozen=True)
class ReportInputs:
    pred: Path
    labels: Path
    metadata: Path
    images: Path
    ids: list[str]


def draw_frame(box: np.ndarray, rng: np.random.Generator, earth: bool) -> np.ndarray:
    """A dark starfield (optionally an Earth limb) with a crude spacecraft filling ``box``."""
    img = np.zeros((H, W, 3), np.uint8)
    stars = rng.integers(0, [W, H], size=(150, 2))
    img[stars[:, 1], stars[:, 0]] = 255
    if earth:
        cv2.ellipse(img, (W // 2, H + 500), (1100, 900), 0, 180, 360, (170, 110, 40), -1)
        cv2.ellipse(img, (W // 2 - 200, H + 400), (400, 600), 0, 200, 320, (200, 200, 210), -1)
    x0, y0, x1, y1 = (int(v) for v in box)
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    bw, bh = max((x1 - x0) // 5, 2), max((y1 - y0) // 2, 2)
    cv2.rectangle(img, (x0, cy - bh // 4), (x1 - 1, cy + bh // 4), (140, 60, 30), -1)  # panels
    cv2.rectangle(img, (cx - bw, y0), (cx + bw, y1 - 1), (190, 190, 190), -1)  # body
    return img


def make_inputs(
    folder: Path,
    n: int = 12,
    n_images: int | None = None,
    seed: int = 0,
    extra_pred_ids: int = 0,
    missing_pred: int = 0,
) -> ReportInputs:
    """``n`` labelled images (PNGs for the first ``n_images``), predictions with varied error.

    The predictions drift more and more from the truth along the rows, so IoU falls from
    ~1 to 0. ``extra_pred_ids`` adds predictions for unknown ids; ``missing_pred`` drops the
    predictions of the last labelled rows.
    """
    rng = np.random.default_rng(seed)
    ids = make_ids(n, seed=seed)
    w = rng.integers(30, 500, n)
    h = rng.integers(30, 400, n)
    x0 = rng.integers(0, W - w)
    y0 = rng.integers(0, H - h)
    truth = np.stack([x0, y0, x0 + w, y0 + h], axis=1)
    shift = ((np.linspace(0, 1.15, n) ** 2)[:, None] * np.stack([w, h, w, h], axis=1)).astype(int)
    pred = np.clip(truth + shift, 0, [W, H, W, H])
    labels = pd.DataFrame(truth, columns=["xmin", "ymin", "xmax", "ymax"])
    labels.insert(0, "image_id", ids)
    preds = pd.DataFrame(pred, columns=["xmin", "ymin", "xmax", "ymax"])
    preds.insert(0, "image_id", ids)
    if missing_pred:
        preds = preds.iloc[:-missing_pred]
    if extra_pred_ids:
        extra = preds.head(extra_pred_ids).copy()
        extra["image_id"] = make_ids(extra_pred_ids, seed=seed + 999)
        preds = pd.concat([preds, extra], ignore_index=True)
    meta = pd.DataFrame(
        {"image_id": ids, "spacecraft_id": rng.integers(1, 6, n), "background_id": np.arange(n) % 4}
    )
    folder.mkdir(parents=True, exist_ok=True)
    images = folder / "images"
    images.mkdir(exist_ok=True)
    for i in range(n if n_images is None else n_images):
        cv2.imwrite(str(images / f"{ids[i]}.png"), draw_frame(truth[i], rng, earth=i % 2 == 0))
    labels.to_csv(folder / "labels.csv", index=False)
    preds.to_csv(folder / "pred.csv", index=False)
    meta.to_csv(folder / "metadata.csv", index=False)
    return ReportInputs(
        folder / "pred.csv", folder / "labels.csv", folder / "metadata.csv", images, ids
    )
