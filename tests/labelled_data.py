"""Tiny labelled folders in the competition layout, drawn with OpenCV (no generator needed)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd


def make_labelled_folder(
    root: Path,
    n: int = 12,
    size: tuple[int, int] = (160, 128),
    designs: int = 4,
    seed: int = 0,
    suffix: str = ".jpg",
    metadata: bool = True,
) -> Path:
    """``root/images/<id><suffix>`` (noise + one bright rectangle), labels and metadata.

    Spacecraft ids cycle over ``designs``; backgrounds alternate ``earth_*`` / ``space_*``.
    """
    rng = np.random.default_rng(seed)
    w, h = size
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows, meta = [], []
    for k in range(n):
        image_id = f"{seed:08x}{k:024x}"
        img = rng.integers(0, 70, (h, w, 3), dtype=np.uint8)
        bw, bh = int(rng.integers(w // 5, w // 2)), int(rng.integers(h // 5, h // 2))
        x0, y0 = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
        colour = tuple(int(c) for c in rng.integers(150, 256, 3))
        cv2.rectangle(img, (x0, y0), (x0 + bw - 1, y0 + bh - 1), colour, thickness=-1)
        cv2.imwrite(str(root / "images" / f"{image_id}{suffix}"), img)
        rows.append((image_id, x0, y0, x0 + bw, y0 + bh))
        meta.append(
            (image_id, f"sc{k % designs}", f"{('earth', 'space')[(k // designs) % 2]}_{k % 3:02d}")
        )
    cols = ["image_id", "xmin", "ymin", "xmax", "ymax"]
    pd.DataFrame(rows, columns=cols).to_csv(root / "train_labels.csv", index=False)
    if metadata:
        pd.DataFrame(meta, columns=["image_id", "spacecraft_id", "background_id"]).to_csv(
            root / "train_metadata.csv", index=False
        )
    return root
