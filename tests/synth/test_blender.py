"""The Blender path end to end: one design, one view, a tiny render (needs the bpy venv)."""

from __future__ import annotations

import pandas as pd
import pytest

from posebowl.errors import SetupError
from posebowl.synth import sprites

pytestmark = pytest.mark.blender


@pytest.fixture(scope="module")
def venv_ready() -> None:
    try:
        sprites.blender_python()
    except SetupError:
        pytest.skip("no Blender venv: run `posebowl synth setup` (make test builds it)")


def test_tiny_render_is_a_cropped_sprite_and_resumes(venv_ready, tmp_path):
    task = sprites.SpriteTask(design_id=3, view_id=0)
    report = sprites.render_sprites([task], tmp_path, resolution=64, samples=4, threads=1)
    assert (report.rendered, report.skipped) == (1, 0)
    assert len(report.render_seconds) == 1
    rgba = sprites.read_rgba(tmp_path / task.name)
    alpha = rgba[..., 3] > 0
    assert alpha[0].any() and alpha[-1].any() and alpha[:, 0].any() and alpha[:, -1].any()
    assert 8 <= max(rgba.shape[:2]) <= 64
    assert (rgba[..., :3][~alpha] == 0).all()
    index = pd.read_csv(tmp_path / "index.csv")
    assert index.to_dict("records") == [
        {
            "sprite": task.name,
            "spacecraft_id": 3,
            "view_id": 0,
            "held_out": False,
            "family": "octsat",
            "split": "train",
            "width": rgba.shape[1],
            "height": rgba.shape[0],
        }
    ]
    again = sprites.render_sprites([task], tmp_path, resolution=64, samples=4, threads=1)
    assert (again.rendered, again.skipped) == (0, 1)


def test_thin_parts_reach_the_crop(venv_ready, tmp_path):
    """A probe's booms are thinner than a pixel: the crop (alpha > 0) runs out to faint pixels.

    With a threshold such as alpha > 0.5 every border of the crop would hold a solid pixel.
    """
    from posebowl.synth import design

    task = sprites.SpriteTask(design_id=6, view_id=1)  # booms many times the bus
    assert design.family_of(6) == "probe"
    # 8 samples: alpha comes in steps of 1/8 (with 2 samples a faint pixel reads 0.5)
    sprites.render_sprites([task], tmp_path, resolution=96, samples=8, threads=1)
    alpha = sprites.read_rgba(tmp_path / task.name)[..., 3]
    borders = [alpha[0], alpha[-1], alpha[:, 0], alpha[:, -1]]
    assert min(int(b.max()) for b in borders) < 128


def test_same_task_same_pixels(venv_ready, tmp_path):
    task = sprites.SpriteTask(design_id=11, view_id=2)
    sprites.render_sprites([task], tmp_path / "a", resolution=48, samples=2, threads=1)
    sprites.render_sprites([task], tmp_path / "b", resolution=48, samples=2, threads=1)
    a = sprites.read_rgba(tmp_path / "a" / task.name)
    b = sprites.read_rgba(tmp_path / "b" / task.name)
    assert a.shape == b.shape
    assert (a[..., 3] == b[..., 3]).all()
