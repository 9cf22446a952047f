from __future__ import annotations

import math
from collections import Counter

import pytest

from posebowl.synth.design import (
    FAMILIES,
    HELD_OUT_FAMILY,
    KINDS,
    LIGHTINGS,
    MATERIALS,
    PROBE_DISH,
    TRAIN_DISH_MAX,
    Part,
    family_of,
    make_design,
    make_view,
)

DESIGNS = [make_design(i) for i in range(70)]


def test_designs_are_deterministic():
    assert make_design(7) == make_design(7)
    assert make_view(7, 2) == make_view(7, 2)
    assert make_design(7) != make_design(8)
    assert make_view(7, 2) != make_view(7, 3)


def test_design_space_is_broad():
    kinds = Counter(p.kind for d in DESIGNS for p in d.parts)
    mats = Counter(p.material for d in DESIGNS for p in d.parts)
    assert set(kinds) == set(KINDS)
    assert set(mats) == set(MATERIALS)
    assert {d.family for d in DESIGNS} == set(FAMILIES)
    assert any(d.broken for d in DESIGNS) and not all(d.broken for d in DESIGNS)
    # buses: boxes, smooth cylinders and 6-8 sided prisms
    buses = Counter(
        (p.kind, p.vertices if p.kind == "cylinder" else 0)
        for d in DESIGNS
        for p in d.parts
        if p.role == "bus"
    )
    assert (
        buses[("box", 0)]
        and buses[("cylinder", 32)]
        and (buses[("cylinder", 6)] + buses[("cylinder", 8)])
    )
    # thin appendages (whips, booms) that the box must include
    assert sum(any(p.kind == "rod" and p.size[0] <= 0.01 for p in d.parts) for d in DESIGNS) > 20
    assert sum(any(p.role == "truss" for p in d.parts) for d in DESIGNS) >= 8
    wings = [sum(p.role == "wing" and p.kind == "panel" for p in d.parts) for d in DESIGNS]
    assert min(wings) == 0 and max(wings) >= 16
    # solar panels of many aspect ratios
    ratios = [
        p.size[1] / p.size[0]
        for d in DESIGNS
        for p in d.parts
        if p.role == "wing" and p.kind == "panel"
    ]
    assert min(ratios) < 0.6 and max(ratios) > 2.5


def test_families_follow_the_slots():
    assert [family_of(i) for i in range(7)] == list(FAMILIES)
    assert all(d.family == family_of(d.design_id) for d in DESIGNS)


def test_the_held_out_family_uses_a_recipe_no_other_family_uses():
    """Dishes wider than the bus and RTGs appear only in the held-out family."""
    held = [d for d in DESIGNS if d.family == HELD_OUT_FAMILY]
    train = [d for d in DESIGNS if d.family != HELD_OUT_FAMILY]
    assert len(held) == 10
    train_dishes = [p.size[0] / d.bus_size for d in train for p in d.parts if p.kind == "dish"]
    held_dishes = [max(p.size[0] / d.bus_size for p in d.parts if p.role == "hga") for d in held]
    assert max(train_dishes) <= TRAIN_DISH_MAX < PROBE_DISH[0] <= min(held_dishes)
    assert not any(p.role in ("rtg", "hga") for d in train for p in d.parts)
    assert all(any(p.role == "rtg" for p in d.parts) for d in held)


def test_views_are_unit_vectors_and_rotations_with_every_lighting():
    views = [make_view(d, k) for d in range(10) for k in range(10)]
    for v in views:
        assert math.isclose(sum(q * q for q in v.attitude), 1.0, rel_tol=1e-9)
        assert math.isclose(sum(c * c for c in v.sun_dir), 1.0, rel_tol=1e-9)
        assert 35 <= v.focal_mm <= 120
    lights = Counter(v.lighting for v in views)
    assert set(lights) == set(LIGHTINGS)
    for v in views:
        if v.lighting == "dark":  # the sun is behind the spacecraft (camera on -y)
            assert v.sun_dir[1] > 0 and v.fill_strength < 0.2
        if v.lighting == "hard_sun":
            assert v.sun_dir[1] < 0 and v.fill_strength == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "torus"}, "kind must be one of"),
        ({"material": "wood"}, "material must be one of"),
        ({"kind": "rod"}, "a rod needs an end point"),
    ],
)
def test_part_rejects_bad_values(kwargs, message):
    base = {"kind": "box", "loc": (0, 0, 0), "size": (1, 1, 1), "material": "black"}
    with pytest.raises(ValueError, match=message):
        Part(**{**base, **kwargs})
