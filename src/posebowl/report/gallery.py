"""Gallery cards: each image decoded once, true box in green and predicted box in red.

Only the images shown are decoded. A card holds two JPEGs as data URIs: the whole frame, and a
zoom on the two boxes (small targets are a few pixels wide in a whole-frame thumbnail). An image
missing on disk or unreadable still gets a card, with the boxes drawn on a blank frame.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from posebowl.findings import Violation, violation
from posebowl.report.evaluate import METADATA_COLUMNS, PRED_COLUMNS, TRUE_COLUMNS
from posebowl.rules import FRAME_HEIGHT, FRAME_WIDTH

FRAME_THUMB_WIDTH = 320  # px, the whole-frame thumbnail
ZOOM_SIZE = 224  # px, the longest side of the zoom
ZOOM_MIN_SIDE = 48  # px of the source image: the zoom never magnifies more than this allows
ZOOM_MARGIN = 0.3  # of the boxes' union, on each side
JPEG_QUALITY = 85
TRUE_BGR = (60, 220, 60)  # green
PRED_BGR = (40, 40, 240)  # red
BLANK_GRAY = 48
MAX_WORKERS = 4  # decoding threads
MISSING = "image file missing"
UNREADABLE = "image could not be decoded"

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Card:
    """One gallery entry, ready for the template."""

    image_id: str
    iou: float
    true_box: tuple[float, float, float, float]
    pred_box: tuple[float, float, float, float]
    bucket: str
    metadata: dict[str, str]
    frame_uri: str
    zoom_uri: str
    image_path: Path
    problem: str | None = None  # why the real image is not shown, if it is not

    @property
    def image_uri(self) -> str:
        """A file:// link to the original image (absolute, so the page can be moved)."""
        return self.image_path.resolve().as_uri()

    @property
    def true_size(self) -> str:
        x0, y0, x1, y1 = self.true_box
        return f"{x1 - x0:g}×{y1 - y0:g}"


def _jpeg_uri(img: np.ndarray) -> str:
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    # full-resolution colour: 4:2:0 subsampling blends thin red and green lines into orange
    params += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
    ok, buf = cv2.imencode(".jpg", img, params)
    if not ok:  # pragma: no cover - OpenCV encodes any 8-bit BGR image
        raise RuntimeError("OpenCV could not encode a JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def _draw(img: np.ndarray, box: np.ndarray, scale: float, offset: np.ndarray, color, width: int):
    x0, y0, x1, y1 = np.round((box - np.tile(offset, 2)) * scale).astype(int)
    # LINE_8, not anti-aliased: the two colours stay pure where the boxes coincide
    cv2.rectangle(img, (int(x0), int(y0)), (int(x1), int(y1)), color, width, cv2.LINE_8)


def _resize(img: np.ndarray, scale: float) -> np.ndarray:
    h, w = img.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(img, size, interpolation=interp)


def _with_boxes(crop: np.ndarray, scale: float, offset: np.ndarray, t, p) -> np.ndarray:
    out = _resize(crop, scale)
    _draw(out, t, scale, offset, TRUE_BGR, 4)  # wider, under the red one: both show at IoU 1
    _draw(out, p, scale, offset, PRED_BGR, 2)
    return out


def _zoom_window(img_wh: tuple[int, int], t: np.ndarray, p: np.ndarray) -> tuple[int, ...]:
    """The integer square crop ``x0, y0, x1, y1`` around both boxes plus a margin.

    The square is shifted (not cut) to stay inside the image, and only cut where the image is
    smaller than it.
    """
    w, h = img_wh
    both = np.array(
        [min(t[0], p[0]), min(t[1], p[1]), max(t[2], p[2]), max(t[3], p[3])], dtype=float
    )
    both[[0, 2]] = np.clip(both[[0, 2]], 0, w)
    both[[1, 3]] = np.clip(both[[1, 3]], 0, h)
    side = max(both[2] - both[0], both[3] - both[1]) * (1 + 2 * ZOOM_MARGIN)
    side = int(np.ceil(max(side, ZOOM_MIN_SIDE)))
    out = []
    for lo, hi, size in ((both[0], both[2], w), (both[1], both[3], h)):
        start = int(round((lo + hi) / 2 - side / 2))
        start = min(max(start, 0), max(size - side, 0))
        out.append((start, min(start + side, size)))
    (x0, x1), (y0, y1) = out
    return x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)


def _load(path: Path, listed: set[str] | None) -> tuple[np.ndarray, str | None]:
    """The image (BGR, 8-bit) or a blank frame, and why it is blank."""
    if (listed is not None and path.name not in listed) or not path.is_file():
        problem = MISSING  # (checked first: OpenCV would print a warning of its own)
    else:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is not None:
            return img, None
        problem = MISSING if not path.exists() else UNREADABLE
    return np.full((FRAME_HEIGHT, FRAME_WIDTH, 3), BLANK_GRAY, np.uint8), problem


def make_card(row: pd.Series, image_id: str, path: Path, listed: set[str] | None = None) -> Card:
    """Decode one image and draw its card (a blank frame when the image is unusable)."""
    img, problem = _load(path, listed)
    h, w = img.shape[:2]
    t = row[list(TRUE_COLUMNS)].to_numpy(dtype=float)
    p = row[list(PRED_COLUMNS)].to_numpy(dtype=float)
    frame = _with_boxes(img, FRAME_THUMB_WIDTH / w, np.zeros(2), t, p)
    if problem:
        cv2.putText(
            frame, problem, (12, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (230, 230, 230), 2, cv2.LINE_AA
        )
    x0, y0, x1, y1 = _zoom_window((w, h), t, p)
    zoom_scale = ZOOM_SIZE / max(x1 - x0, y1 - y0)
    zoom = _with_boxes(img[y0:y1, x0:x1], zoom_scale, np.array([x0, y0], float), t, p)
    meta = {c: str(row[c]) for c in METADATA_COLUMNS if c in row.index and not pd.isna(row[c])}
    return Card(
        image_id=image_id,
        iou=float(row["iou"]),
        true_box=tuple(float(v) for v in t),  # type: ignore[arg-type]
        pred_box=tuple(float(v) for v in p),  # type: ignore[arg-type]
        bucket=str(row["bucket"]),
        metadata=meta,
        frame_uri=_jpeg_uri(frame),
        zoom_uri=_jpeg_uri(zoom),
        image_path=path,
        problem=problem,
    )


def list_images(images_dir: Path) -> set[str] | None:
    """The file names in ``images_dir`` (one directory read), or None if it is not a folder."""
    try:
        with os.scandir(images_dir) as it:
            return {e.name for e in it}
    except (FileNotFoundError, NotADirectoryError):
        return None


def missing_images(
    ids: Iterable[str], listed: set[str] | None, images_dir: Path
) -> Violation | None:
    """The violation naming the scored images that have no PNG in ``images_dir``, if any."""
    if listed is None:
        return Violation(
            "images_dir_missing",
            f"the images folder {images_dir} does not exist: the gallery draws the boxes on "
            "blank frames",
        )
    absent = [i for i in ids if f"{i}.png" not in listed]
    if not absent:
        return None
    return violation(
        "image_missing",
        f"scored images with no PNG in {images_dir} (a gallery card shows a blank frame)",
        absent,
    )


def _row(table: pd.DataFrame, image_id: str) -> pd.Series:
    row = table.loc[image_id]
    assert isinstance(row, pd.Series), "the report's table has one row per image id"
    return row


def make_cards(
    table: pd.DataFrame,
    ids: list[str],
    images_dir: Path,
    listed: set[str] | None,
    progress: Progress | None = None,
    workers: int | None = None,
) -> list[Card]:
    """Cards for ``ids`` (rows of ``table``), in order; ``progress(done, total)`` after each.

    Images are decoded on ``workers`` threads (OpenCV releases the GIL while decoding).
    """
    workers = workers or min(MAX_WORKERS, os.cpu_count() or 1)
    cards: dict[str, Card] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {
            pool.submit(make_card, _row(table, i), i, images_dir / f"{i}.png", listed): i
            for i in ids
        }
        for n, future in enumerate(as_completed(futures), 1):
            cards[futures[future]] = future.result()
            if progress is not None:
                progress(n, len(ids))
    return [cards[i] for i in ids]
