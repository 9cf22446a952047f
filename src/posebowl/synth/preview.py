"""Contact sheets: a grid of frames with their boxes drawn, to look at a data set."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from posebowl.buckets import size_bucket
from posebowl.errors import InputError
from posebowl.rules import BOX_COLUMNS, INDEX_COLUMN
from posebowl.synth.compose import make_image
from posebowl.synth.pool import SHIPPED_SPRITES, SpritePool

THUMB_W = 480


def thumbnail(
    image: np.ndarray, box: tuple[float, ...], caption: str, width: int = THUMB_W
) -> np.ndarray:
    """``image`` (RGB) shrunk to ``width`` px with its box in green and a caption."""
    h, w = image.shape[:2]
    f = width / w
    th = round(h * f)
    thumb = cv2.resize(image, (width, th), interpolation=cv2.INTER_AREA)
    x0, y0, x1, y1 = (round(v * f) for v in box)
    cv2.rectangle(thumb, (x0, y0), (max(x0, x1 - 1), max(y0, y1 - 1)), (0, 255, 0), 1)
    scale = 0.4 * max(0.75, width / THUMB_W)
    cv2.putText(
        thumb, caption, (4, th - 6), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA
    )
    cv2.putText(
        thumb, caption, (4, th - 6), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 0), 1, cv2.LINE_AA
    )
    return thumb


def grid(thumbs: list[np.ndarray], cols: int) -> np.ndarray:
    """Tile equal-size thumbnails ``cols`` per row with 2 px gaps."""
    if not thumbs:
        raise InputError("There are no images to show.", "Ask for at least one image.")
    th, tw = thumbs[0].shape[:2]
    rows = -(-len(thumbs) // cols)
    sheet = np.full((rows * (th + 2), cols * (tw + 2), 3), 40, np.uint8)
    for k, t in enumerate(thumbs):
        r, c = divmod(k, cols)
        sheet[r * (th + 2) : r * (th + 2) + th, c * (tw + 2) : c * (tw + 2) + tw] = t
    return sheet


def _caption(box: tuple[float, ...], extra: str) -> str:
    bucket = size_bucket(np.array([box], np.float64))[0]
    w, h = box[2] - box[0], box[3] - box[1]
    return f"{extra} {int(w)}x{int(h)} {bucket}"


def sheet_from_synth(
    n: int = 12,
    cols: int = 4,
    split: str = "train",
    seed: int = 0,
    sprite_dir: Path = SHIPPED_SPRITES,
    recipe: str | None = None,
    width: int = THUMB_W,
) -> np.ndarray:
    """A sheet of ``n`` freshly composited images (not written anywhere)."""
    pool = SpritePool(sprite_dir, split)
    thumbs = []
    for i in range(n):
        img = make_image(pool, seed, i, recipe=recipe)
        caption = _caption(img.box, f"{img.background_id} sc{img.spacecraft_id}")
        thumbs.append(thumbnail(img.image, img.box, caption, width))
    return grid(thumbs, cols)


def sheet_from_folder(
    folder: Path,
    labels: Path | None = None,
    n: int = 12,
    cols: int = 4,
    seed: int = 0,
    width: int = THUMB_W,
) -> np.ndarray:
    """A sheet of ``n`` random images of a data folder with their true boxes."""
    if labels is None:
        for cand in (
            folder / "train_labels.csv",
            folder.parent / "data_labels" / "test_labels.csv",
        ):
            if cand.is_file():
                labels = cand
                break
        else:
            raise InputError(
                f"No labels found for {folder}.", "Pass --labels PATH to the labels CSV."
            )
    df = pd.read_csv(labels, dtype={INDEX_COLUMN: str})
    missing = [c for c in (INDEX_COLUMN, *BOX_COLUMNS) if c not in df.columns]
    if missing:
        raise InputError(f"{labels} lacks the columns {missing}.", "Use a labels CSV.")
    pick = df.sample(n=min(n, len(df)), random_state=seed)
    thumbs = []
    for row in pick.itertuples(index=False):
        image_id = getattr(row, INDEX_COLUMN)
        path = next((p for p in (folder / "images").glob(f"{image_id}.*")), None)
        bgr = cv2.imread(str(path)) if path is not None else None
        if bgr is None:
            raise InputError(
                f"The image of {image_id} is missing in {folder / 'images'}.",
                "Check the folder matches the labels.",
            )
        box = tuple(float(getattr(row, c)) for c in BOX_COLUMNS)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        thumbs.append(thumbnail(rgb, box, _caption(box, image_id[:6]), width))
    return grid(thumbs, cols)


def sheet_from_pool(
    sprite_dir: Path = SHIPPED_SPRITES, per_family: int = 6, width: int = 200, seed: int = 0
) -> np.ndarray:
    """The sprites of a pool over grey, one row per family (``per_family`` random ones each)."""
    pool = SpritePool(sprite_dir, "all")
    index = pool.index
    families = index["family"] if "family" in index.columns else index["split"]
    rng = np.random.default_rng(seed)
    rows = []
    for fam in sorted(set(families)):
        idx = np.flatnonzero((families == fam).to_numpy())
        pick = rng.choice(idx, size=min(per_family, len(idx)), replace=False)
        thumbs = []
        for i in pick:
            rgba = pool.premultiplied(int(i))
            h, w = rgba.shape[:2]
            f = (width - 8) / max(h, w)
            small = cv2.resize(rgba, (max(1, round(w * f)), max(1, round(h * f))), cv2.INTER_AREA)
            a = small[..., 3:].astype(np.float32) / 255.0
            tile = np.full((width, width, 3), 70, np.uint8)
            y0, x0 = (width - small.shape[0]) // 2, (width - small.shape[1]) // 2
            roi = tile[y0 : y0 + small.shape[0], x0 : x0 + small.shape[1]].astype(np.float32)
            roi = small[..., :3].astype(np.float32) + roi * (1.0 - a)
            tile[y0 : y0 + small.shape[0], x0 : x0 + small.shape[1]] = np.clip(roi, 0, 255)
            label = f"{fam} sc{pool.spacecraft_id(int(i))}"
            cv2.putText(tile, label, (3, width - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 0))
            thumbs.append(tile)
        while len(thumbs) < per_family:
            thumbs.append(np.full((width, width, 3), 40, np.uint8))
        rows.extend(thumbs)
    return grid(rows, per_family)


def write_sheet(path: Path, sheet: np.ndarray, quality: int | None = None) -> None:
    """Write ``sheet`` (RGB) to ``path``; with ``quality`` as a JPEG of that quality."""
    path.parent.mkdir(parents=True, exist_ok=True)
    bgr = cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)
    if quality is not None:
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            try:
                path.write_bytes(buf.tobytes())
                return
            except OSError:
                pass
    elif cv2.imwrite(str(path), bgr):
        return
    raise InputError(f"Could not write {path}.", "Check the folder is writable.")
