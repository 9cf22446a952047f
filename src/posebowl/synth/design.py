"""Procedural spacecraft designs and views as plain data, seeded by ``(design_id, view_id)``.

A *design* (one ``spacecraft_id``) is a list of :class:`Part` primitives in spacecraft
coordinates (metres-ish; the bus is about 1-2 units). A *view* is a camera/sun/attitude recipe
for one render of that design. Both are pure functions of their integer ids, so the same ids
give the same spacecraft on any machine, and every ``(design_id, view_id)`` render is an
independent task (see ``posebowl.synth.sprites``).

This module imports only the standard library and numpy (1.26 or 2.x): the Blender worker loads
it by file path inside the bpy venv, where the rest of posebowl (pandas, OpenCV) is absent.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

Vec3 = tuple[float, float, float]

# Materials the Blender worker knows how to build (see blender_worker.MATERIALS).
MATERIALS = (
    "gold_foil",
    "silver_foil",
    "cells",
    "white_paint",
    "bare_metal",
    "black",
    "radiator",
    "copper",
)

# Part kinds: box (size = full x, y, z), cylinder (radius, depth; axis local z, ``vertices``),
# cone (radius_bottom, radius_top, depth), sphere (radius,), dish (radius, depth; opens to +z),
# rod (radius,; from ``loc`` to ``end``), panel (width x, length y, thickness z; cells texture).
KINDS = ("box", "cylinder", "cone", "sphere", "dish", "rod", "panel")

_DESIGN_SALT = 0x5A7E11
_VIEW_SALT = 0x0B5E7E


@dataclass(frozen=True)
class Part:
    """One primitive: ``kind`` placed at ``loc`` with Euler XYZ ``rot`` (radians)."""

    kind: str
    loc: Vec3
    size: tuple[float, ...]
    material: str
    rot: Vec3 = (0.0, 0.0, 0.0)
    end: Vec3 | None = None  # rods only: the far end
    vertices: int = 24  # cylinders/cones: 6-8 gives a prism bus

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.material not in MATERIALS:
            raise ValueError(f"material must be one of {MATERIALS}, got {self.material!r}")
        if self.kind == "rod" and self.end is None:
            raise ValueError("a rod needs an end point")


@dataclass(frozen=True)
class Design:
    """One spacecraft: its id, its parts and the per-design material tints."""

    design_id: int
    parts: tuple[Part, ...]
    tints: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    archetype: str = "satellite"
    broken: bool = False

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class View:
    """One render of a design: attitude, camera, lights."""

    design_id: int
    view_id: int
    attitude: tuple[float, float, float, float]  # unit quaternion (w, x, y, z)
    focal_mm: float
    margin: float  # camera distance factor: 1.0 = bounding sphere touches the frame
    sun_dir: Vec3  # unit vector from the spacecraft towards the sun (world; camera on -y)
    sun_strength: float
    fill_strength: float  # earthshine from below, 0 = none
    fill_dir: Vec3
    exposure: float

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in key]))


def _unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=3)
    return v / max(float(np.linalg.norm(v)), 1e-9)


def _t(v: np.ndarray | list[float] | tuple[float, ...]) -> Vec3:
    return (float(v[0]), float(v[1]), float(v[2]))


def _foil(rng: np.random.Generator) -> str:
    return str(
        rng.choice(
            ["gold_foil", "silver_foil", "white_paint", "black", "bare_metal"],
            p=[0.4, 0.2, 0.2, 0.1, 0.1],
        )
    )


def _rot_to(direction: np.ndarray) -> Vec3:
    """Euler XYZ angles that turn local +z onto ``direction``."""
    d = direction / max(float(np.linalg.norm(direction)), 1e-9)
    # rotate about x by -asin(dy) then about y by atan2(dx, dz): R = Ry @ Rx applied to +z.
    rx = -math.asin(max(-1.0, min(1.0, float(d[1]))))
    ry = math.atan2(float(d[0]), float(d[2]))
    return (rx, ry, 0.0)


class _Builder:
    """Accumulates parts around a bus whose half-extents are ``half``."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.parts: list[Part] = []

    def add(self, part: Part) -> None:
        self.parts.append(part)

    def rod(self, a: np.ndarray, b: np.ndarray, radius: float, material: str) -> None:
        self.add(Part("rod", _t(a), (radius,), material, end=_t(b), vertices=8))

    def truss(self, a: np.ndarray, b: np.ndarray, width: float, material: str, bays: int) -> None:
        """A triangular lattice truss from ``a`` to ``b``: 3 longerons + diagonals."""
        axis = b - a
        length = float(np.linalg.norm(axis))
        u = axis / length
        helper = np.array([0.0, 0.0, 1.0]) if abs(u[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
        p = np.cross(u, helper)
        p /= np.linalg.norm(p)
        q = np.cross(u, p)
        corners = [width * (math.cos(t) * p + math.sin(t) * q) for t in (0, 2.1, 4.2)]
        r = width * 0.04
        for c in corners:
            self.rod(a + c, b + c, r, material)
        for i in range(bays):
            s0, s1 = a + axis * (i / bays), a + axis * ((i + 1) / bays)
            for j in range(3):
                self.rod(s0 + corners[j], s1 + corners[(j + 1) % 3], r * 0.7, material)

    def wing(
        self,
        root: np.ndarray,
        direction: np.ndarray,
        normal: np.ndarray,
        *,
        yoke: float,
        seg_len: float,
        width: float,
        segments: int,
        tilt: float,
        broken: bool,
    ) -> None:
        """A solar wing: a yoke rod from ``root`` then ``segments`` panels along ``direction``."""
        rng = self.rng
        d = direction / np.linalg.norm(direction)
        n = normal - d * float(np.dot(normal, d))
        n /= np.linalg.norm(n)
        # Tilt the panel normal about the wing axis.
        side = np.cross(d, n)
        n2 = n * math.cos(tilt) + side * math.sin(tilt)
        w_axis = np.cross(n2, d)
        start = root + d * yoke
        self.rod(root, start + d * 0.02, 0.015 + 0.01 * rng.random(), "bare_metal")
        gap = seg_len * 0.03
        # Panel local axes: x = width axis, y = length (along the wing), z = normal.
        rot = _euler_from_axes(w_axis, d, n2)
        missing = int(rng.integers(0, segments)) if broken and segments > 1 else -1
        for i in range(segments):
            if i == missing:
                continue
            centre = start + d * (seg_len * (i + 0.5) + gap * i)
            self.add(Part("panel", _t(centre), (width, seg_len, 0.02), "cells", rot=rot))
        if rng.random() < 0.5:  # a spar along the wing
            end = start + d * (seg_len * segments + gap * (segments - 1))
            self.rod(start, end, 0.01, "bare_metal")


def _euler_from_axes(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> Vec3:
    """Euler XYZ angles of the rotation whose columns are the unit vectors x, y, z."""
    m = np.stack([x, y, z], axis=1)
    # Blender's XYZ Euler: R = Rz @ Ry @ Rx.
    sy = -float(m[2, 0])
    sy = max(-1.0, min(1.0, sy))
    ry = math.asin(sy)
    if abs(sy) < 0.99999:
        rx = math.atan2(float(m[2, 1]), float(m[2, 2]))
        rz = math.atan2(float(m[1, 0]), float(m[0, 0]))
    else:
        rx = math.atan2(-float(m[1, 2]), float(m[1, 1]))
        rz = 0.0
    return (rx, ry, rz)


def _face_points(half: np.ndarray, axis: int, sign: float, rng: np.random.Generator) -> np.ndarray:
    """A random point on the face of the bus box normal to ``axis`` on the ``sign`` side."""
    p = (rng.random(3) * 2 - 1) * half * 0.7
    p[axis] = sign * half[axis]
    return p


def _face_mount(half: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random point on a random face of the bus box, and that face's outward normal."""
    axis = int(rng.integers(0, 3))
    sign = float(rng.choice([-1.0, 1.0]))
    base = _face_points(half, axis, sign, rng)
    out = np.zeros(3)
    out[axis] = sign
    return base, out


def make_design(design_id: int) -> Design:
    """The spacecraft ``design_id``: a deterministic, broad random design."""
    rng = _rng(_DESIGN_SALT, design_id)
    b = _Builder(rng)
    archetype = str(
        rng.choice(["satellite", "cylinder", "station", "probe"], p=[0.5, 0.25, 0.1, 0.15])
    )
    broken = bool(rng.random() < 0.12)
    bus_mat = _foil(rng)

    # --- the bus ---
    if archetype in ("satellite", "probe"):
        half = rng.uniform(0.3, 1.0, size=3)
        if archetype == "probe":
            half *= 0.6
        b.add(Part("box", (0.0, 0.0, 0.0), _t(half * 2), bus_mat))
        if rng.random() < 0.35:  # a second module stacked on +z
            h2 = half * rng.uniform(0.5, 1.0, size=3)
            h2[2] = half[2] * rng.uniform(0.2, 0.6)
            b.add(Part("box", (0.0, 0.0, float(half[2] + h2[2])), _t(h2 * 2), _foil(rng)))
            half = half.copy()
            half[2] += h2[2] * 2
    else:
        r = rng.uniform(0.35, 0.9)
        h = rng.uniform(0.8, 3.0) if archetype == "cylinder" else rng.uniform(1.5, 3.5)
        verts = int(rng.choice([6, 8, 12, 32], p=[0.2, 0.2, 0.1, 0.5]))
        b.add(Part("cylinder", (0.0, 0.0, 0.0), (r, h), bus_mat, vertices=verts))
        half = np.array([r, r, h / 2])
        if rng.random() < 0.5:  # a second, narrower stage
            r2, h2 = r * rng.uniform(0.4, 0.9), h * rng.uniform(0.2, 0.6)
            z = h / 2 + h2 / 2
            b.add(Part("cylinder", (0.0, 0.0, float(z)), (r2, h2), _foil(rng), vertices=verts))
            half = half.copy()
            half[2] += h2
        if rng.random() < 0.3:  # body-mounted solar cells around the cylinder
            b.add(Part("cylinder", (0.0, 0.0, 0.0), (r * 1.01, h * 0.6), "cells", vertices=verts))

    size = float(np.max(half))

    # --- engine nozzle on -z ---
    if rng.random() < 0.45:
        rn = float(half[0] * rng.uniform(0.2, 0.5))
        depth = rn * rng.uniform(1.0, 2.0)
        b.add(
            Part(
                "cone",
                (0.0, 0.0, float(-half[2] - depth / 2)),
                (rn, rn * 0.4, depth),
                str(rng.choice(["copper", "bare_metal", "black"])),
                vertices=24,
            )
        )

    # --- solar wings ---
    n_wings = int(rng.choice([0, 1, 2, 3, 4, 6], p=[0.07, 0.13, 0.45, 0.08, 0.22, 0.05]))
    if archetype == "station":
        n_wings = int(rng.choice([4, 6, 8]))
    seg_len = size * rng.uniform(0.5, 1.6)
    width = size * rng.uniform(0.6, 1.6)
    segments = int(rng.integers(1, 6))
    tilt = float(rng.uniform(-0.6, 0.6))
    yoke = size * rng.uniform(0.05, 0.8)
    round_wings = rng.random() < 0.1
    base_axes = [
        np.array([0.0, 1.0, 0.0]),
        np.array([0.0, -1.0, 0.0]),
        np.array([1.0, 0.0, 0.0]),
        np.array([-1.0, 0.0, 0.0]),
    ]
    for w in range(n_wings):
        d = base_axes[w % 4].copy()
        level = (w // 4) * 2 - 1 if n_wings > 4 else 0
        root = d * half
        root[2] = level * half[2] * 0.6 if n_wings > 4 else rng.uniform(-0.3, 0.3) * half[2]
        if rng.random() < 0.15:  # wings canted out of plane
            d = d + np.array([0.0, 0.0, rng.uniform(-0.5, 0.5)])
        d /= np.linalg.norm(d)
        if round_wings:
            end = root + d * (yoke + width * 0.5)
            b.rod(root, end, 0.02, "bare_metal")
            b.add(
                Part(
                    "cylinder",
                    _t(end + d * width * 0.55),
                    (width * 0.55, 0.02),
                    "cells",
                    rot=_rot_to(np.cross(d, [0.0, 0.0, 1.0]) + 1e-3),
                    vertices=10,
                )
            )
            continue
        this_broken = broken and w == 0
        b.wing(
            root,
            d,
            np.array([0.0, 0.0, 1.0]) if abs(d[2]) < 0.9 else np.array([1.0, 0.0, 0.0]),
            yoke=yoke,
            seg_len=seg_len,
            width=width,
            segments=segments,
            tilt=tilt + (rng.uniform(0.6, 1.4) if this_broken else 0.0),
            broken=this_broken,
        )

    # --- body-mounted cells on box buses ---
    if archetype in ("satellite", "probe") and rng.random() < 0.25:
        for sign in (-1.0, 1.0):
            loc = np.array([sign * (half[0] + 0.011), 0.0, 0.0])
            b.add(
                Part(
                    "panel",
                    _t(loc),
                    (float(half[1] * 1.8), float(half[2] * 1.8), 0.02),
                    "cells",
                    rot=(0.0, math.pi / 2, 0.0),
                )
            )

    # --- dish antennas ---
    for _ in range(int(rng.choice([0, 1, 2], p=[0.35, 0.5, 0.15]))):
        base, out = _face_mount(half, rng)
        aim = out + rng.normal(scale=0.3, size=3)
        mast = size * rng.uniform(0.05, 0.6)
        top = base + out * mast
        b.rod(base, top, 0.02, "bare_metal")
        rd = size * rng.uniform(0.2, 1.1)
        mat = str(rng.choice(["white_paint", "gold_foil", "silver_foil", "bare_metal"]))
        b.add(Part("dish", _t(top), (rd, rd * rng.uniform(0.15, 0.4)), mat, rot=_rot_to(aim)))
        if rng.random() < 0.6:  # feed horn strut
            aim_u = aim / np.linalg.norm(aim)
            b.rod(top, top + aim_u * rd * 0.7, 0.008, "bare_metal")

    # --- thin booms (magnetometers), whip antennas ---
    for _ in range(int(rng.choice([0, 1, 2, 3], p=[0.3, 0.35, 0.25, 0.1]))):
        base, out = _face_mount(half, rng)
        d = out + rng.normal(scale=0.25, size=3)
        d /= np.linalg.norm(d)
        length = size * rng.uniform(1.0, 4.0)
        tip = base + d * length
        b.rod(base, tip, float(rng.uniform(0.008, 0.03)), str(rng.choice(["bare_metal", "black"])))
        if rng.random() < 0.5:
            s = size * rng.uniform(0.04, 0.12)
            b.add(Part("box", _t(tip), (s, s, s), str(rng.choice(["white_paint", "gold_foil"]))))
    for _ in range(int(rng.choice([0, 1, 2, 4], p=[0.35, 0.25, 0.25, 0.15]))):
        base, out = _face_mount(half, rng)
        d = out + rng.normal(scale=0.5, size=3)
        d /= np.linalg.norm(d)
        b.rod(base, base + d * size * rng.uniform(0.5, 2.0), 0.006, "bare_metal")

    # --- a truss with something at its end ---
    if archetype == "station" or rng.random() < 0.2:
        axis = int(rng.integers(0, 3)) if archetype != "station" else 2
        sign = float(rng.choice([-1.0, 1.0]))
        out = np.zeros(3)
        out[axis] = sign
        base = out * half
        length = size * rng.uniform(1.5, 4.5)
        tip = base + out * length
        tw = size * rng.uniform(0.08, 0.25)
        b.truss(
            base, tip, tw, str(rng.choice(["bare_metal", "white_paint"])), int(rng.integers(3, 9))
        )
        if rng.random() < 0.7:
            s = size * rng.uniform(0.2, 0.5)
            b.add(Part("box", _t(tip + out * s / 2), (s, s, s), _foil(rng)))
        if archetype == "station":  # panels at the truss end, like a power tower
            for sgn in (-1.0, 1.0):
                side = np.array([1.0, 0.0, 0.0]) * sgn
                b.wing(
                    tip,
                    side,
                    np.array([0.0, 1.0, 0.0]),
                    yoke=tw,
                    seg_len=seg_len,
                    width=width,
                    segments=max(2, segments),
                    tilt=tilt,
                    broken=False,
                )

    # --- instruments: tubes, cones, star trackers ---
    for _ in range(int(rng.integers(0, 5))):
        base, out = _face_mount(half, rng)
        s = size * rng.uniform(0.08, 0.35)
        kind = str(rng.choice(["cylinder", "box", "cone", "sphere"], p=[0.4, 0.3, 0.2, 0.1]))
        mat = str(rng.choice(["black", "white_paint", "bare_metal", "gold_foil", "silver_foil"]))
        loc = base + out * s * 0.5
        if kind == "cylinder":
            b.add(Part(kind, _t(loc), (s * 0.4, s * 1.2), mat, rot=_rot_to(out)))
        elif kind == "cone":
            b.add(Part(kind, _t(loc), (s * 0.4, s * 0.15, s), mat, rot=_rot_to(-out)))
        elif kind == "sphere":
            b.add(Part(kind, _t(loc), (s * 0.4,), mat))
        else:
            b.add(Part(kind, _t(loc), (s, s * 0.7, s * 0.8), mat))

    # --- radiators: thin white plates off a side ---
    for _ in range(int(rng.choice([0, 1, 2], p=[0.55, 0.3, 0.15]))):
        axis = int(rng.choice([0, 1]))
        sign = float(rng.choice([-1.0, 1.0]))
        out = np.zeros(3)
        out[axis] = sign
        plate = np.array([0.02, 0.02, 0.02])
        other = 1 - axis
        plate[other] = half[other] * rng.uniform(1.0, 2.5)
        plate[2] = half[2] * rng.uniform(0.8, 2.0)
        loc = out * (half[axis] + plate[other] * 0.0 + 0.05)
        b.add(Part("box", _t(loc), _t(plate), "radiator"))

    tints = {
        "gold_foil": (1.0, float(rng.uniform(0.55, 0.8)), float(rng.uniform(0.15, 0.4))),
        "silver_foil": _t(np.full(3, rng.uniform(0.7, 0.95))),
        "cells": (
            float(rng.uniform(0.01, 0.05)),
            float(rng.uniform(0.02, 0.06)),
            float(rng.uniform(0.06, 0.2)),
        ),
        "white_paint": _t(np.full(3, rng.uniform(0.6, 0.85))),
    }
    return Design(design_id, tuple(b.parts), tints, archetype, broken)


def random_quaternion(rng: np.random.Generator) -> tuple[float, float, float, float]:
    """A uniformly random rotation as a unit quaternion (w, x, y, z) (Shoemake's method)."""
    u1, u2, u3 = rng.random(3)
    a, c = math.sqrt(1 - u1), math.sqrt(u1)
    w = c * math.cos(2 * math.pi * u3)
    x = a * math.sin(2 * math.pi * u2)
    y = a * math.cos(2 * math.pi * u2)
    z = c * math.sin(2 * math.pi * u3)
    return (w, x, y, z)


def make_view(design_id: int, view_id: int) -> View:
    """View ``view_id`` of design ``design_id``; the camera looks along +y from -y."""
    rng = _rng(_VIEW_SALT, design_id, view_id)
    sun = _unit(rng)
    if rng.random() < 0.2:  # backlit: the camera sees mostly the shadowed side
        sun = np.array([0.0, 1.0, 0.0]) + rng.normal(scale=0.4, size=3)
        sun /= np.linalg.norm(sun)
    elif sun[1] > 0.3:  # keep most views front-lit
        sun[1] = -sun[1]
    fill = np.array([0.0, 0.0, -1.0]) + rng.normal(scale=0.5, size=3)
    fill /= np.linalg.norm(fill)
    return View(
        design_id=design_id,
        view_id=view_id,
        attitude=random_quaternion(rng),
        focal_mm=float(rng.uniform(35, 120)),
        margin=float(rng.uniform(1.0, 1.08)),
        sun_dir=_t(sun),
        sun_strength=float(rng.uniform(2.5, 7.0)),
        fill_strength=float(rng.choice([0.0, rng.uniform(0.05, 0.6)], p=[0.4, 0.6])),
        fill_dir=_t(fill),
        exposure=float(rng.uniform(-0.5, 0.5)),
    )
