"""Backgrounds: black space, Earth limbs, full-frame Earth surface, domain-randomised textures.

A background id is ``"<type>-<recipe>-<number>"``, e.g. ``limb-train-00042``:

- the **type** (letters only, so ``posebowl.buckets.background_type`` reads it) is
  ``space`` (stars), ``limb`` (Earth and space, the limb across the frame, up to whole discs
  seen from far), ``surface`` (Earth fills the frame, zoomed in from low orbit) or ``random``
  (domain randomisation, training only);
- the **recipe** is ``train`` or ``val``. Validation views look at Blue Marble longitudes that
  training views never show (``earth.VAL_LON``), with clouds from other tiles and other
  settings (``clouds.RECIPES``), and other star fields; they have no ``random`` type.

A background is a pure function of its id: the same id gives the same pixels on any machine
(numpy 1.26 or 2.x, OpenCV 4.9+). The Earth is traced on a coarse grid, shaded at half size and
upscaled (see ``earth``); space and textures are a few milliseconds.
"""

from __future__ import annotations

import dataclasses
import math
import re
import zlib

import cv2
import numpy as np

from posebowl.errors import InputError
from posebowl.synth import clouds, earth, textures

TYPES = ("space", "limb", "surface", "random")
RECIPES = ("train", "val")
TYPE_WEIGHTS = {
    "train": (0.22, 0.33, 0.30, 0.15),
    "val": (0.25, 0.40, 0.35, 0.0),
}
_ID = re.compile(r"^(space|limb|surface|random)-(train|val)-(\d+)$")
MIN_SURFACE_KM = 1.2  # km per working pixel: closer views would magnify the texture > 6x
VAL_SHARE = 0.6  # validation views: at least this share of the visible Earth in earth.VAL_LON
_TRIES = 60  # view samples before giving up (each costs ~1 ms)


def background_id(kind: str, number: int, recipe: str = "train") -> str:
    """The id of background ``number`` of type ``kind`` made by ``recipe``."""
    if kind not in TYPES:
        raise InputError(f"Unknown background type {kind!r}.", f"Use one of {', '.join(TYPES)}.")
    if recipe not in RECIPES:
        raise InputError(
            f"Unknown background recipe {recipe!r}.", f"Use one of {', '.join(RECIPES)}."
        )
    if TYPE_WEIGHTS[recipe][TYPES.index(kind)] == 0:
        kinds = [t for t, w in zip(TYPES, TYPE_WEIGHTS[recipe], strict=True) if w]
        raise InputError(
            f"The {recipe} recipe has no {kind} backgrounds.", f"Use one of {', '.join(kinds)}."
        )
    return f"{kind}-{recipe}-{number:05d}"


def parse_background_id(bg_id: str) -> tuple[str, str, int]:
    """``(type, recipe, number)`` of a background id."""
    m = _ID.match(bg_id)
    if not m:
        raise InputError(
            f"{bg_id!r} is not a background id.",
            "Use '<space|limb|surface|random>-<train|val>-<number>', e.g. limb-train-00042.",
        )
    return m.group(1), m.group(2), int(m.group(3))


def background_type(bg_id: str) -> str:
    """The type of a background id (``limb-val-00003`` -> ``limb``)."""
    return parse_background_id(bg_id)[0]


def sample_background_id(rng: np.random.Generator, recipe: str, n_backgrounds: int) -> str:
    """A random background id of ``recipe``: type by ``TYPE_WEIGHTS``, number below ``n``."""
    p = np.array(TYPE_WEIGHTS[recipe])
    kind = TYPES[int(rng.choice(len(TYPES), p=p / p.sum()))]
    return background_id(kind, int(rng.integers(0, n_backgrounds)), recipe)


def _rng(bg_id: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([zlib.crc32(bg_id.encode()), 0xB6]))


# ----------------------------------------------------------------------------- space


def fractal_noise(
    rng: np.random.Generator, height: int, width: int, octaves: int = 5, base: int = 4
) -> np.ndarray:
    """Value noise in [0, 1], ``[height, width]`` float32: octaves of upscaled random grids."""
    out = np.zeros((height, width), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        gh = base * 2**o
        gw = max(2, round(gh * width / height))
        grid = rng.random((gh, gw), dtype=np.float32)
        out += amp * cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= 0.55
    out /= total
    lo, hi = float(out.min()), float(out.max())
    return (out - lo) / max(hi - lo, 1e-6)


def stars(
    rng: np.random.Generator, img: np.ndarray, dark_only: bool = False, many: int = 900
) -> np.ndarray:
    """Sprinkle stars on ``img`` (uint8 RGB, in place): single pixels, a few brighter 3 px ones.

    With ``dark_only`` a star is drawn only where ``img`` is dark (not in front of a planet).
    """
    height, width = img.shape[:2]
    n = int(rng.integers(30, many))
    ys = rng.integers(0, height, n)
    xs = rng.integers(0, width, n)
    level = (rng.random(n) ** 3 * 200 + 25).astype(np.float32)
    tint = 1.0 - rng.random((n, 3)).astype(np.float32) * 0.25
    color = np.clip(level[:, None] * tint, 0, 255).astype(np.uint8)
    if dark_only:
        keep = img[ys, xs].max(axis=1) < 8
        ys, xs, level, color = ys[keep], xs[keep], level[keep], color[keep]
    img[ys, xs] = color
    for i in np.nonzero(level > 150)[0][:40]:
        c = tuple(int(v) for v in color[i])
        cv2.circle(img, (int(xs[i]), int(ys[i])), 1, c, -1, lineType=cv2.LINE_AA)
    return img


def _space(rng: np.random.Generator, recipe: str, width: int, height: int) -> np.ndarray:
    if recipe == "train":
        if rng.random() < 0.3:  # faint scattered light, made at 1/8 size
            g = fractal_noise(rng, height // 8, width // 8, octaves=3, base=2)
            tint = np.array([0.8, 0.9, 1.0], np.float32) * np.float32(rng.uniform(3, 12))
            small = (g[..., None] * tint).astype(np.uint8)
            img = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
        else:
            img = np.zeros((height, width, 3), np.uint8)
        return stars(rng, img)
    # val: denser star fields and a smooth glow from a bright body just outside the frame
    img = np.zeros((height, width, 3), np.uint8)
    if rng.random() < 0.5:
        yy, xx = np.mgrid[0 : height // 8, 0 : width // 8].astype(np.float32)
        a = rng.uniform(0, 2 * math.pi)
        t = (xx * math.cos(a) + yy * math.sin(a)) / (width / 8)
        glow = np.exp(-(t - t.min()) * rng.uniform(2, 6)) * rng.uniform(8, 30)
        small = (glow[..., None] * np.array([0.7, 0.85, 1.0])).astype(np.uint8)
        img = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    return stars(rng, img, many=2500)


# ----------------------------------------------------------------------------- Earth


def _lon0(rng: np.random.Generator, recipe: str) -> float:
    lo, hi = earth.VAL_LON
    if recipe == "val":
        return math.radians(rng.uniform(lo, hi))
    return math.radians(hi + rng.uniform(0.0, 360.0 - (hi - lo)))


def _sun(
    rng: np.random.Generator, centre: tuple[float, float, float] = (0.0, 0.0, 1.0)
) -> tuple[float, float, float]:
    """Mostly day, some near the terminator, a few at night, at ``centre`` (a unit vector of
    the local frame: the middle of the visible ground)."""
    u = rng.random()
    mu = (
        rng.uniform(0.25, 1.0)
        if u < 0.82
        else rng.uniform(-0.1, 0.25)
        if u < 0.94
        else rng.uniform(-1.0, -0.1)
    )
    phi = rng.uniform(0, 2 * math.pi)
    s = math.sqrt(max(0.0, 1.0 - mu * mu))
    c = np.asarray(centre, dtype=float)
    helper = np.array([1.0, 0.0, 0.0]) if abs(c[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = np.cross(c, helper)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(c, e1)
    v = s * math.cos(phi) * e1 + s * math.sin(phi) * e2 + mu * c
    return (float(v[0]), float(v[1]), float(v[2]))


def _view(rng: np.random.Generator, kind: str, recipe: str, aspect: float) -> earth.EarthView:
    if kind == "limb":
        u = rng.random()
        lo_hi = (300, 2000) if u < 0.6 else (2000, 20000) if u < 0.9 else (20000, 40000)
    else:
        lo_hi = (250, 4000)
    alt = math.exp(rng.uniform(math.log(lo_hi[0]), math.log(lo_hi[1])))
    horizon = math.asin(earth.R_EARTH / (earth.R_EARTH + alt))  # nadir to limb
    if kind == "limb":
        fov = math.radians(rng.uniform(20, 75))
        half_v = math.atan(math.tan(fov / 2) * aspect)
        tilt = horizon + rng.uniform(-0.85, 0.85) * half_v
    else:
        fov = math.radians(rng.uniform(8, 70))
        half_d = math.atan(math.tan(fov / 2) * math.hypot(1.0, aspect))
        room = horizon - half_d - 0.03
        if room <= 0:  # too wide for this altitude: narrow the lens until the frame fits
            fov = 2 * math.atan(math.tan(max(horizon - 0.05, 0.05)) / math.hypot(1.0, aspect))
            room = 0.0
        tilt = rng.uniform(0.0, room)
    return earth.EarthView(
        altitude_km=alt,
        fov=fov,
        tilt=tilt,
        roll=rng.uniform(0, 2 * math.pi),
        lat0=math.asin(rng.uniform(-0.95, 0.95)),
        lon0=_lon0(rng, recipe),
        heading=rng.uniform(0, 2 * math.pi),
        sun=(0.0, 0.0, 1.0),  # set once the view is accepted (see earth_frame)
    )


def _acceptable(c: earth.Coarse, kind: str, recipe: str) -> bool:
    if c.seam or not c.any_hit:
        return False
    if kind == "surface" and (not c.all_hit or c.km_per_px < MIN_SURFACE_KM):
        return False
    if kind == "limb":
        share = float(c.hit.mean())
        if not 0.06 <= share <= 0.96:
            return False
    reserved = earth.in_band(
        c.lon[c.hit], earth.VAL_LON, earth.LON_MARGIN if recipe == "train" else 0
    )
    if recipe == "val":  # validation shows mostly the reserved longitudes
        return float(reserved.mean()) >= VAL_SHARE
    # Training never shows a pixel of them (the coarse grid keeps a margin).
    return not reserved.any()


def _clouds(rng: np.random.Generator, recipe: str) -> earth.Clouds:
    r = clouds.RECIPES[recipe]
    u = rng.random()
    cover = (
        0.0
        if u < 0.08
        else rng.uniform(0.03, 0.35)
        if u < 0.38
        else rng.uniform(0.35, 0.7)
        if u < 0.78
        else rng.uniform(0.7, 0.9)
        if u < 0.93
        else rng.uniform(0.9, 1.0)
    )
    return earth.Clouds(
        recipe=recipe,
        cover=float(cover),
        tiles=tuple(int(t) for t in rng.integers(0, clouds.N_TILES, 6)),
        scale_km=math.exp(rng.uniform(math.log(600), math.log(5000))),
        octave_ratio=float(rng.uniform(*r.octave_ratio)),
        angle=float(rng.uniform(0, 2 * math.pi)),
        offsets=tuple((float(a), float(b)) for a, b in rng.uniform(0, clouds.TILE, (6, 2))),
        edge=float(rng.uniform(*r.edge)),
        height_km=float(rng.uniform(2, 12)),
        shadow=float(rng.uniform(0.25, 0.65)),
        veil=0.0 if rng.random() < 0.5 else float(rng.uniform(0.1, 0.5)),
        relief=float(rng.uniform(0.1, 0.8)),
    )


def _look(rng: np.random.Generator) -> earth.Look:
    return earth.Look(
        tau=float(rng.uniform(0.03, 0.2) if rng.random() < 0.9 else rng.uniform(0.2, 0.45)),
        glint=float(rng.uniform(60, 255)),
        glint_power=math.exp(rng.uniform(math.log(40), math.log(1000))),
        lights=float(rng.uniform(60, 220)) if rng.random() < 0.4 else 0.0,
        limb_km=float(rng.uniform(10, 40)),
        gain=float(rng.uniform(0.8, 1.25)),
        detail=float(rng.uniform(0.3, 0.6)),
    )


def earth_frame(
    rng: np.random.Generator, kind: str, recipe: str, width: int, height: int
) -> tuple[earth.EarthView, earth.Coarse]:
    """A view of ``kind`` that passes the checks, and its coarse geometry."""
    tex = earth.blue_marble()
    tex_w, tex_h = tex.size
    w, h = width // earth.WORK, height // earth.WORK
    for _ in range(_TRIES):
        view = _view(rng, kind, recipe, h / w)
        coarse = earth.coarse_view(view, w, h, tex_w, tex_h)
        if _acceptable(coarse, kind, recipe):
            # Day or night where the camera looks, not under it (a limb is far away).
            view = dataclasses.replace(view, sun=_sun(rng, coarse.centre))
            return view, earth.coarse_view(view, w, h, tex_w, tex_h)
    raise RuntimeError(f"no acceptable {kind} view in {_TRIES} tries")  # pragma: no cover


def _earth(rng: np.random.Generator, kind: str, recipe: str, width: int, height: int):
    _, coarse = earth_frame(rng, kind, recipe, width, height)
    c = _clouds(rng, recipe)
    look = _look(rng)
    detail_tile = int(rng.integers(0, clouds.N_TILES))
    planes = earth.render(coarse, earth.blue_marble(), c, look, detail_tile)
    small = cv2.merge([np.clip(p, 0, 255).astype(np.uint8) for p in planes])
    img = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    if kind == "limb":
        stars(rng, img, dark_only=True, many=900 if recipe == "train" else 2500)
    return img


def render_background(bg_id: str, width: int = 1280, height: int = 1024) -> np.ndarray:
    """The background ``bg_id`` as ``[height, width, 3]`` uint8 RGB."""
    kind, recipe, _ = parse_background_id(bg_id)
    rng = _rng(bg_id)
    if kind == "space":
        return _space(rng, recipe, width, height)
    if kind == "random":
        return textures.randomised(rng, width, height)
    return _earth(rng, kind, recipe, width, height)
