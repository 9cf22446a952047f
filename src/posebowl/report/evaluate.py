"""Per-image IoU for the report, tolerant of bad input: score what can be scored, list the rest.

The official metric (:func:`posebowl.metric.score_frames`) rejects predictions whose ids differ
from the labels'. A report must still show what it can, so here the two tables are aligned by
``image_id``: the ids in both are scored with :func:`posebowl.boxes.iou`, and every row that
could not be scored is listed in ``left_out`` (never dropped silently). Whether the official
scorer would accept the files is reported beside it (``official``, the same rules as the metric).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from posebowl import boxes, rules
from posebowl.buckets import size_bucket
from posebowl.datafolder import METADATA_COLUMNS
from posebowl.errors import InputError, InvalidSubmissionError
from posebowl.findings import Violation, violation
from posebowl.rules import BOX_COLUMNS, INDEX_COLUMN

TRUE_COLUMNS = tuple(f"true_{c}" for c in BOX_COLUMNS)
PRED_COLUMNS = tuple(f"pred_{c}" for c in BOX_COLUMNS)


@dataclass(frozen=True)
class Evaluation:
    """What the report shows, before any image is decoded.

    ``table`` is indexed by image_id (in the labels' order) with the columns ``iou``,
    ``true_xmin..true_ymax``, ``pred_xmin..pred_ymax``, ``bucket`` and, with metadata,
    ``spacecraft_id`` and ``background_id``. ``left_out`` lists every row that was not scored
    (or not grouped) and why; ``official`` lists what the official scorer would reject.
    """

    table: pd.DataFrame
    left_out: tuple[Violation, ...]
    official: tuple[Violation, ...]
    n_predictions: int
    n_labels: int
    has_metadata: bool

    @property
    def score(self) -> float:
        """Mean IoU over the scored images (the official score when ``official`` is empty)."""
        return float(self.table["iou"].mean())


def _check_columns(df: pd.DataFrame, what: str) -> None:
    bad = rules.column_violations(df)
    if bad:
        raise InvalidSubmissionError(bad, what=what)


def _clean(df: pd.DataFrame, role: str) -> tuple[pd.DataFrame, list[Violation]]:
    """Rows of ``df`` that can be scored, indexed by image_id, and why the others cannot."""
    notes: list[Violation] = []
    no_id = df[INDEX_COLUMN].isna().to_numpy(dtype=bool, na_value=True)
    if no_id.any():
        notes.append(
            Violation(
                f"{role}_no_id",
                f"{no_id.sum()} {role} rows have no image_id",
                count=int(no_id.sum()),
            )
        )
    ids = df[INDEX_COLUMN].astype(str).to_numpy(dtype=object)
    values = rules.box_array(df)
    not_finite = ~np.isfinite(values).all(axis=1) & ~no_id
    if not_finite.any():
        notes.append(
            violation(
                f"{role}_not_finite",
                f"{role} boxes with missing, infinite or non-numeric values",
                ids[not_finite],
            )
        )
    keep = ~no_id & ~not_finite
    dup = pd.Index(ids[keep]).duplicated()
    if dup.any():
        notes.append(
            violation(
                f"{role}_duplicated",
                f"repeated {role} image ids (the first row of each is used)",
                ids[keep][dup],
            )
        )
    kept = np.flatnonzero(keep)[~dup]
    index = pd.Index(ids[kept], name=INDEX_COLUMN)
    clean = pd.DataFrame(values[kept], index=index, columns=pd.Index(list(BOX_COLUMNS)))
    return clean, notes


def evaluate(
    predicted: pd.DataFrame, actual: pd.DataFrame, metadata: pd.DataFrame | None = None
) -> Evaluation:
    """Align ``predicted`` with ``actual`` by image_id and score what is in both.

    ``metadata`` is :func:`posebowl.datafolder.read_metadata`'s frame. Raises
    InvalidSubmissionError when a table lacks the required columns, and InputError when no
    image id can be scored at all.
    """
    _check_columns(actual, "ground-truth labels")
    _check_columns(predicted, "predictions")
    official = rules.label_violations(actual) + rules.prediction_violations(predicted, actual)

    truth, left_out = _clean(actual, "label")
    pred, pred_notes = _clean(predicted, "prediction")
    left_out += pred_notes
    only_pred = ~pred.index.isin(truth.index)
    if only_pred.any():
        left_out.append(
            violation(
                "prediction_not_in_labels",
                "predictions for image ids that are not in the labels",
                pred.index[only_pred],
            )
        )
    in_pred = truth.index.isin(pred.index)
    if (~in_pred).any():
        left_out.append(
            violation(
                "label_without_prediction",
                "labelled images with no usable prediction",
                truth.index[~in_pred],
            )
        )
    if not in_pred.any():
        raise InputError(
            f"No image id is in both the predictions ({len(predicted)} rows) and the labels "
            f"({len(actual)} rows), so nothing can be scored.",
            "Pass the labels that match these predictions.",
        )
    truth = truth[in_pred]
    pred = pred.reindex(truth.index)
    t, p = truth.to_numpy(), pred.to_numpy()
    table = pd.DataFrame(
        np.hstack([t, p]), index=truth.index, columns=[*TRUE_COLUMNS, *PRED_COLUMNS]
    )
    table.insert(0, "iou", boxes.iou(p, t))
    table["bucket"] = size_bucket(t)

    if metadata is not None:
        meta = metadata.reindex(table.index)
        for col in METADATA_COLUMNS:
            table[col] = meta[col]
        unknown = meta[list(METADATA_COLUMNS)].isna().all(axis=1).to_numpy()
        if unknown.any():
            left_out.append(
                violation(
                    "no_metadata",
                    "scored images with no metadata row (not in the spacecraft_id and "
                    "background_id tables)",
                    table.index[unknown],
                )
            )
    return Evaluation(
        table=table,
        left_out=tuple(left_out),
        official=tuple(official),
        n_predictions=len(predicted),
        n_labels=len(actual),
        has_metadata=metadata is not None,
    )


def select_gallery(table: pd.DataFrame, worst: int, best: int) -> tuple[list[str], list[str]]:
    """The ``worst`` lowest-IoU ids (lowest first) and the ``best`` highest (highest first).

    Ties are broken by image_id so the same input always shows the same images; an image is
    never in both lists.
    """
    ids = table.index.to_numpy(dtype=str)
    iou = table["iou"].to_numpy()
    ascending = np.lexsort((ids, iou))
    worst_ids = [str(i) for i in ids[ascending[: max(worst, 0)]]]
    taken = set(worst_ids)
    descending = np.lexsort((ids, -iou))
    best_ids: list[str] = []
    for i in ids[descending]:
        if len(best_ids) >= best:
            break
        if i not in taken:
            best_ids.append(str(i))
    return worst_ids, best_ids
