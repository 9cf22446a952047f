import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from posebowl import boxes

# sub-pixel coordinates on a 1/64 grid: exact in float64, so translations are exact too
coord = st.integers(0, 2000 * 64).map(lambda v: v / 64)


@st.composite
def box(draw):
    x0, x1 = sorted((draw(coord), draw(coord)))
    y0, y1 = sorted((draw(coord), draw(coord)))
    return [x0, y0, x1, y1]


def reference_iou(a, b):
    """A straightforward, loop-based IoU to check the vectorised one against."""
    out = []
    for (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) in zip(a, b, strict=True):
        iw = max(0.0, min(ax1, bx1) - max(ax0, bx0))
        ih = max(0.0, min(ay1, by1) - max(ay0, by0))
        inter = iw * ih
        union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
        out.append(inter / union if union > 0 else 0.0)
    return np.array(out)


@given(box(), box())
def test_iou_symmetric_and_bounded(a, b):
    ab, ba = boxes.iou([a], [b])[0], boxes.iou([b], [a])[0]
    assert ab == pytest.approx(ba)
    assert 0.0 <= ab <= 1.0 + 1e-12


@given(box())
def test_iou_of_box_with_itself_is_one(a):
    if (a[2] - a[0]) * (a[3] - a[1]) > 0:
        assert boxes.iou([a], [a])[0] == pytest.approx(1.0)


@given(box(), st.floats(min_value=0.001, max_value=100))
def test_iou_of_disjoint_boxes_is_zero(a, gap):
    width = a[2] - a[0]
    b = [a[2] + gap, a[1], a[2] + gap + width + 1, a[3]]
    assert boxes.iou([a], [b])[0] == 0.0


@given(box(), box(), st.integers(-500, 500), st.integers(-500, 500))
def test_iou_invariant_to_translation(a, b, dx, dy):
    shift = np.array([dx, dy, dx, dy], dtype=float)
    before = boxes.iou([a], [b])[0]
    after = boxes.iou([np.array(a) + shift], [np.array(b) + shift])[0]
    assert after == pytest.approx(before, abs=1e-9)


@given(st.lists(st.tuples(box(), box()), min_size=1, max_size=50))
def test_iou_matches_reference(pairs):
    a = [p[0] for p in pairs]
    b = [p[1] for p in pairs]
    np.testing.assert_allclose(boxes.iou(a, b), reference_iou(a, b), atol=1e-12)


@given(arrays(np.float64, (20, 4), elements=coord))
def test_area_never_negative(arr):
    assert (boxes.area(arr) >= 0).all()


def test_known_values():
    assert boxes.iou([[0, 0, 10, 10]], [[5, 0, 15, 10]])[0] == pytest.approx(50 / 150)
    assert boxes.iou([[0, 0, 0, 0]], [[0, 0, 0, 0]])[0] == 0.0


def test_shape_errors_name_the_shape():
    with pytest.raises(ValueError, match=r"shape \(N, 4\), got \(3, 3\)"):
        boxes.iou(np.zeros((3, 3)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="same shape"):
        boxes.iou(np.zeros((2, 4)), np.zeros((3, 4)))


def test_clip():
    np.testing.assert_array_equal(
        boxes.clip([[-5, -5, 2000, 2000]], 1280, 1024), [[0, 0, 1280, 1024]]
    )
