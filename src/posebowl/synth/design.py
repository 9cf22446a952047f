"""Procedural spacecraft designs and views as plain data, seeded by ``(design_id, view_id)``.

A *design* (one ``spacecraft_id``) is a list of :class:`Part` primitives in spacecraft
coordinates (metres-ish; the bus is about 1-2 units). A *view* is a camera/sun/attitude recipe
for one render of that design. Both are pure functions of their integer ids, so the same ids
give the same spacecraft on any machine, and every ``(design_id, view_id)`` render is an
independent task (see ``posebowl.synth.sprites``).

Designs come in **families** (:data:`FAMILIES`), one per ``design_id % 7`` slot, each a recipe
modelled on real spacecraft: ``boxsat`` (box bus, solar wings of 1-6 panels, dishes, radiators:
communication and Earth-observation satellites), ``cylsat`` (telescopes and spinners),
``octsat`` (prism buses), ``station`` (trusses, modules, many wings), ``smallsat`` (CubeSats with
deployable panels and tape antennas) and ``probe`` (deep-space probes: a high-gain dish larger
than the bus, RTGs on booms, a long magnetometer boom). ``probe`` is the **held-out family**
(:data:`HELD_OUT_FAMILY`): its recipe (a dish wider than the bus, RTGs) appears in no other
family, so detectors can be validated on a kind of spacecraft they never saw. Every part has a
``role``, so tests can check what a family contains.

This module imports only the standard library and numpy (1.26 or 2.x): the Blender worker loads
it by file path inside the bpy venv, where the rest of posebowl (pandas, OpenCV) is absent.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

Vec3 = tuple[float, float, float]

# Materials the Blender worker knows how to build (see blender_worker.build_materials).
MATERIALS = (
    "gold_foil",
    "silver_foil",
    "black_foil",
    "cells",
    "white_paint",
    "grey_paint",
    "bare_metal",
    "black",
    "radiator",
    "copper",
    "gold_mesh",
)

# Part kinds: box (size = full x, y, z), cylinder (radius, depth; axis local z, ``vertices``),
# cone (radius_bottom, radius_top, depth), sphere (radius,), dish (radius, depth; opens to +z),
# rod (radius,; from ``loc`` to ``end``), panel (width x, length y, thickness z; cells texture).
KINDS = ("box", "cylinder", "cone", "sphere", "dish", "rod", "panel")

FAMILIES = ("boxsat", "boxsat", "cylsat", "octsat", "station", "smallsat", "probe")
HELD_OUT_FAMILY = "probe"
TRAIN_DISH_MAX = 0.9  # dish radius / bus size in every family but the held-out one
PROBE_DISH = (1.3, 2.4)  # the held-out family's high-gain dish, same units

_DESIGN_SALT = 0x5A7E12
_VIEW_SALT = 0x0B5E7F


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
    role: str = ""  # bus, wing, dish, boom, truss, rtg, instrument, thruster, radiator, ...

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.material not in MATERIALS:
            raise ValueError(f"material must be one of {MATERIALS}, got {self.material!r}")
        if self.kind == "rod" and self.end is None:
            raise ValueError("a rod needs an end point")


@dataclass(frozen=True)
class Design:
    """One spacecraft: its id, family, parts and per-design material tints."""

    design_id: int
    parts: tuple[Part, ...]
    tints: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    family: str = "boxsat"
    bus_size: float = 1.0  # the bus's largest half-extent (dish sizes are relative to it)
    broken: bool = False

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


LIGHTINGS = ("hard_sun", "earthshine", "partly", "dark")
LIGHTING_WEIGHTS = (0.35, 0.35, 0.2, 0.1)


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
    fill_strength: float  # earthshine, 0 = none
    fill_dir: Vec3
    exposure: float
    lighting: str = "hard_sun"  # one of LIGHTINGS
    world_strength: float = 0.12  # the sky/Earth environment seen in reflections

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def family_of(design_id: int) -> str:
    """The family of design ``design_id`` (by its slot ``design_id % 7``)."""
    return FAMILIES[int(design_id) % len(FAMILIES)]


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in key]))


def _unit(v: np.ndarray | list[float]) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    return v / max(float(np.linalg.norm(v)), 1e-9)


def _t(v: np.ndarray | list[float] | tuple[float, ...]) -> Vec3:
    return (float(v[0]), float(v[1]), float(v[2]))


def _pick(rng: np.random.Generator, options: dict[str, float]) -> str:
    names = list(options)
    p = np.array([options[n] for n in names], dtype=float)
    return str(names[int(rng.choice(len(names), p=p / p.sum()))])


def _foil(rng: np.random.Generator) -> str:
    return _pick(
        rng,
        {
            "gold_foil": 0.38,
            "silver_foil": 0.2,
            "white_paint": 0.17,
            "black_foil": 0.1,
            "grey_paint": 0.08,
            "bare_metal": 0.07,
        },
    )


def _rot_to(direction: np.ndarray) -> Vec3:
    """Euler XYZ angles that turn local +z onto ``direction``."""
    d = _unit(direction)
    # rotate about x by -asin(dy) then about y by atan2(dx, dz): R = Ry @ Rx applied to +z.
    rx = -math.asin(max(-1.0, min(1.0, float(d[1]))))
    ry = math.atan2(float(d[0]), float(d[2]))
    return (rx, ry, 0.0)


def _euler_from_axes(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> Vec3:
    """Euler XYZ angles of the rotation whose columns are the unit vectors x, y, z."""
    m = np.stack([x, y, z], axis=1)
    # Blender's XYZ Euler: R = Rz @ Ry @ Rx.
    sy = max(-1.0, min(1.0, -float(m[2, 0])))
    ry = math.asin(sy)
    if abs(sy) < 0.99999:
        rx = math.atan2(float(m[2, 1]), float(m[2, 2]))
        rz = math.atan2(float(m[1, 0]), float(m[0, 0]))
    else:
        rx = math.atan2(-float(m[1, 2]), float(m[1, 1]))
        rz = 0.0
    return (rx, ry, rz)


def _perp(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors perpendicular to ``u`` and to each other."""
    helper = np.array([0.0, 0.0, 1.0]) if abs(u[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    p = _unit(np.cross(u, helper))
    return p, np.cross(u, p)


class _Builder:
    """Accumulates parts around a bus whose half-extents are ``half``."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.parts: list[Part] = []
        self.half = np.ones(3)

    @property
    def size(self) -> float:
        return float(np.max(self.half))

    def add(self, part: Part) -> None:
        self.parts.append(part)

    # --- mounting points -------------------------------------------------------------

    def face_mount(self, axes: tuple[int, ...] = (0, 1, 2)) -> tuple[np.ndarray, np.ndarray]:
        """A random point on a random face of the bus box, and that face's outward normal."""
        rng = self.rng
        axis = int(rng.choice(axes))
        sign = float(rng.choice([-1.0, 1.0]))
        p = (rng.random(3) * 2 - 1) * self.half * 0.7
        p[axis] = sign * self.half[axis]
        out = np.zeros(3)
        out[axis] = sign
        return p, out

    # --- parts -----------------------------------------------------------------------

    def rod(self, a: np.ndarray, b: np.ndarray, radius: float, material: str, role: str) -> None:
        self.add(Part("rod", _t(a), (radius,), material, end=_t(b), vertices=8, role=role))

    def truss(
        self, a: np.ndarray, b: np.ndarray, width: float, material: str, bays: int, role: str
    ) -> None:
        """A triangular lattice truss from ``a`` to ``b``: 3 longerons + diagonals."""
        axis = b - a
        p, q = _perp(_unit(axis))
        corners = [width * (math.cos(t) * p + math.sin(t) * q) for t in (0, 2.1, 4.2)]
        r = width * 0.04
        for c in corners:
            self.rod(a + c, b + c, r, material, role)
        for i in range(bays):
            s0, s1 = a + axis * (i / bays), a + axis * ((i + 1) / bays)
            for j in range(3):
                self.rod(s0 + corners[j], s1 + corners[(j + 1) % 3], r * 0.7, material, role)

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
        broken: bool = False,
        thickness: float = 0.02,
    ) -> None:
        """A solar wing: a yoke rod from ``root`` then ``segments`` panels along ``direction``."""
        rng = self.rng
        d = _unit(direction)
        n = _unit(normal - d * float(np.dot(normal, d)))
        side = np.cross(d, n)
        n2 = n * math.cos(tilt) + side * math.sin(tilt)
        w_axis = np.cross(n2, d)
        start = root + d * yoke
        if yoke > 0.02:
            self.rod(root, start + d * 0.02, 0.012 + 0.01 * rng.random(), "bare_metal", "yoke")
        gap = seg_len * 0.03
        rot = _euler_from_axes(w_axis, d, n2)  # panel axes: x = width, y = length, z = normal
        missing = int(rng.integers(0, segments)) if broken and segments > 1 else -1
        for i in range(segments):
            if i == missing:
                continue
            centre = start + d * (seg_len * (i + 0.5) + gap * i)
            self.add(
                Part(
                    "panel", _t(centre), (width, seg_len, thickness), "cells", rot=rot, role="wing"
                )
            )
        if rng.random() < 0.5:  # a spar along the wing
            end = start + d * (seg_len * segments + gap * (segments - 1))
            self.rod(start, end, 0.01, "bare_metal", "wing")

    def dish(
        self,
        base: np.ndarray,
        aim: np.ndarray,
        radius: float,
        material: str,
        *,
        mast: float,
        feed: str = "strut",
        role: str = "dish",
    ) -> None:
        """A parabolic dish on a mast from ``base``, opening towards ``aim``, with its feed."""
        rng = self.rng
        u = _unit(aim)
        top = base + u * mast
        if mast > 0.01:
            self.rod(base, top, max(0.015, radius * 0.04), "bare_metal", role)
        depth = radius * float(rng.uniform(0.15, 0.4))
        self.add(Part("dish", _t(top), (radius, depth), material, rot=_rot_to(u), role=role))
        focus = top + u * radius * float(rng.uniform(0.5, 0.9))
        if feed == "strut":
            self.rod(top, focus, max(0.006, radius * 0.015), "bare_metal", role)
        elif feed == "tripod":
            p, q = _perp(u)
            for t in (0.0, 2.1, 4.2):
                rim = top + u * depth + radius * 0.92 * (math.cos(t) * p + math.sin(t) * q)
                self.rod(rim, focus, max(0.005, radius * 0.01), "bare_metal", role)
        if feed != "none":
            s = radius * 0.08
            self.add(
                Part(
                    "cone", _t(focus), (s, s * 0.4, s * 1.5), "white_paint", _rot_to(-u), role=role
                )
            )

    def boom(
        self, base: np.ndarray, d: np.ndarray, length: float, radius: float, tip: bool
    ) -> None:
        """A thin boom (magnetometer, antenna) from ``base`` along ``d``."""
        rng = self.rng
        end = base + _unit(d) * length
        self.rod(base, end, radius, _pick(rng, {"bare_metal": 0.6, "black": 0.4}), "boom")
        if tip:
            s = float(self.size * rng.uniform(0.04, 0.12))
            mat = _pick(rng, {"white_paint": 0.5, "gold_foil": 0.3, "black_foil": 0.2})
            self.add(Part("box", _t(end), (s, s, s), mat, role="boom"))

    def instrument(self) -> None:
        """A tube, box, cone or sphere on a random face of the bus."""
        rng = self.rng
        base, out = self.face_mount()
        s = self.size * float(rng.uniform(0.08, 0.35))
        kind = _pick(rng, {"cylinder": 0.4, "box": 0.3, "cone": 0.2, "sphere": 0.1})
        mat = _pick(
            rng,
            {
                "black": 0.3,
                "white_paint": 0.2,
                "bare_metal": 0.2,
                "gold_foil": 0.15,
                "black_foil": 0.15,
            },
        )
        loc = base + out * s * 0.5
        if kind == "cylinder":
            self.add(
                Part(kind, _t(loc), (s * 0.4, s * 1.2), mat, rot=_rot_to(out), role="instrument")
            )
            if rng.random() < 0.4:  # a sun-shade ring at its mouth
                mouth = loc + out * s * 0.6
                self.add(
                    Part(
                        "cone",
                        _t(mouth),
                        (s * 0.42, s * 0.6, s * 0.3),
                        "black",
                        _rot_to(out),
                        role="instrument",
                    )
                )
        elif kind == "cone":
            self.add(
                Part(
                    kind, _t(loc), (s * 0.4, s * 0.15, s), mat, rot=_rot_to(-out), role="instrument"
                )
            )
        elif kind == "sphere":
            self.add(Part(kind, _t(loc), (s * 0.4,), mat, role="instrument"))
        else:
            self.add(Part(kind, _t(loc), (s, s * 0.7, s * 0.8), mat, role="instrument"))

    def thrusters(self, z: float, spread: np.ndarray) -> None:
        """Four small nozzles at the corners of the -z (or +z) face."""
        r = self.size * float(self.rng.uniform(0.03, 0.07))
        sign = 1.0 if z > 0 else -1.0
        for sx in (-1.0, 1.0):
            for sy in (-1.0, 1.0):
                loc = np.array([sx * spread[0], sy * spread[1], z + sign * r])
                self.add(
                    Part(
                        "cone",
                        _t(loc),
                        (r * 0.4, r, r * 2),
                        "bare_metal",
                        (0.0, 0.0, 0.0) if sign > 0 else (math.pi, 0.0, 0.0),
                        vertices=12,
                        role="thruster",
                    )
                )

    def engine(self, z: float, radius: float) -> None:
        """A main engine bell below the bus."""
        depth = radius * float(self.rng.uniform(1.0, 2.0))
        mat = _pick(self.rng, {"copper": 0.4, "bare_metal": 0.4, "black": 0.2})
        self.add(
            Part(
                "cone",
                (0.0, 0.0, z - depth / 2),
                (radius, radius * 0.4, depth),
                mat,
                role="thruster",
            )
        )

    def radiator(self) -> None:
        """A thin white plate standing off a side of the bus."""
        rng = self.rng
        axis = int(rng.choice([0, 1]))
        sign = float(rng.choice([-1.0, 1.0]))
        out = np.zeros(3)
        out[axis] = sign
        plate = np.array([0.02, 0.02, 0.02])
        other = 1 - axis
        plate[other] = self.half[other] * rng.uniform(1.0, 2.5)
        plate[2] = self.half[2] * rng.uniform(0.8, 2.0)
        loc = out * (self.half[axis] + 0.05)
        self.add(Part("box", _t(loc), _t(plate), "radiator", role="radiator"))

    def whips(self, n: int) -> None:
        for _ in range(n):
            base, out = self.face_mount()
            d = _unit(out + self.rng.normal(scale=0.5, size=3))
            self.rod(
                base, base + d * self.size * self.rng.uniform(0.5, 2.5), 0.006, "bare_metal", "whip"
            )

    def body_cells(self, axis: int) -> None:
        """Solar cells on the two faces of the bus normal to ``axis``."""
        other = [a for a in range(3) if a != axis]
        for sign in (-1.0, 1.0):
            loc = np.zeros(3)
            loc[axis] = sign * (self.half[axis] + 0.011)
            size = (float(self.half[other[0]] * 1.8), float(self.half[other[1]] * 1.8), 0.02)
            z = np.zeros(3)
            z[axis] = 1.0
            x = np.zeros(3)
            x[other[0]] = 1.0
            rot = _euler_from_axes(x, np.cross(z, x), z)
            self.add(Part("panel", _t(loc), size, "cells", rot=rot, role="cells"))

    def booms(self, n: int, reach: tuple[float, float]) -> None:
        rng = self.rng
        for _ in range(n):
            base, out = self.face_mount()
            d = _unit(out + rng.normal(scale=0.25, size=3))
            self.boom(
                base,
                d,
                self.size * rng.uniform(*reach),
                float(rng.uniform(0.008, 0.03)),
                rng.random() < 0.5,
            )

    def side_dishes(self, n: int) -> None:
        """Dishes of the training families: radius at most TRAIN_DISH_MAX x the bus size."""
        rng = self.rng
        for _ in range(n):
            base, out = self.face_mount()
            aim = out + rng.normal(scale=0.3, size=3)
            rd = self.size * float(rng.uniform(0.2, TRAIN_DISH_MAX))
            mat = _pick(
                rng,
                {
                    "white_paint": 0.35,
                    "gold_foil": 0.2,
                    "silver_foil": 0.15,
                    "bare_metal": 0.15,
                    "gold_mesh": 0.15,
                },
            )
            feed = _pick(rng, {"strut": 0.5, "tripod": 0.3, "none": 0.2})
            self.dish(base, aim, rd, mat, mast=self.size * float(rng.uniform(0.02, 0.6)), feed=feed)


# ----------------------------------------------------------------------------- families


def _wings(b: _Builder, n: int, *, broken: bool, along: tuple[int, ...] = (1, 0)) -> None:
    """``n`` solar wings around the bus, all of one random size and aspect ratio."""
    rng = b.rng
    size = b.size
    seg_len = size * rng.uniform(0.5, 1.8)
    width = size * rng.uniform(0.4, 1.6)
    segments = int(rng.integers(1, 7))
    tilt = float(rng.uniform(-0.6, 0.6))
    yoke = size * rng.uniform(0.05, 0.8)
    axes = []
    for a in along:
        for s in (1.0, -1.0):
            v = np.zeros(3)
            v[a] = s
            axes.append(v)
    for w in range(n):
        d = axes[w % len(axes)].copy()
        root = d * b.half
        level = (w // len(axes)) * 2 - 1 if n > len(axes) else 0
        root[2] = level * b.half[2] * 0.6 if n > len(axes) else rng.uniform(-0.3, 0.3) * b.half[2]
        if rng.random() < 0.15:  # canted out of plane
            d = d + np.array([0.0, 0.0, rng.uniform(-0.5, 0.5)])
        d = _unit(d)
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


def _boxsat(b: _Builder, broken: bool) -> None:
    rng = b.rng
    half = rng.uniform(0.4, 1.0, size=3)
    if rng.random() < 0.4:
        half[2] *= rng.uniform(1.2, 2.0)
    b.half = half.copy()
    b.add(Part("box", (0.0, 0.0, 0.0), _t(half * 2), _foil(rng), role="bus"))
    if rng.random() < 0.3:  # a second module stacked on +z
        h2 = half * rng.uniform(0.5, 1.0, size=3)
        h2[2] = half[2] * rng.uniform(0.2, 0.6)
        b.add(Part("box", (0.0, 0.0, float(half[2] + h2[2])), _t(h2 * 2), _foil(rng), role="bus"))
        b.half[2] += h2[2] * 2
    _wings(b, int(rng.choice([0, 1, 2, 4], p=[0.05, 0.25, 0.55, 0.15])), broken=broken)
    if rng.random() < 0.2:
        b.body_cells(0)
    b.side_dishes(int(rng.choice([0, 1, 2, 3], p=[0.25, 0.4, 0.25, 0.1])))
    if rng.random() < 0.35:
        b.engine(-b.half[2], float(b.half[0] * rng.uniform(0.2, 0.45)))
    if rng.random() < 0.5:
        b.thrusters(-b.half[2], b.half[:2] * 0.8)
    for _ in range(int(rng.integers(0, 5))):
        b.instrument()
    for _ in range(int(rng.choice([0, 1, 2], p=[0.45, 0.4, 0.15]))):
        b.radiator()
    b.booms(int(rng.choice([0, 1, 2], p=[0.5, 0.35, 0.15])), (1.0, 3.5))
    b.whips(int(rng.choice([0, 1, 2, 4], p=[0.4, 0.25, 0.2, 0.15])))


def _cylsat(b: _Builder, broken: bool) -> None:
    rng = b.rng
    style = _pick(rng, {"telescope": 0.4, "spinner": 0.3, "generic": 0.3})
    r = float(rng.uniform(0.35, 0.9))
    h = float(rng.uniform(2.0, 4.5) if style == "telescope" else rng.uniform(0.8, 2.5))
    mat = "silver_foil" if style == "telescope" and rng.random() < 0.6 else _foil(rng)
    b.add(Part("cylinder", (0.0, 0.0, 0.0), (r, h), mat, vertices=32, role="bus"))
    b.half = np.array([r, r, h / 2])
    if style == "telescope":
        # aperture at +z: a dark mouth, maybe an open door hinged at the rim
        b.add(
            Part(
                "cylinder",
                (0.0, 0.0, h / 2 + 0.01),
                (r * 0.9, 0.02),
                "black",
                vertices=32,
                role="instrument",
            )
        )
        if rng.random() < 0.7:
            door = np.array([r * 1.0, 0.0, h / 2 + r * 0.9])
            b.add(
                Part(
                    "cylinder",
                    _t(door),
                    (r * 0.95, 0.03),
                    "silver_foil",
                    rot=(0.0, math.pi / 2 - 0.3, 0.0),
                    vertices=32,
                    role="door",
                )
            )
        _wings(b, 2, broken=broken)
    elif style == "spinner":
        b.add(
            Part(
                "cylinder", (0.0, 0.0, 0.0), (r * 1.01, h * 0.8), "cells", vertices=32, role="cells"
            )
        )
        b.dish(
            np.array([0.0, 0.0, h / 2]),
            np.array([0.0, 0.0, 1.0]),
            r * rng.uniform(0.4, TRAIN_DISH_MAX),
            "white_paint",
            mast=r * rng.uniform(0.1, 0.8),
            feed="strut",
        )
        b.booms(int(rng.integers(1, 4)), (1.5, 4.0))
    else:
        if rng.random() < 0.5:  # a second, narrower stage
            r2, h2 = r * rng.uniform(0.4, 0.9), h * rng.uniform(0.2, 0.6)
            b.add(
                Part(
                    "cylinder",
                    (0.0, 0.0, float(h / 2 + h2 / 2)),
                    (r2, h2),
                    _foil(rng),
                    vertices=32,
                    role="bus",
                )
            )
            b.half[2] += h2
        _wings(b, int(rng.choice([1, 2, 3, 4])), broken=broken)
        b.side_dishes(int(rng.integers(0, 3)))
    if rng.random() < 0.4:
        b.engine(-b.half[2], r * float(rng.uniform(0.2, 0.5)))
    for _ in range(int(rng.integers(0, 4))):
        b.instrument()
    b.whips(int(rng.choice([0, 1, 2])))


def _octsat(b: _Builder, broken: bool) -> None:
    rng = b.rng
    verts = int(rng.choice([6, 8]))
    r = float(rng.uniform(0.5, 1.0))
    h = float(rng.uniform(0.5, 2.0))
    b.add(Part("cylinder", (0.0, 0.0, 0.0), (r, h), _foil(rng), vertices=verts, role="bus"))
    b.half = np.array([r, r, h / 2])
    if rng.random() < 0.4:  # cells on the prism's faces
        b.add(
            Part(
                "cylinder",
                (0.0, 0.0, 0.0),
                (r * 1.01, h * 0.7),
                "cells",
                vertices=verts,
                role="cells",
            )
        )
        n_wings = int(rng.choice([0, 2], p=[0.6, 0.4]))
    else:
        n_wings = int(rng.choice([1, 2, 3], p=[0.2, 0.6, 0.2]))
    _wings(b, n_wings, broken=broken)
    if rng.random() < 0.6:  # a dish on top
        b.dish(
            np.array([0.0, 0.0, h / 2]),
            np.array([0.0, 0.0, 1.0]) + rng.normal(scale=0.2, size=3),
            r * rng.uniform(0.3, TRAIN_DISH_MAX),
            _pick(rng, {"white_paint": 0.6, "gold_foil": 0.4}),
            mast=r * rng.uniform(0.05, 0.5),
            feed=_pick(rng, {"strut": 0.6, "tripod": 0.4}),
        )
    b.side_dishes(int(rng.choice([0, 1], p=[0.6, 0.4])))
    if rng.random() < 0.5:
        b.thrusters(-b.half[2], b.half[:2] * 0.6)
    for _ in range(int(rng.integers(1, 5))):
        b.instrument()
    b.booms(int(rng.choice([0, 1, 2], p=[0.4, 0.4, 0.2])), (1.0, 4.0))
    if rng.random() < 0.4:
        b.radiator()


def _station(b: _Builder, broken: bool) -> None:
    rng = b.rng
    r = float(rng.uniform(0.35, 0.6))
    length = float(rng.uniform(5.0, 11.0))
    # pressurised modules in a row along y, the truss along x across them
    n_mod = int(rng.integers(1, 5))
    mods_len = 0.0
    for _ in range(n_mod):
        ml = float(rng.uniform(1.0, 2.4))
        y = mods_len + ml / 2 - 0.5
        b.add(
            Part(
                "cylinder",
                (0.0, y, 0.0),
                (r, ml),
                _pick(rng, {"white_paint": 0.6, "silver_foil": 0.4}),
                rot=(math.pi / 2, 0.0, 0.0),
                vertices=24,
                role="bus",
            )
        )
        mods_len += ml
    b.half = np.array([r, max(r, mods_len / 2), r])
    tw = float(rng.uniform(0.15, 0.35))
    a, c = np.array([-length / 2, 0.0, r + tw]), np.array([length / 2, 0.0, r + tw])
    b.truss(
        a,
        c,
        tw,
        _pick(rng, {"bare_metal": 0.5, "white_paint": 0.5}),
        int(rng.integers(6, 16)),
        "truss",
    )
    seg_len = float(rng.uniform(1.0, 2.5))
    width = float(rng.uniform(0.5, 1.2))
    segments = int(rng.integers(2, 6))
    for end in (a, c):
        for s in (-1.0, 1.0):
            if rng.random() < 0.85:
                b.wing(
                    end,
                    np.array([0.0, s, 0.0]),
                    np.array([0.0, 0.0, 1.0]),
                    yoke=tw,
                    seg_len=seg_len,
                    width=width,
                    segments=segments,
                    tilt=float(rng.uniform(-1.2, 1.2)),
                    broken=broken and s > 0,
                )
    for _ in range(int(rng.integers(0, 4))):  # radiators along the truss
        x = float(rng.uniform(-length / 3, length / 3))
        b.add(
            Part(
                "box",
                (x, 0.0, float(r + tw + rng.uniform(0.6, 1.2))),
                (float(rng.uniform(0.6, 1.2)), 0.03, float(rng.uniform(0.8, 1.6))),
                "radiator",
                role="radiator",
            )
        )
    if rng.random() < 0.4:  # a docked vehicle at the end of the modules
        y = mods_len - 0.5 + 0.6
        b.add(
            Part(
                "cylinder",
                (0.0, y, 0.0),
                (r * 0.6, 1.2),
                "white_paint",
                rot=(math.pi / 2, 0.0, 0.0),
                role="bus",
            )
        )
        for side in (1.0, -1.0):  # a wing on each side, +x first
            b.wing(
                np.array([0.0, y, 0.0]),
                np.array([side, 0.0, 0.0]),
                np.array([0.0, 0.0, 1.0]),
                yoke=r * 0.6,
                seg_len=0.5,
                width=0.4,
                segments=3,
                tilt=0.0,
            )
    b.side_dishes(int(rng.choice([0, 1, 2])))
    b.whips(int(rng.integers(0, 3)))


def _smallsat(b: _Builder, broken: bool) -> None:
    rng = b.rng
    units = int(rng.choice([1, 2, 3, 6, 12]))
    half = np.array([0.5, 0.5, 0.5 * min(units, 3)])
    if units >= 6:
        half[0] *= 2
    if units == 12:
        half[1] *= 2
    b.half = half
    b.add(
        Part(
            "box",
            (0.0, 0.0, 0.0),
            _t(half * 2),
            _pick(rng, {"bare_metal": 0.4, "black": 0.2, "grey_paint": 0.2, "gold_foil": 0.2}),
            role="bus",
        )
    )
    b.body_cells(int(rng.choice([0, 1])))
    # deployable panels hinged at the top edges, opened by a common angle
    n = int(rng.choice([0, 2, 4], p=[0.15, 0.45, 0.4]))
    opening = float(rng.uniform(0.6, math.pi / 2 + 0.3))
    segs = int(rng.choice([1, 2, 3]))
    for k in range(n):
        axis = k % 2
        sign = 1.0 if k < 2 else -1.0
        d = np.zeros(3)
        d[axis] = sign
        hinge = d * half + np.array([0.0, 0.0, half[2]])
        out = _unit(d * math.sin(opening) + np.array([0.0, 0.0, math.cos(opening)]))
        normal = _unit(np.cross(out, np.cross(np.array([0.0, 0.0, 1.0]), d)))
        b.wing(
            hinge,
            out,
            normal,
            yoke=0.0,
            seg_len=float(half[2] * 2),
            width=float(half[1 - axis] * 2),
            segments=segs,
            tilt=0.0,
            broken=broken and k == 0,
            thickness=0.03,
        )
    # tape-measure antennas: long and very thin
    for _ in range(int(rng.choice([0, 2, 4], p=[0.3, 0.4, 0.3]))):
        base, out = b.face_mount((0, 1))
        d = _unit(out + rng.normal(scale=0.2, size=3))
        b.rod(base, base + d * b.size * rng.uniform(2.0, 6.0), 0.01, "bare_metal", "whip")
    if rng.random() < 0.3:
        b.instrument()


def _probe(b: _Builder, broken: bool) -> None:
    """The held-out family: a deep-space probe (Voyager, Cassini, New Horizons, Galileo)."""
    rng = b.rng
    verts = int(rng.choice([6, 8, 10]))
    r = float(rng.uniform(0.45, 0.75))
    h = float(rng.uniform(0.4, 1.2))
    b.add(
        Part(
            "cylinder",
            (0.0, 0.0, 0.0),
            (r, h),
            _pick(rng, {"gold_foil": 0.5, "black_foil": 0.3, "silver_foil": 0.2}),
            vertices=verts,
            role="bus",
        )
    )
    b.half = np.array([r, r, h / 2])
    size = b.size
    # the high-gain antenna, wider than the bus, on top
    rd = size * float(rng.uniform(*PROBE_DISH))
    b.dish(
        np.array([0.0, 0.0, h / 2]),
        np.array([0.0, 0.0, 1.0]) + rng.normal(scale=0.05, size=3),
        rd,
        _pick(rng, {"white_paint": 0.7, "grey_paint": 0.3}),
        mast=size * float(rng.uniform(0.05, 0.3)),
        feed=_pick(rng, {"tripod": 0.6, "strut": 0.4}),
        role="hga",
    )
    # RTGs on booms: finned cylinders
    n_rtg = int(rng.choice([1, 2, 3], p=[0.4, 0.35, 0.25]))
    az0 = float(rng.uniform(0, 2 * math.pi))
    for k in range(n_rtg):
        az = az0 + k * 2 * math.pi / max(n_rtg, 2) + rng.normal(scale=0.2)
        d = _unit(np.array([math.cos(az), math.sin(az), rng.uniform(-0.4, 0.1)]))
        base = np.array([math.cos(az) * r, math.sin(az) * r, -h / 4])
        reach = rd * float(rng.uniform(0.8, 1.6))
        tip = base + d * reach
        if rng.random() < 0.5:
            b.truss(base, tip, size * 0.08, "bare_metal", 3, "rtg")
        else:
            b.rod(base, tip, 0.03, "bare_metal", "rtg")
        length = size * float(rng.uniform(0.7, 1.3))
        rr = length * 0.15
        b.add(
            Part(
                "cylinder",
                _t(tip + d * length / 2),
                (rr, length),
                "grey_paint",
                rot=_rot_to(d),
                vertices=12,
                role="rtg",
            )
        )
        p, q = _perp(d)
        for f in range(int(rng.choice([4, 6]))):
            t = f * 2 * math.pi / 6
            fin_dir = math.cos(t) * p + math.sin(t) * q
            centre = tip + d * length / 2 + fin_dir * rr * 1.6
            b.add(
                Part(
                    "box",
                    _t(centre),
                    (rr * 1.4, 0.015, length * 0.9),
                    "grey_paint",
                    rot=_euler_from_axes(fin_dir, np.cross(d, fin_dir), d),
                    role="rtg",
                )
            )
    # the magnetometer boom: long, thin, often a lattice mast
    az = az0 + math.pi + rng.normal(scale=0.3)
    d = _unit(np.array([math.cos(az), math.sin(az), rng.uniform(-0.2, 0.2)]))
    base = np.array([math.cos(az) * r, math.sin(az) * r, 0.0])
    length = size * float(rng.uniform(4.0, 9.0))
    if rng.random() < 0.5:
        b.truss(
            base, base + d * length, size * 0.05, "bare_metal", int(rng.integers(8, 20)), "boom"
        )
    else:
        b.rod(base, base + d * length, 0.02, "bare_metal", "boom")
    for frac in (0.6, 1.0):
        s = size * 0.08
        b.add(Part("box", _t(base + d * length * frac), (s, s, s), "white_paint", role="boom"))
    # a scan platform with cameras on a short arm
    if rng.random() < 0.8:
        az = az0 + math.pi / 2 + rng.normal(scale=0.3)
        d = _unit(np.array([math.cos(az), math.sin(az), -0.3]))
        base = np.array([math.cos(az) * r, math.sin(az) * r, 0.0])
        tip = base + d * size * rng.uniform(0.8, 1.8)
        b.rod(base, tip, 0.03, "bare_metal", "instrument")
        b.add(
            Part(
                "box",
                _t(tip),
                (size * 0.35, size * 0.25, size * 0.25),
                _pick(rng, {"black_foil": 0.5, "gold_foil": 0.5}),
                role="instrument",
            )
        )
        b.add(
            Part(
                "cylinder",
                _t(tip + np.array([0.0, 0.0, size * 0.2])),
                (size * 0.08, size * 0.3),
                "black",
                role="instrument",
            )
        )
    b.engine(-h / 2, r * float(rng.uniform(0.2, 0.4)))
    b.thrusters(-h / 2, b.half[:2] * 0.6)
    b.whips(int(rng.choice([1, 2])))
    if broken:
        b.parts.pop(int(rng.integers(1, len(b.parts))))


_BUILDERS = {
    "boxsat": _boxsat,
    "cylsat": _cylsat,
    "octsat": _octsat,
    "station": _station,
    "smallsat": _smallsat,
    "probe": _probe,
}


def _tints(rng: np.random.Generator) -> dict[str, tuple[float, float, float]]:
    return {
        "gold_foil": (1.0, float(rng.uniform(0.55, 0.8)), float(rng.uniform(0.12, 0.4))),
        "silver_foil": _t(np.full(3, rng.uniform(0.7, 0.95))),
        "black_foil": _t(np.full(3, rng.uniform(0.02, 0.08))),
        "cells": (
            float(rng.uniform(0.01, 0.05)),
            float(rng.uniform(0.02, 0.06)),
            float(rng.uniform(0.05, 0.22)),
        ),
        "white_paint": _t(np.full(3, rng.uniform(0.6, 0.88))),
        "grey_paint": _t(np.full(3, rng.uniform(0.2, 0.45))),
    }


def make_design(design_id: int) -> Design:
    """The spacecraft ``design_id``: a deterministic design of its family."""
    family = family_of(design_id)
    rng = _rng(_DESIGN_SALT, design_id)
    b = _Builder(rng)
    broken = bool(rng.random() < 0.1)
    _BUILDERS[family](b, broken)
    return Design(
        design_id=int(design_id),
        parts=tuple(b.parts),
        tints=_tints(rng),
        family=family,
        bus_size=float(np.max(b.half)),
        broken=broken,
    )


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
    """View ``view_id`` of design ``design_id``; the camera looks along +y from -y.

    Lighting is one of :data:`LIGHTINGS`: ``hard_sun`` (a strong sun from the camera's side, no
    fill), ``earthshine`` (sun plus a blue fill from below), ``partly`` (sun from the side: half
    the spacecraft in shadow) or ``dark`` (sun behind it: a rim of light on a nearly dark body).
    """
    rng = _rng(_VIEW_SALT, design_id, view_id)
    lighting = LIGHTINGS[int(rng.choice(len(LIGHTINGS), p=LIGHTING_WEIGHTS))]
    sun = _unit(rng.normal(size=3))
    fill = _unit(np.array([0.0, 0.0, -1.0]) + rng.normal(scale=0.5, size=3))
    exposure = float(rng.uniform(-0.4, 0.4))
    world = 0.12
    if lighting == "hard_sun":
        sun[1] = -abs(sun[1]) - 0.3  # from the camera's side
        strength, fill_strength, world = rng.uniform(4.0, 9.0), 0.0, 0.04
    elif lighting == "earthshine":
        if sun[1] > 0.3:
            sun[1] = -sun[1]
        strength, fill_strength, world = rng.uniform(2.5, 6.0), rng.uniform(0.3, 1.2), 0.25
    elif lighting == "partly":
        sun[1] = rng.uniform(-0.25, 0.35)  # across the line of sight
        strength, fill_strength, world = rng.uniform(4.0, 8.0), rng.uniform(0.0, 0.25), 0.08
    else:
        sun = _unit(np.array([0.0, 1.0, 0.0]) + rng.normal(scale=0.35, size=3))
        strength, fill_strength, world = rng.uniform(2.0, 6.0), rng.uniform(0.02, 0.15), 0.03
        exposure = float(rng.uniform(-0.8, 0.0))
    return View(
        design_id=design_id,
        view_id=view_id,
        attitude=random_quaternion(rng),
        focal_mm=float(rng.uniform(35, 120)),
        margin=float(rng.uniform(1.0, 1.08)),
        sun_dir=_t(_unit(sun)),
        sun_strength=float(strength),
        fill_strength=float(fill_strength),
        fill_dir=_t(fill),
        exposure=exposure,
        lighting=lighting,
        world_strength=float(world),
    )
