"""The official Pose Bowl detection metric: mean per-image Jaccard index (IoU).

Same definition as the official ``scripts/score.py``: predictions and labels must have the
columns ``image_id,xmin,ymin,xmax,ymax`` and the same image ids in the same order; predicted
values must be present, finite and non-negative with ``xmin <= xmax`` and ``ymin <= ymax``; every
ground-truth box must have a non-zero area. The score is the mean of the row-wise IoU
(continuous coordinates, see :mod:`posebowl.boxes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from posebowl import boxes, rules
from posebowl.errors import InvalidSubmissionError


@dataclass(frozen=True)
class ScoreResult:
    """The score and the IoU of every image (a Series indexed by image_id)."""

    score: float
    per_image: pd.Series

    def to_dict(self) -> dict[str, float]:
        return {"score": self.score}


def score_frames(predicted: pd.DataFrame, actual: pd.DataFrame) -> ScoreResult:
    """Score two box tables (columns as in :data:`posebowl.rules.COLUMNS`).

    Raises InvalidSubmissionError listing every rule broken, by predictions or labels.
    """
    bad_labels = rules.label_violations(actual)
    if bad_labels:
        raise InvalidSubmissionError(bad_labels, what="ground-truth labels")
    bad = rules.prediction_violations(predicted, actual)
    if bad:
        raise InvalidSubmissionError(bad)
    iou = boxes.iou(rules.box_array(predicted), rules.box_array(actual))
    # the ids stay arrow strings: turning 1M of them into Python strings took 0.6 s
    per_image = pd.Series(iou, index=pd.Index(actual[rules.INDEX_COLUMN]), name="iou")
    return ScoreResult(float(iou.mean()) if len(iou) else 0.0, per_image)


def score_files(predicted_path: str | Path, actual_path: str | Path) -> ScoreResult:
    """Read and score two CSV files; see :func:`score_frames`."""
    actual = rules.read_boxes_csv(actual_path, role="ground-truth")
    predicted = rules.read_boxes_csv(predicted_path, role="predictions")
    return score_frames(predicted, actual)
