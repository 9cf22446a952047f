from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from posebowl.synth.sprites import write_index, write_sprite


def draw_sprite(h: int, w: int, seed: int) -> np.ndarray:
    """An RGBA test sprite: a body, a 1 px antenna to a corner, soft (partial-alpha) edges.

    Colour is non-zero wherever alpha is, so pasting it on black shows exactly its alpha.
    """
    rng = np.random.default_rng(seed)
    rgba = np.zeros((h, w, 4), np.uint8)
    body = (w // 4, h // 4, 3 * w // 4, 3 * h // 4)
    color = tuple(int(c) for c in rng.integers(80, 255, 3))
    cv2.rectangle(rgba, body[:2], body[2:], (*color, 255), -1)
    cv2.line(rgba, (w // 2, h // 2), (0, 0), (*color, 255), 1, lineType=cv2.LINE_AA)
    cv2.line(rgba, (w // 2, h // 2), (w - 1, h - 1), (*color, 128), 1)
    rgba[..., :3][rgba[..., 3] > 0] = np.maximum(rgba[..., :3][rgba[..., 3] > 0], 64)
    return rgba


@pytest.fixture(scope="session")
def sprite_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny sprite folder in the `posebowl synth sprites` layout: 7 designs x 2 views.

    Design 5 is a held-out design, design 6 the held-out family (see sprites.split_of).
    """
    d = tmp_path_factory.mktemp("sprites")
    for design in range(7):
        for view in range(2):
            s = draw_sprite(60 + 10 * design, 90 - 5 * view, seed=design * 10 + view)
            write_sprite(d / f"sc{design:04d}_v{view:02d}.png", s)
    write_index(d)
    return d
