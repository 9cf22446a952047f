from __future__ import annotations

import math
from collections import Counter

import pytest

from posebowl.synth.design import KINDS, MATERIALS, Part, make_design, make_view


def test_designs_are_deterministic():
    assert make_design(7) == make_design(7)
    assert make_view(7, 2) == make_view(7, 2)
    assert make_design(7) != make_design(8)
    assert make_view(7, 2) != make_view(7, 3)


def test_design_space_is_broad():
    designs = [make_design(i) for i in range(48)]
    kinds = Counter(p.kind for d in designs for p in d.parts)
    mats = Counter(p.material for d in designs for p in d.parts)
    assert set(kinds) == set(KINDS)
    assert set(mats) == set(MATERIALS)
    assert len({d.archetype for d in designs}) == 4
    assert any(d.broken for d in designs) and not all(d.broken for d in designs)
    # thin appendages (whips, booms) that the box must include
    assert sum(any(p.kind == "rod" and p.size[0] <= 0.01 for p in d.parts) for d in designs) > 10
    wings = [sum(p.material == "cells" for p in d.parts) for d in designs]
    assert min(wings) == 0 and max(wings) >= 8


def test_views_are_unit_vectors_and_rotations():
    for v in (make_view(d, k) for d in range(5) for k in range(5)):
        assert math.isclose(sum(q * q for q in v.attitude), 1.0, rel_tol=1e-9)
        assert math.isclose(sum(c * c for c in v.sun_dir), 1.0, rel_tol=1e-9)
        assert 35 <= v.focal_mm <= 120


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
