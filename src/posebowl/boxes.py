"""Pure numpy geometry of axis-aligned boxes.

Every function takes boxes as float arrays of shape ``[N, 4]`` in ``xyxy`` order
(``xmin, ymin, xmax, ymax``, pixels, ``xmin <= xmax`` and ``ymin <= ymax``). Coordinates are
continuous: a box from 10 to 20 is 10 pixels wide, as in the official scorer (no ``+ 1``).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def as_xyxy(boxes: npt.ArrayLike, name: str = "boxes") -> FloatArray:
    """Return ``boxes`` as a float64 ``[N, 4]`` array, or raise ValueError naming the shape."""
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.ndim == 1 and arr.shape[0] == 4:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{name} must be a 2D array of shape (N, 4), got {arr.shape}")
    return arr


def area(boxes: npt.ArrayLike) -> FloatArray:
    """Area of each box, ``[N]``. Inverted boxes have area 0."""
    b = as_xyxy(boxes)
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def _intersection_union(a: FloatArray, b: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Row-wise intersection and union areas of two ``[N, 4]`` arrays."""
    iw = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = iw * ih
    return inter, area(a) + area(b) - inter


def iou(a: npt.ArrayLike, b: npt.ArrayLike) -> FloatArray:
    """Row-wise Jaccard index (intersection over union) of two ``[N, 4]`` arrays, ``[N]``.

    Two empty boxes (union 0) give 0, not NaN.
    """
    aa, bb = as_xyxy(a, "a"), as_xyxy(b, "b")
    if aa.shape != bb.shape:
        raise ValueError(f"a and b must have the same shape, got {aa.shape} and {bb.shape}")
    inter, union = _intersection_union(aa, bb)
    out = np.zeros_like(inter)
    np.divide(inter, union, out=out, where=union > 0)
    return out


def clip(boxes: npt.ArrayLike, width: int, height: int) -> FloatArray:
    """Clip boxes to the frame ``[0, width] x [0, height]``."""
    b = as_xyxy(boxes).copy()
    b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, width)
    b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, height)
    return b
