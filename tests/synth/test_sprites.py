from __future__ import annotations

import numpy as np
import pytest

from posebowl.errors import InputError, SetupError
from posebowl.synth import sprites


def test_crop_sprite_is_the_alpha_box_and_clears_colour():
    rgba = np.zeros((40, 50, 4), np.uint8)
    rgba[10:20, 5:30] = (200, 100, 50, 255)
    rgba[25, 40] = (9, 9, 9, 1)  # a faint antenna tip counts
    rgba[5, 5, :3] = 77  # colour under alpha 0 is dropped (and leaves the box alone)
    out = sprites.crop_sprite(rgba)
    assert out.shape == (16, 36, 4)  # rows 10..25, cols 5..40
    assert (out[..., :3][out[..., 3] == 0] == 0).all()


def test_crop_sprite_max_side_keeps_thin_parts():
    rgba = np.zeros((100, 400, 4), np.uint8)
    rgba[50, :, :] = 255  # a 1 px boom across the sprite
    out = sprites.crop_sprite(rgba, max_side=100)
    assert out.shape[1] == 100 and (out[..., 3] > 0).all(axis=0).all()


def test_crop_sprite_errors():
    with pytest.raises(ValueError, match="no pixel has alpha > 0"):
        sprites.crop_sprite(np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(ValueError, match=r"shape \(H, W, 4\)"):
        sprites.crop_sprite(np.zeros((4, 4, 3), np.uint8))


def test_write_sprite_keeps_alpha_exact_with_fewer_colour_bits(tmp_path):
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (20, 30, 4), dtype=np.uint8)
    sprites.write_sprite(tmp_path / "s.png", rgba, color_bits=6)
    back = sprites.read_rgba(tmp_path / "s.png")
    assert (back[..., 3] == rgba[..., 3]).all()
    assert (back[..., :3] == (rgba[..., :3] & 0xFC)).all()


def test_tasks_and_groups():
    tasks = sprites.plan_tasks(range(5), 3)
    assert len(tasks) == 15 and tasks[0].name == "sc0000_v00.png"
    groups = sprites._group(tasks, 2)
    assert sorted(t for g in groups for t in g) == sorted(tasks)
    for g in groups:  # whole designs stay together
        assert all(sum(t.design_id == d for t in g) in (0, 3) for d in range(5))
    with pytest.raises(InputError, match="at least 1"):
        sprites.plan_tasks(range(2), 0)


def test_splits_of_designs():
    splits = {d: sprites.split_of(d) for d in range(48)}
    assert [d for d, s in splits.items() if s == "family"] == [6, 13, 20, 27, 34, 41]
    assert [d for d, s in splits.items() if s == "heldout"] == [5, 11, 17, 23, 29, 35, 47]
    assert all(sprites.is_held_out(d) == (s != "train") for d, s in splits.items())


def test_index_says_family_and_split(sprite_dir):
    import pandas as pd

    index = pd.read_csv(sprite_dir / "index.csv")
    assert list(index.columns) == list(sprites.INDEX_COLUMNS)
    row = index[index.spacecraft_id == 6].iloc[0]
    assert (row.family, row.split, bool(row.held_out)) == ("probe", "family", True)


def test_missing_venv_says_how_to_fix(tmp_path):
    with pytest.raises(SetupError, match="posebowl synth setup"):
        sprites.blender_python(tmp_path / "nope")
