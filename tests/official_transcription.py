"""A plain transcription of the official semantics, for tests only: the official
``scripts/score.py`` and the platform's ``runtime/tests/test_submission.py`` (drivendataorg's
spacecraft-pose-object-detection-runtime), read files in and raise where they raise.

Kept independent of posebowl's own code on purpose: the property tests compare the two.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from pandas.testing import assert_index_equal

INDEX = ["image_id"]
BOX = ["xmin", "ymin", "xmax", "ymax"]


def _columns_ok(df: pd.DataFrame) -> None:
    assert len(BOX) == len(df.columns)
    for i, col in enumerate(BOX):
        assert df.columns[i] == col


def _iou(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    if true.shape[1] != 4:
        raise ValueError("shape")
    if np.isnan(pred).any().any() or not np.isfinite(pred).all().all() or (pred < 0).any().any():
        raise ValueError("present, finite, non-negative")
    if (pred[:, 0] > pred[:, 2]).any() or (pred[:, 1] > pred[:, 3]).any():
        raise ValueError("ordered")
    ix0 = np.maximum(true[:, 0], pred[:, 0])
    ix1 = np.minimum(true[:, 2], pred[:, 2])
    iy0 = np.maximum(true[:, 1], pred[:, 1])
    iy1 = np.minimum(true[:, 3], pred[:, 3])
    ph, pw = pred[:, 3] - pred[:, 1], pred[:, 2] - pred[:, 0]
    th, tw = true[:, 3] - true[:, 1], true[:, 2] - true[:, 0]
    ih, iw = np.maximum(iy1 - iy0, 0), np.maximum(ix1 - ix0, 0)
    if not ((th * tw) > 0).all():
        raise ValueError("area")
    inter = ih * iw
    return inter / (th * tw + ph * pw - inter)


def score(predicted: Path, actual: Path) -> float | None:
    """score.py's ``main``: the score, or None where it raises (or prints NaN)."""
    try:
        with np.errstate(all="ignore"):
            p = pd.read_csv(predicted, index_col=INDEX)
            _columns_ok(p)
            a = pd.read_csv(actual, index_col=INDEX)
            _columns_ok(a)
            if not p.index.equals(a.index):
                return None
            value = float(np.mean(_iou(p.values, a.values)))
    except Exception:
        return None
    return None if np.isnan(value) else value


def submission_ok(submission: Path, fmt_path: Path) -> bool:
    """test_submission.py: all three tests pass."""
    if not submission.exists():
        return False
    try:  # test_submission_matches_submission_format
        sub = pd.read_csv(submission)
        fmt = pd.read_csv(fmt_path)
        np.testing.assert_array_equal(sub.columns, fmt.columns)
        sub = sub.set_index("image_id")
        fmt = fmt.set_index("image_id")
        assert_index_equal(sub.index, fmt.index)
        for col in sub.columns:
            assert sub[col].dtype == fmt[col].dtype
            assert sub[col].notnull().all()
            if fmt[col].dtype.kind in ("u", "i", "f"):
                assert np.isfinite(sub[col]).all()
    except Exception:
        return False
    try:  # test_bounding_box_values_make_sense
        sub = pd.read_csv(submission, index_col="image_id")
        assert (sub["xmin"] <= sub["xmax"]).all()
        assert (sub["ymin"] <= sub["ymax"]).all()
        assert (sub["xmax"] <= 1280).all()
        assert (sub["ymax"] <= 1024).all()
    except Exception:
        return False
    return True


def non_negative(submission: Path) -> bool:
    """The scorer's extra rule posebowl adds to the platform's checks."""
    sub = pd.read_csv(submission)
    return not (sub[BOX] < 0).to_numpy().any()
