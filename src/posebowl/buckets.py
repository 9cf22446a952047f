"""Size buckets of true boxes, and IoU summaries by bucket or by any metadata column.

One definition, used by the evaluation report, the detector's validation and the benchmarks:

- ``truncated``: the true box touches the frame edge (the spacecraft is cut by the frame);
- otherwise by area: ``small`` (< 100x100 px), ``medium`` (< 300x300 px), ``large``.
"""

from __future__ import annotations

import re

import numpy as np
import numpy.typing as npt
import pandas as pd

from posebowl import boxes
from posebowl.rules import FRAME_HEIGHT, FRAME_WIDTH

BUCKETS = ("small", "medium", "large", "truncated")
SMALL_AREA = 100 * 100
MEDIUM_AREA = 300 * 300


def size_bucket(true_boxes: npt.ArrayLike) -> npt.NDArray[np.str_]:
    """The bucket name of each true box (``[N, 4]`` xyxy) -> ``[N]`` strings."""
    b = boxes.as_xyxy(true_boxes)
    a = boxes.area(b)
    out = np.where(a < SMALL_AREA, "small", np.where(a < MEDIUM_AREA, "medium", "large"))
    touches = (b[:, 0] <= 0) | (b[:, 1] <= 0) | (b[:, 2] >= FRAME_WIDTH) | (b[:, 3] >= FRAME_HEIGHT)
    return np.where(touches, "truncated", out).astype(str)


def background_type(background_id: object) -> str:
    """The kind of background an id names: its leading letters (``limb-val-00042`` -> ``limb``).

    Ids without a letter prefix (the competition's numbers) are returned whole.
    """
    text = str(background_id)
    match = re.match(r"[A-Za-z]+", text)
    return match.group(0).lower() if match else text


def summarize(iou: pd.Series, groups: pd.Series) -> pd.DataFrame:
    """Count, mean and median IoU per group; ``iou`` and ``groups`` share an index (image_id).

    Rows are sorted by group name, with the BUCKETS order kept when the groups are buckets.
    """
    df = pd.DataFrame({"iou": iou, "group": groups.reindex(iou.index)})
    table = df.groupby("group", observed=True)["iou"].agg(["count", "mean", "median"])
    table["below_0.5"] = df.assign(low=df.iou < 0.5).groupby("group", observed=True)["low"].sum()
    if set(table.index) <= set(BUCKETS):
        table = table.reindex([b for b in BUCKETS if b in table.index])
    return table
