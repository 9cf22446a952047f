from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posebowl.buckets import size_bucket
from posebowl.rules import FRAME_HEIGHT, FRAME_WIDTH
from posebowl.synth import compose
from posebowl.synth.compose import Placement, alpha_box, paste, warp_sprite
from posebowl.synth.pool import SpritePool
from tests.synth.conftest import draw_sprite

W, H = 320, 256


def _premul(rgba: np.ndarray) -> np.ndarray:
    out = rgba.copy()
    a = rgba[..., 3:].astype(np.uint16)
    out[..., :3] = ((rgba[..., :3].astype(np.uint16) * a + 127) // 255).astype(np.uint8)
    return out


SPRITE = _premul(draw_sprite(50, 80, seed=3))


def test_box_is_the_alpha_extent_at_identity():
    frame = np.zeros((H, W, 3), np.uint8)
    p = Placement(scale=1.0, angle_deg=0.0, flip=False, cx=100.0, cy=90.0)
    canvas, x0, y0 = warp_sprite(SPRITE, p, W, H)
    box = paste(frame, canvas, x0, y0, (1.0, 1.0, 1.0))
    # the sprite's alpha extent is its whole 80x50 rectangle (antennas reach the corners)
    assert box == (60, 65, 140, 115)


@settings(max_examples=60, deadline=None)
@given(
    scale=st.floats(0.05, 6.0),
    angle=st.floats(0, 360),
    flip=st.booleans(),
    cx=st.floats(-200, W + 200),
    cy=st.floats(-200, H + 200),
)
def test_box_equals_visible_pixels(scale, angle, flip, cx, cy):
    """The box is the extent of every pixel the sprite changes (alpha > 0).

    A faint edge pixel can leave a black frame black (its premultiplied colour rounds to 0) and
    a pure-white one leaves a white frame white, so the changed pixels are the union of both.
    """
    black = np.zeros((H, W, 3), np.uint8)
    white = np.full((H, W, 3), 255, np.uint8)
    warped = warp_sprite(SPRITE, Placement(scale, angle, flip, cx, cy), W, H)
    if warped is None:
        return
    canvas, x0, y0 = warped
    box = paste(black, canvas, x0, y0, (1.0, 1.0, 1.0))
    assert paste(white, canvas, x0, y0, (1.0, 1.0, 1.0)) == box
    changed = (black.max(axis=2) > 0) | (white.min(axis=2) < 255)
    visible = alpha_box(changed.astype(np.uint8))
    assert box == visible
    if box is not None:
        assert 0 <= box[0] < box[2] <= W and 0 <= box[1] < box[3] <= H


def test_truncated_sprite_is_labelled_by_its_visible_part():
    frame = np.zeros((H, W, 3), np.uint8)
    canvas, x0, y0 = warp_sprite(SPRITE, Placement(2.0, 0.0, False, 10.0, 128.0), W, H)
    box = paste(frame, canvas, x0, y0, (1.0, 1.0, 1.0))
    assert box[0] == 0 and box[2] == 10 + 80  # half of the 160 px wide sprite is visible
    assert size_bucket(np.array([box]))[0] == "truncated" or box[0] == 0


def test_warp_outside_the_frame_is_none():
    assert warp_sprite(SPRITE, Placement(1.0, 0.0, False, -500.0, 50.0), W, H) is None


def test_gain_darkens_but_keeps_the_box():
    a, b = np.zeros((H, W, 3), np.uint8), np.zeros((H, W, 3), np.uint8)
    canvas, x0, y0 = warp_sprite(SPRITE, Placement(1.0, 30.0, False, 160.0, 128.0), W, H)
    assert paste(a, canvas, x0, y0, (1.0, 1.0, 1.0)) == paste(b, canvas, x0, y0, (0.5, 0.5, 0.5))
    assert b.sum() < a.sum()


def test_size_distribution_and_truncation_like_the_competition():
    rng = np.random.default_rng(0)
    boxes = []
    for _ in range(600):
        p = compose.sample_placement(rng, SPRITE.shape[:2], FRAME_WIDTH, FRAME_HEIGHT)
        warped = warp_sprite(SPRITE, p, FRAME_WIDTH, FRAME_HEIGHT)
        if warped is None:
            continue
        canvas, x0, y0 = warped
        b = alpha_box(canvas[..., 3])
        if b is not None:
            boxes.append((b[0] + x0, b[1] + y0, b[2] + x0, b[3] + y0))
    buckets = size_bucket(np.array(boxes, np.float64))
    share = {k: float(np.mean(buckets == k)) for k in ("small", "medium", "large", "truncated")}
    assert 0.10 <= share["truncated"] <= 0.22
    assert share["small"] >= 0.25
    assert share["large"] >= 0.05


def test_make_image_is_deterministic_and_valid(sprite_dir):
    pool = SpritePool(sprite_dir, "all")
    a = compose.make_image(pool, seed=5, index=3)
    b = compose.make_image(pool, seed=5, index=3)
    c = compose.make_image(pool, seed=5, index=4)
    assert a.image_id == b.image_id and a.box == b.box and np.array_equal(a.image, b.image)
    assert a.image_id != c.image_id
    assert len(a.image_id) == 32 and int(a.image_id, 16) >= 0
    assert a.image.shape == (FRAME_HEIGHT, FRAME_WIDTH, 3) and a.image.dtype == np.uint8
    x0, y0, x1, y1 = a.box
    assert 0 <= x0 < x1 <= FRAME_WIDTH and 0 <= y0 < y1 <= FRAME_HEIGHT


@pytest.mark.parametrize("kind", ["space", "limb", "earth"])
def test_backgrounds_are_deterministic(kind):
    from posebowl.synth.backgrounds import background_id, render_background

    bg = background_id(kind, 3)
    a = render_background(bg, 160, 128)
    assert a.shape == (128, 160, 3) and a.dtype == np.uint8
    assert np.array_equal(a, render_background(bg, 160, 128))


def test_bad_background_id():
    from posebowl.errors import InputError
    from posebowl.synth.backgrounds import parse_background_id

    with pytest.raises(InputError, match="is not a background id"):
        parse_background_id("moon-1")


def test_train_and_heldout_runs_never_share_image_ids():
    from posebowl.synth.compose import make_image
    from posebowl.synth.pool import SpritePool

    train, heldout = SpritePool(split="train"), SpritePool(split="heldout")
    ids_train = {make_image(train, 0, i, width=160, height=128).image_id for i in range(3)}
    ids_held = {make_image(heldout, 0, i, width=160, height=128).image_id for i in range(3)}
    assert not ids_train & ids_held
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids_train | ids_held)
