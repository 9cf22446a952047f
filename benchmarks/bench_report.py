"""Benchmark: `posebowl report` on 25,000 scored rows with a 24-image gallery.

Baselines in the same run: decoding the 24 gallery PNGs with OpenCV (the floor of any report
that shows them) and `score_files` on the same CSVs (the bare metric).
Usage: python benchmarks/bench_report.py [N_ROWS] [GALLERY]
"""

from __future__ import annotations

import platform
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from _timing import timed

from posebowl import boxes
from posebowl.metric import score_files
from posebowl.report import build_report, select_gallery

W, H = 1280, 1024
BEST = 6


def frame(rng: np.random.Generator) -> np.ndarray:
    """A frame that compresses and decodes like a rendered one: smooth shapes plus sensor noise."""
    small = rng.integers(0, 255, (H // 32, W // 32, 3), dtype=np.uint8)
    img = cv2.resize(small, (W, H), interpolation=cv2.INTER_CUBIC)
    noise = rng.normal(0, 4, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def make(n: int, gallery: int, folder: Path) -> tuple[Path, Path, Path, Path, list[str]]:
    rng = np.random.default_rng(0)
    ids = [f"{v:032x}" for v in rng.integers(0, 2**63, n, dtype=np.int64)]
    w, h = rng.integers(20, 600, n), rng.integers(20, 500, n)
    x0, y0 = rng.integers(0, W - w), rng.integers(0, H - h)
    truth = np.stack([x0, y0, x0 + w, y0 + h], axis=1)
    jitter = (rng.normal(0, 0.08, (n, 4)) * np.stack([w, h, w, h], axis=1)).astype(int)
    pred = np.clip(truth + jitter, 0, [W, H, W, H])
    pred[:, 2:] = np.maximum(pred[:, 2:], pred[:, :2])
    cols = ["xmin", "ymin", "xmax", "ymax"]
    for name, arr in (("labels", truth), ("pred", pred)):
        df = pd.DataFrame(arr, columns=cols)
        df.insert(0, "image_id", ids)
        df.to_csv(folder / f"{name}.csv", index=False)
    meta = pd.DataFrame(
        {
            "image_id": ids,
            "spacecraft_id": rng.integers(1, 27, n),
            "background_id": rng.integers(1, 120, n),
        }
    )
    meta.to_csv(folder / "metadata.csv", index=False)
    images = folder / "images"
    images.mkdir()
    table = pd.DataFrame({"iou": boxes.iou(pred, truth)}, index=pd.Index(ids))
    worst, best = select_gallery(table, gallery - BEST, BEST)
    shown = set(worst + best)
    for i in ids:  # a full folder listing, but only the gallery images hold pixels
        path = images / f"{i}.png"
        if i in shown:
            cv2.imwrite(str(path), frame(rng))
        else:
            path.touch()
    return folder / "pred.csv", folder / "labels.csv", folder / "metadata.csv", images, worst + best


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 25_000
    gallery = int(sys.argv[2]) if len(sys.argv) > 2 else 24
    with tempfile.TemporaryDirectory() as d:
        pred, labels, meta, images, shown = make(n, gallery, Path(d))
        decode = timed(lambda: [cv2.imread(str(images / f"{i}.png")) for i in shown], 3)
        metric = timed(lambda: score_files(pred, labels), 3)
        out = Path(d) / "report"
        full = timed(
            lambda: build_report(
                pred, labels, images, out, metadata=meta, worst=gallery - BEST, best=BEST
            ),
            3,
        )
        size = (out / "index.html").stat().st_size
    print(f"machine: {platform.processor() or platform.machine()}, {platform.python_version()}")
    print(f"rows: {n:,}, gallery images: {gallery}")
    print(f"baseline: decode the {gallery} gallery PNGs: {decode:.3f} s")
    print(f"baseline: score_files (the bare metric): {metric:.3f} s")
    print(f"build_report (with metadata): {full:.3f} s  ratio {full / decode:.2f}x the decode")
    print(f"index.html: {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
