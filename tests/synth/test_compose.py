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


def test_a_boom_thinner_than_a_pixel_still_counts_when_shrunk():
    """A faint 1 px boom across a 400 px sprite, shrunk to 20 px: the box still spans it."""
    rgba = np.zeros((400, 400, 4), np.uint8)
    rgba[180:220, 180:220] = 255  # the bus
    rgba[200, 0:400] = 8  # the boom: 1 px thick, faint (premultiplied), as Blender leaves it
    canvas, x0, y0 = warp_sprite(rgba, Placement(0.05, 0.0, False, 100.0, 100.0), W, H)
    box = paste(np.zeros((H, W, 3), np.uint8), canvas, x0, y0, (1.0, 1.0, 1.0))
    assert box is not None and box[2] - box[0] >= 19  # 400 px * 0.05, not the 2 px bus


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


@pytest.mark.slow
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
    assert 0.10 <= share["truncated"] <= 0.26
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


def test_hard_cases_have_their_shares():
    """Small targets of 20-80 px, and heavy truncation (<= 35% of the box left inside)."""
    rng = np.random.default_rng(1)
    long_sides = [compose.sample_long_side(rng) for _ in range(4000)]
    tiny = np.mean([20 <= s <= 80 for s in long_sides])
    assert 0.22 <= tiny <= 0.34
    assert min(long_sides) >= 20 and max(long_sides) <= 1500
    kept = []
    for _ in range(3000):
        p = compose.sample_placement(rng, SPRITE.shape[:2], FRAME_WIDTH, FRAME_HEIGHT)
        w, h = compose._rotated_size(*SPRITE.shape[:2], p.scale, p.angle_deg)
        inside_w = min(FRAME_WIDTH, p.cx + w / 2) - max(0.0, p.cx - w / 2)
        inside_h = min(FRAME_HEIGHT, p.cy + h / 2) - max(0.0, p.cy - h / 2)
        kept.append(min(inside_w / w, inside_h / h))
    kept = np.array(kept)
    assert 0.02 <= np.mean(kept <= 0.36) <= 0.1


def test_camera_effects():
    frame = np.full((H, W, 3), 128, np.uint8)
    frame[100:140, 100:200] = 250
    blurred = compose.motion_blur(frame, 20.0, 0.0)
    assert blurred.shape == frame.shape
    assert abs(float(blurred.mean()) - float(frame.mean())) < 2.0
    assert blurred[120, 96, 0] > 150 and blurred[120, 100, 0] < 250  # smeared along x
    assert blurred[95, 150, 0] < 140  # not along y
    soft = compose.defocus(frame, 8.0)
    assert soft[120, 150, 0] > 240 and 130 < soft[100, 150, 0] < 245
    noisy = compose.add_noise(frame.copy(), np.random.default_rng(0), 2.0, shot=20.0)
    dark = compose.add_noise(np.full_like(frame, 10), np.random.default_rng(0), 2.0, shot=20.0)
    assert noisy[100:140, 100:200].std() > dark[100:140, 100:200].std()  # shot noise grows
    bright = frame.copy()
    compose.tone(bright, 3.0, 1.0)
    assert bright.max() == 255 and (bright == 255).mean() > 0.03  # blown out


def test_flare_can_sit_on_the_target():
    frame = np.zeros((H, W, 3), np.uint8)
    compose.add_flare(frame, np.random.default_rng(3), centre=(200.0, 60.0))
    y, x = np.unravel_index(np.argmax(frame.sum(axis=2)), frame.shape[:2])
    assert abs(x - 200) <= 8 and abs(y - 60) <= 8


def test_family_split_gets_the_validation_backgrounds(sprite_dir):
    family = SpritePool(sprite_dir, "family")
    train = SpritePool(sprite_dir, "train")
    for i in range(4):
        f = compose.make_image(family, 0, i, width=W, height=H)
        t = compose.make_image(train, 0, i, width=W, height=H)
        assert "-val-" in f.background_id and "-train-" in t.background_id
        assert f.spacecraft_id == 6 and t.spacecraft_id not in (5, 6)
    # an explicit recipe overrides the split's, and gives other image ids
    a = compose.make_image(train, 0, 0, width=W, height=H, recipe="val")
    assert "-val-" in a.background_id
    assert a.image_id != compose.make_image(train, 0, 0, width=W, height=H).image_id


def test_runs_of_different_splits_never_share_image_ids(sprite_dir):
    ids = {}
    for split in ("train", "heldout", "family"):
        pool = SpritePool(sprite_dir, split)
        ids[split] = {
            compose.make_image(pool, 0, i, width=160, height=128).image_id for i in range(3)
        }
    assert not ids["train"] & ids["heldout"]
    assert not ids["train"] & ids["family"]
    assert not ids["heldout"] & ids["family"]
    assert all(len(i) == 32 and int(i, 16) >= 0 for v in ids.values() for i in v)
    # one seed, two splits: not paired frame by frame (other placements, other backgrounds)
    train, held = SpritePool(sprite_dir, "train"), SpritePool(sprite_dir, "heldout")
    pairs = [
        (
            compose.make_image(train, 0, i, width=160, height=128).background_id,
            compose.make_image(held, 0, i, width=160, height=128).background_id,
        )
        for i in range(4)
    ]
    assert sum(a != b for a, b in pairs) >= 3
