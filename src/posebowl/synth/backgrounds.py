"""Procedural backgrounds: black space with stars, an Earth limb, full-frame Earth.

A background is a pure function of its ``background_id`` (``"<kind>-<number>"``): the same id
gives the same pixels on any machine. Smooth fields (planet texture, glow) are computed at quarter
resolution and upscaled once, which keeps a 1280x1024 background to a few milliseconds.
Works with numpy 1.26 and 2.x.
"""

from __future__ import annotations

import math
import re
import zlib

import cv2
import numpy as np

from posebowl.errors import InputError

KINDS = ("space", "limb", "earth")
KIND_WEIGHTS = (0.35, 0.4, 0.25)
PLANET_SCALE = 4  # the planet is computed at 1/4 size and upscaled (it is smooth anyway)
_ID = re.compile(r"^(space|limb|earth)-(\d+)$")


def background_id(kind: str, number: int) -> str:
    """The id of background ``number`` of ``kind``."""
    if kind not in KINDS:
        raise InputError(f"Unknown background kind {kind!r}.", f"Use one of {', '.join(KINDS)}.")
    return f"{kind}-{number:05d}"


def parse_background_id(bg_id: str) -> tuple[str, int]:
    m = _ID.match(bg_id)
    if not m:
        raise InputError(
            f"{bg_id!r} is not a background id.",
            "Use '<space|limb|earth>-<number>', e.g. limb-00042.",
        )
    return m.group(1), int(m.group(2))


def _rng(bg_id: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([zlib.crc32(bg_id.encode()), 0xB6]))


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


def stars(rng: np.random.Generator, img: np.ndarray, dark_only: bool = False) -> np.ndarray:
    """Sprinkle stars on ``img`` (uint8 RGB, in place): single pixels, a few brighter 3 px ones.

    With ``dark_only`` a star is drawn only where ``img`` is dark (not in front of a planet).
    """
    height, width = img.shape[:2]
    n = int(rng.integers(30, 900))
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


def _planet(
    rng: np.random.Generator,
    h: int,
    w: int,
    cx: float,
    cy: float,
    radius: float,
    sun: np.ndarray,
) -> np.ndarray:
    """A planet disc with ocean, land, clouds, day/night shading and atmosphere glow (float32)."""
    dx = ((np.arange(w, dtype=np.float32) - cx) / radius)[None, :]
    dy = ((np.arange(h, dtype=np.float32) - cy) / radius)[:, None]
    r2 = dx * dx + dy * dy
    r = np.sqrt(r2)
    # Coverage of each pixel by the disc: a one-pixel ramp keeps the limb smooth when upscaled.
    cover = np.clip((1.0 - r) * np.float32(radius) + 0.5, 0.0, 1.0)
    nz = np.sqrt(np.clip(1.0 - r2, 0.0, 1.0))
    # Lambert shading of the sphere; a soft terminator.
    lit = np.clip(dx * sun[0] + dy * sun[1] + nz * sun[2], -0.2, 1.0)
    day = np.clip((lit + 0.15) / 1.15, 0.0, 1.0) ** 0.8

    land = fractal_noise(rng, h, w, octaves=5, base=3)
    clouds = fractal_noise(rng, h, w, octaves=6, base=4)
    land_frac = rng.uniform(0.55, 0.85)
    ocean = np.array(rng.uniform([5, 25, 60], [25, 60, 120]), np.float32)
    ground = np.array(rng.uniform([70, 75, 50], [130, 120, 90]), np.float32)
    is_land = np.clip((land - land_frac) * 12.0, 0.0, 1.0)[..., None]
    surface = ocean * (1 - is_land) + ground * is_land
    cloud_cover = rng.uniform(0.35, 0.65)
    cl = np.clip((clouds - cloud_cover) * rng.uniform(2.5, 5.0), 0.0, 1.0)[..., None]
    surface = surface * (1 - cl) + np.float32(235.0) * cl
    # Blue haze thickening towards the limb.
    haze = np.exp(-nz / 0.25)[..., None]
    surface = surface * (1 - 0.6 * haze) + np.array([110, 160, 235], np.float32) * 0.6 * haze
    img = surface * (day * cover)[..., None]
    # Atmosphere glow just outside the limb, lit on the day side.
    dist = r - 1.0
    thick = np.float32(rng.uniform(0.01, 0.03))
    glow = np.exp(-np.clip(dist, 0.0, None) / thick) * (1.0 - cover)
    lit_rim = np.clip(dx * sun[0] + dy * sun[1] + 0.3, 0.0, 1.0)
    img += (glow * lit_rim)[..., None] * np.array([90, 150, 255], np.float32)
    return img


def render_background(bg_id: str, width: int = 1280, height: int = 1024) -> np.ndarray:
    """The background ``bg_id`` as ``[height, width, 3]`` uint8 RGB."""
    kind, _ = parse_background_id(bg_id)
    rng = _rng(bg_id)
    if kind == "space":
        if rng.random() < 0.3:  # faint scattered light, made at 1/8 size
            g = fractal_noise(rng, height // 8, width // 8, octaves=3, base=2)
            tint = np.array([0.8, 0.9, 1.0], np.float32) * np.float32(rng.uniform(3, 12))
            small = (g[..., None] * tint).astype(np.uint8)
            img = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
        else:
            img = np.zeros((height, width, 3), np.uint8)
        return stars(rng, img)

    h, w = height // PLANET_SCALE, width // PLANET_SCALE
    sun = rng.normal(size=3)
    sun[2] = abs(sun[2]) + 0.3
    sun /= np.linalg.norm(sun)
    if kind == "limb":
        radius = float(rng.uniform(0.9, 4.0)) * w
        angle = rng.uniform(0, 2 * math.pi)
        # The limb passes through a random point of the frame; the centre lies beyond it.
        px, py = rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h
        cx, cy = px + radius * math.cos(angle), py + radius * math.sin(angle)
    else:
        radius = float(rng.uniform(4.0, 12.0)) * w
        cx = w / 2 + rng.uniform(-0.5, 0.5) * radius
        cy = h / 2 + rng.uniform(-0.5, 0.5) * radius
        # keep the frame inside the disc
        far = max(math.hypot(x - cx, y - cy) for x in (0, w) for y in (0, h))
        radius = max(radius, far * 1.02)
    planet = _planet(rng, h, w, cx, cy, radius, sun)
    img = cv2.resize(
        np.clip(planet, 0, 255).astype(np.uint8), (width, height), interpolation=cv2.INTER_CUBIC
    )
    if kind == "limb":
        stars(rng, img, dark_only=True)
    return img
