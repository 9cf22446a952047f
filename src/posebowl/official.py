"""The official verdicts, faithfully: what ``scripts/score.py`` and the platform's
``runtime/tests/test_submission.py`` decide, on tables read the way they read them.

Both read with pandas' defaults (``pd.read_csv(path)``, ids as pandas infers them: ``001`` and
``1`` are both the number 1; ``+5`` is 5; ``0x10`` and integers past 64 bits are text), then
run plain numpy and pandas operations. posebowl's friendly rules (:mod:`posebowl.rules`) name
the rows at fault; *whether* a file passes is decided here, with the same operations in the
same order, so the verdict is the official one, including where the official code crashes (a
``TypeError`` on text values, say): that crash is its verdict, said in a sentence.

Nothing here prints or exits; a refusal is a reason string.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
from pandas.testing import assert_index_equal

INDEX_COLS = ["image_id"]
PREDICTION_COLS = ["xmin", "ymin", "xmax", "ymax"]
MAX_WIDTH = 1280
MAX_HEIGHT = 1024


def read(path: str | Path | IO[bytes], index: bool = False) -> pd.DataFrame:
    """A CSV read as the official code reads it (``index``: ``index_col=["image_id"]``)."""
    if index:
        return pd.read_csv(path, index_col=INDEX_COLS)
    return pd.read_csv(path)


def _crash(exc: BaseException) -> str:
    return f"the official code fails on it ({type(exc).__name__}: {exc})"


# -- scripts/score.py ----------------------------------------------------------------------------
def columns_problem(df: pd.DataFrame) -> str | None:
    """score.py's column check of a table read with the image_id index (None: it passes)."""
    if len(df.columns) != len(PREDICTION_COLS):
        return f"Wrong number of columns, expected {len(PREDICTION_COLS)}"
    for i, col in enumerate(PREDICTION_COLS):
        if df.columns[i] != col:
            return f"{i}th column '{df.columns[i]}' does not match expected '{col}'"
    return None


def read_for_scorer(path: str | Path | IO[bytes], role: str) -> pd.DataFrame | str:
    """score.py's reading of one file: the table, or the reason it gives for refusing it.

    ``role`` is ``"predicted"`` or ``"actual"`` (score.py words its messages by the file).
    """
    expected = INDEX_COLS + PREDICTION_COLS
    index_missing = (
        "Submitted index column is missing."
        if role == "predicted"
        else "Ground truth index columns are missing."
    )
    try:
        df = read(path, index=True)
    except ValueError:  # also EmptyDataError, ParserError and UnicodeDecodeError
        return index_missing
    except Exception as exc:  # an OSError, say: the official script stops on it too
        return _crash(exc)
    if columns_problem(df) is not None:
        return f"Submitted columns do not match expected columns {expected}"
    return df


@dataclass(frozen=True)
class ScorerOutcome:
    """score.py's answer: the score and per-row IoU, or the reason it refused."""

    score: float | None
    per_image: np.ndarray | None = None
    reason: str | None = None

    @property
    def accepted(self) -> bool:
        return self.reason is None


def _jaccard(predicted: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """score.py's ``jaccard_index``: the same checks and operations, in its order."""
    if actual.shape[1] != 4:
        raise ValueError("Predicted values must have 4 columns: xmin, ymin, xmax, ymax")
    missing = np.isnan(predicted).any().any()
    nonfinite = not np.isfinite(predicted).all().all()
    negative = (predicted < 0).any().any()
    if missing or nonfinite or negative:
        raise ValueError("Predicted values must all be present, finite, and non-negative")
    if (predicted[:, 0] > predicted[:, 2]).any():
        raise ValueError("All xmax must be greater than or equal to xmin")
    if (predicted[:, 1] > predicted[:, 3]).any():
        raise ValueError("All ymax must be greater than or equal to ymin")
    xmin = np.maximum(actual[:, 0], predicted[:, 0])
    xmax = np.minimum(actual[:, 2], predicted[:, 2])
    ymin = np.maximum(actual[:, 1], predicted[:, 1])
    ymax = np.minimum(actual[:, 3], predicted[:, 3])
    pred_height = predicted[:, 3] - predicted[:, 1]
    pred_width = predicted[:, 2] - predicted[:, 0]
    actual_height = actual[:, 3] - actual[:, 1]
    actual_width = actual[:, 2] - actual[:, 0]
    inter_height = np.maximum(ymax - ymin, 0)
    inter_width = np.maximum(xmax - xmin, 0)
    if not ((actual_height * actual_width) > 0).all():
        raise ValueError("Not all rows of ground truth dataset have a non-zero area")
    inter = inter_height * inter_width
    union = actual_height * actual_width + pred_height * pred_width - inter
    return np.asarray(inter / union)


def score_tables(predicted: pd.DataFrame, actual: pd.DataFrame) -> ScorerOutcome:
    """score.py's verdict on two tables read with the image_id index (:func:`read_for_scorer`).

    A mean that is not a number (no rows at all) is a refusal: the official script prints NaN.
    """
    for df, role in ((predicted, "Submitted"), (actual, "Submitted")):
        if columns_problem(df) is not None:
            return ScorerOutcome(
                None,
                reason=f"{role} columns do not match expected columns "
                f"{INDEX_COLS + PREDICTION_COLS}",
            )
    if not predicted.index.equals(actual.index):
        return ScorerOutcome(None, reason="Submitted index does not match expected index")
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            iou = _jaccard(predicted.values, actual.values)
            score = np.mean(iou)
    except ValueError as exc:
        return ScorerOutcome(None, reason=str(exc))
    except Exception as exc:  # TypeError on text or booleans, OverflowError, ...
        return ScorerOutcome(None, reason=_crash(exc))
    try:
        value = float(score)
    except (TypeError, ValueError) as exc:
        return ScorerOutcome(None, reason=_crash(exc))
    if np.isnan(value):
        return ScorerOutcome(None, reason="there is no row to score (the official score is NaN)")
    return ScorerOutcome(value, np.asarray(iou, dtype=np.float64))


def score_files(predicted_path: str | Path, actual_path: str | Path) -> ScorerOutcome:
    """score.py's whole verdict on two files."""
    predicted = read_for_scorer(predicted_path, "predicted")
    if isinstance(predicted, str):
        return ScorerOutcome(None, reason=predicted)
    actual = read_for_scorer(actual_path, "actual")
    if isinstance(actual, str):
        return ScorerOutcome(None, reason=actual)
    return score_tables(predicted, actual)


# -- runtime/tests/test_submission.py --------------------------------------------------------------
def submission_problems(submission: pd.DataFrame, fmt: pd.DataFrame) -> list[str]:
    """Why the platform's checks fail ``submission`` against ``fmt`` (both read with
    :func:`read`, no index); empty when every check passes.

    Its two checks that read the files run independently, as pytest runs them: each reports
    its first failure. The existence check is the caller's (there is no table without a file).
    """
    problems = []
    matches = _matches_format(submission, fmt)
    if matches:
        problems.append(matches)
    boxes = _boxes_make_sense(submission)
    if boxes:
        problems.append(boxes)
    return problems


def _matches_format(submission: pd.DataFrame, fmt: pd.DataFrame) -> str | None:
    try:
        if list(submission.columns) != list(fmt.columns):
            return "Columns not identical"
        sub = submission.set_index("image_id")
        fmt_ = fmt.set_index("image_id")
        try:
            assert_index_equal(sub.index, fmt_.index)
        except AssertionError:
            return "Index not identical"
        for col in sub.columns:
            if sub[col].dtype != fmt_[col].dtype:
                return f"dtype for column {col} is not {fmt_[col].dtype}"
            if not sub[col].notnull().all():
                return f"Missing values found in submission column {col}"
            if fmt_[col].dtype.kind in ("u", "i", "f") and not np.isfinite(sub[col]).all():
                return f"Non-finite values found in submission column {col}"
    except Exception as exc:
        return _crash(exc)
    return None


def _boxes_make_sense(submission: pd.DataFrame) -> str | None:
    try:
        sub = submission.set_index("image_id")  # the test reads with index_col="image_id"
        if not (sub["xmin"] <= sub["xmax"]).all():
            return "All xmax must be greater than or equal to xmin"
        if not (sub["ymin"] <= sub["ymax"]).all():
            return "All ymax must be greater than or equal to ymin"
        if not (sub["xmax"] <= MAX_WIDTH).all():
            return f"not all values of xmax are ≤ {MAX_WIDTH}"
        if not (sub["ymax"] <= MAX_HEIGHT).all():
            return f"not all values of ymax are ≤ {MAX_HEIGHT}"
    except Exception as exc:
        return _crash(exc)
    return None
