"""Sharp, tileable cloud fields: a bank of periodic, domain-warped fractal tiles per recipe.

A tile is a pure function of ``(recipe, tile index)``: spectral (FFT) fractal noise with a
power-law spectrum, domain-warped by two more such fields, then rank-transformed so its values
are uniform in [0, 1] (a threshold ``t`` then covers a share ``1 - t`` of the tile). Tiles are
periodic, so they are sampled with ``cv2.BORDER_WRAP`` at any scale and offset. A frame samples
a few tiles at several scales (octaves) and thresholds the sum with a narrow ramp, which gives
hard, fractal cloud edges at every zoom; octaves finer than a pixel are read from a tile
averaged down by 2, 4, ... (:func:`tile_level`), so nothing aliases. Tiles are made once per
process (``functools.cache``), about 30-70 ms each.

The training and validation recipes use different tiles (different seeds) and different
generators: training tiles are domain-warped fractal fields (blobs and bands), validation tiles
are billowy (the absolute value of the field: puffy cells parted by clear lanes, like open-cell
convection), barely warped, with octaves further apart. So the validation clouds are fields the
training frames never showed.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

TILE = 512  # px, square, periodic
N_TILES = 8  # per recipe


@dataclass(frozen=True)
class CloudRecipe:
    """Parameter ranges of the tiles and of how a frame uses them."""

    salt: int
    beta: tuple[float, float]  # spectral slope of the base field (power ~ k^-beta)
    warp: tuple[float, float]  # domain-warp amplitude, share of the tile
    stretch: tuple[float, float]  # anisotropy of the spectrum (1 = isotropic)
    edge: tuple[float, float]  # width of the threshold ramp (smaller = harder edges)
    octave_ratio: tuple[float, float]  # scale ratio between the octaves a frame samples
    billow: bool = False  # |noise|: puffy cells parted by clear lanes (open-cell convection)


RECIPES = {
    "train": CloudRecipe(
        salt=0xC10D,
        beta=(2.6, 3.6),
        warp=(0.03, 0.14),
        stretch=(1.0, 1.8),
        edge=(0.01, 0.09),
        octave_ratio=(3.0, 5.0),
    ),
    # Billowy open cells, barely warped, octaves further apart: a field training never sees.
    "val": CloudRecipe(
        salt=0x7A1C,
        beta=(2.7, 3.3),
        warp=(0.0, 0.03),
        stretch=(1.0, 1.6),
        edge=(0.005, 0.05),
        octave_ratio=(5.0, 7.0),
        billow=True,
    ),
}


def _spectral(rng: np.random.Generator, n: int, beta: float, stretch: float, angle: float):
    """Periodic fractal noise ``[n, n]`` float32, zero mean, unit variance."""
    ky = np.fft.fftfreq(n)[:, None]
    kx = np.fft.rfftfreq(n)[None, :]
    c, s = math.cos(angle), math.sin(angle)
    u = (kx * c + ky * s) * stretch
    v = (-kx * s + ky * c) / stretch
    k = np.sqrt(u * u + v * v)
    k[0, 0] = 1.0
    amp = k ** (-beta / 2.0)
    amp[0, 0] = 0.0
    amp[k > 0.5] = 0.0  # no energy above Nyquist after stretching (no aliasing)
    spec = amp * (rng.normal(size=k.shape) + 1j * rng.normal(size=k.shape))
    field = np.fft.irfft2(spec, s=(n, n)).astype(np.float32)
    field -= field.mean()
    return field / max(float(field.std()), 1e-9)


def _uniform(field: np.ndarray) -> np.ndarray:
    """Rank-transform ``field`` to values uniform in [0, 1) (level sets unchanged)."""
    flat = field.ravel()
    ranks = np.empty(flat.size, np.float32)
    ranks[np.argsort(flat, kind="stable")] = np.arange(flat.size, dtype=np.float32) / flat.size
    return ranks.reshape(field.shape)


@functools.cache
def tile(recipe: str, index: int) -> np.ndarray:
    """Cloud tile ``index`` of ``recipe``: ``[TILE, TILE]`` float32 uniform in [0, 1), periodic."""
    r = RECIPES[recipe]
    rng = np.random.default_rng(np.random.SeedSequence([r.salt, index]))
    beta = float(rng.uniform(*r.beta))
    stretch = float(rng.uniform(*r.stretch))
    angle = float(rng.uniform(0, math.pi))
    base = _spectral(rng, TILE, beta, stretch, angle)
    if r.billow:
        base = np.abs(base)
    warp = float(rng.uniform(*r.warp)) * TILE
    wx = _spectral(rng, TILE, 3.6, 1.0, 0.0) * np.float32(warp / 3.0)
    wy = _spectral(rng, TILE, 3.6, 1.0, 0.0) * np.float32(warp / 3.0)
    grid = np.arange(TILE, dtype=np.float32)
    mx = grid[None, :] + wx
    my = grid[:, None] + wy
    warped = cv2.remap(base, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
    return _uniform(warped)


@functools.cache
def tile_level(recipe: str, index: int, level: int) -> np.ndarray:
    """Tile ``index`` averaged down ``level`` times by 2 (still periodic: whole 2x2 blocks)."""
    if level <= 0:
        return tile(recipe, index)
    up = tile_level(recipe, index, level - 1)
    n = up.shape[0] // 2
    return cv2.resize(up, (n, n), interpolation=cv2.INTER_AREA)


def sample(
    tile_field: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    scale: float,
    angle: float,
    offset: tuple[float, float],
) -> np.ndarray:
    """``tile_field`` at chart points ``(x, y)`` (any unit; ``scale`` units per tile), wrapped.

    ``x``, ``y`` are float32 arrays of one shape; the tile is rotated by ``angle`` and shifted by
    ``offset`` (tile px).
    """
    c, s = math.cos(angle), math.sin(angle)
    f = TILE / scale
    mx = (x * np.float32(c * f) - y * np.float32(s * f)) + np.float32(offset[0])
    my = (x * np.float32(s * f) + y * np.float32(c * f)) + np.float32(offset[1])
    return cv2.remap(tile_field, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
