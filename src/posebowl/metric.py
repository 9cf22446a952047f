"""The official Pose Bowl detection metric: mean per-image Jaccard index (IoU).

Whether predictions are scored, and the score, are exactly the official ``scripts/score.py``'s
(:mod:`posebowl.official`): the files read with pandas' defaults, the columns
``image_id,xmin,ymin,xmax,ymax``, the same ids in the same order as the labels, predicted
values present, finite and non-negative with ``xmin <= xmax`` and ``ymin <= ymax``, every true
box with a non-zero area, then the mean of the row-wise IoU (continuous coordinates, see
:mod:`posebowl.boxes`). When it refuses, :mod:`posebowl.rules` names every problem and the
rows at fault, and the official reason is given too.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from posebowl import official, rules
from posebowl.errors import InputError, InvalidSubmissionError
from posebowl.findings import Violation

#: a file of box rows never needs more than this per row of the labels (plus 1 MiB): the
#: host reads nothing larger (a submission could write gigabytes to exhaust its memory)
MAX_ROW_BYTES = 1024
SLACK_BYTES = 1 << 20


def size_cap(rows: int) -> int:
    """The most bytes a box CSV of ``rows`` rows can reasonably need."""
    return SLACK_BYTES + rows * MAX_ROW_BYTES


@dataclass(frozen=True)
class ScoreResult:
    """The score and the IoU of every image (a Series indexed by image_id)."""

    score: float
    per_image: pd.Series

    def to_dict(self) -> dict[str, float]:
        return {"score": self.score}


def _indexed(df: pd.DataFrame) -> pd.DataFrame | None:
    if rules.INDEX_COLUMN not in df.columns:
        return None
    return df.set_index(rules.INDEX_COLUMN)


def refusal(
    reason: str,
    predicted: pd.DataFrame | None,
    actual: pd.DataFrame | None,
    unreadable: str | None = None,
) -> InvalidSubmissionError:
    """The error for a refusal: every problem posebowl finds, then the official reason."""
    said = Violation("official", f"the official scorer says: {reason}")
    if unreadable is not None:
        return InvalidSubmissionError([Violation("unreadable", unreadable), said])
    labels = rules.label_violations(actual) if actual is not None else []
    comparable = actual is not None and not rules.column_violations(actual)
    preds = (
        rules.prediction_violations(predicted, actual)
        if predicted is not None and actual is not None and comparable
        else []
    )
    if "round truth" in reason and labels:
        return InvalidSubmissionError([*labels, said], what="ground-truth labels")
    if preds:
        return InvalidSubmissionError([*preds, said])
    if labels:
        return InvalidSubmissionError([*labels, said], what="ground-truth labels")
    return InvalidSubmissionError([Violation("official", reason)])


def score_frames(predicted: pd.DataFrame, actual: pd.DataFrame) -> ScoreResult:
    """Score two box tables with an ``image_id`` column, as the official scorer would.

    Raises InvalidSubmissionError listing every rule broken, by predictions or labels.
    """
    pred, act = _indexed(predicted), _indexed(actual)
    if pred is None or act is None:
        who = "Submitted" if pred is None else "Ground truth"
        raise refusal(f"{who} index column is missing.", predicted, actual)
    outcome = official.score_tables(pred, act)
    if not outcome.accepted:
        assert outcome.reason is not None
        raise refusal(outcome.reason, predicted, actual)
    assert outcome.score is not None and outcome.per_image is not None
    return ScoreResult(outcome.score, pd.Series(outcome.per_image, index=act.index, name="iou"))


def read_capped(path: str | Path, cap: int | None, role: str) -> bytes:
    """The bytes of ``path``, or InputError when it is missing or larger than ``cap``."""
    p = Path(path)
    if not p.is_file():
        raise InputError(
            f"The {role} file {p} does not exist.", "Check the path (or create the file first)."
        )
    size = p.stat().st_size
    if cap is not None and size > cap:
        raise InputError(
            f"The {role} file {p} is {size / 1e6:,.0f} MB, far more than the "
            f"{cap / 1e6:,.0f} MB its rows can need: it was not read.",
            "Write one short line per image.",
        )
    return p.read_bytes()


def _frame(data: bytes, role: str) -> tuple[pd.DataFrame | None, str | None]:
    """The table as the official code reads it (no index), or why it cannot be read."""
    try:
        return official.read(io.BytesIO(data)), None
    except Exception as exc:
        return None, f"the {role} file is not a readable CSV ({type(exc).__name__}: {exc})"


def score_files(predicted_path: str | Path, actual_path: str | Path) -> ScoreResult:
    """Read and score two CSV files; see :func:`score_frames`.

    The predictions are never read past :func:`size_cap` of the labels' rows.
    """
    actual_bytes = read_capped(actual_path, None, "ground-truth")
    act = official.read_for_scorer(io.BytesIO(actual_bytes), "actual")
    rows = len(act) if not isinstance(act, str) else actual_bytes.count(b"\n")
    predicted_bytes = read_capped(predicted_path, size_cap(rows), "predictions")
    pred = official.read_for_scorer(io.BytesIO(predicted_bytes), "predicted")
    if isinstance(pred, str) or isinstance(act, str):
        # only a refusal reads the files again, without the index, to say what is wrong
        predicted, predicted_problem = _frame(predicted_bytes, "predictions")
        actual, actual_problem = _frame(actual_bytes, "ground-truth")
        if isinstance(pred, str):
            raise refusal(pred, predicted, actual, predicted_problem)
        assert isinstance(act, str)
        raise refusal(act, predicted, actual, actual_problem)
    outcome = official.score_tables(pred, act)
    if not outcome.accepted:
        assert outcome.reason is not None
        raise refusal(outcome.reason, pred.reset_index(), act.reset_index())
    assert outcome.score is not None and outcome.per_image is not None
    return ScoreResult(outcome.score, pd.Series(outcome.per_image, index=act.index, name="iou"))
