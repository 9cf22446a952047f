"""Sprite pools: a folder of RGBA sprites plus ``index.csv``; one ships with posebowl.

``SHIPPED_SPRITES`` holds Blender-rendered designs x views (``posebowl synth sprites``). The
index's ``split`` column says which pool a design belongs to (``posebowl.synth.sprites.split_of``):
``train``; ``heldout`` (unseen designs of the training families, id % 6 == 5); ``family`` (every
design of the held-out family, a recipe no training design uses). ``all`` takes every sprite.
An index without a ``split`` column (an older folder) reads ``held_out`` true as ``heldout``.
A pool loads sprites lazily and keeps them premultiplied, ready to composite.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from posebowl.errors import InputError

SHIPPED_SPRITES = Path(__file__).with_name("assets") / "sprites"
INDEX_NAME = "index.csv"
REQUIRED_COLUMNS = ("sprite", "spacecraft_id", "view_id", "held_out")
SPLITS = ("train", "heldout", "family", "all")


def read_index(sprite_dir: Path) -> pd.DataFrame:
    """The index of ``sprite_dir``, checked: required columns present, files on disk."""
    index = sprite_dir / INDEX_NAME
    if not index.is_file():
        raise InputError(
            f"{index} does not exist.",
            "Point --sprites at a folder made by `posebowl synth sprites` (it writes index.csv).",
        )
    df = pd.read_csv(index)
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(
            f"{index} lacks the columns {missing}.",
            "Rebuild it with `posebowl synth sprites` (finished sprites are kept).",
        )
    absent = [s for s in df["sprite"] if not (sprite_dir / str(s)).is_file()]
    if absent:
        raise InputError(
            f"{len(absent)} sprites listed in {index} are not on disk (e.g. {absent[0]}).",
            "Re-render them with `posebowl synth sprites`, which also rewrites the index.",
        )
    df["held_out"] = df["held_out"].astype(str).str.lower().isin(["true", "1"])
    if "split" not in df.columns:
        df["split"] = np.where(df["held_out"], "heldout", "train")
    return df


class SpritePool:
    """The sprites of one split of a sprite folder, loaded on first use."""

    def __init__(self, sprite_dir: Path = SHIPPED_SPRITES, split: str = "train") -> None:
        if split not in SPLITS:
            raise InputError(f"Unknown split {split!r}.", f"Use one of {', '.join(SPLITS)}.")
        self.sprite_dir = Path(sprite_dir)
        self.split = split
        index = read_index(self.sprite_dir)
        if split != "all":
            index = index[index["split"] == split]
        if index.empty:
            raise InputError(
                f"No sprites of split {split!r} in {self.sprite_dir}.",
                "Use --split all, or render more designs with `posebowl synth sprites`.",
            )
        self.index = index.reset_index(drop=True)
        self._cache: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.index)

    def spacecraft_id(self, i: int) -> int:
        return int(self.index.at[i, "spacecraft_id"])

    def premultiplied(self, i: int) -> np.ndarray:
        """Sprite ``i`` as ``[H, W, 4]`` uint8 RGBA with colour premultiplied by alpha."""
        if i not in self._cache:
            path = self.sprite_dir / str(self.index.at[i, "sprite"])
            bgra = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if bgra is None or bgra.ndim != 3 or bgra.shape[2] != 4:
                raise InputError(f"{path} is not an RGBA PNG.", "Re-render the sprite.")
            rgba = cv2.cvtColor(bgra, cv2.COLOR_BGRA2RGBA)
            a = rgba[..., 3:].astype(np.uint16)
            rgba[..., :3] = ((rgba[..., :3].astype(np.uint16) * a + 127) // 255).astype(np.uint8)
            self._cache[i] = rgba
        return self._cache[i]
