"""``build_report``: predictions + labels (+ images, metadata) -> a self-contained HTML page."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from posebowl import buckets, rules
from posebowl.errors import InputError
from posebowl.findings import Violation, violation
from posebowl.report import plots
from posebowl.report.evaluate import (
    METADATA_COLUMNS,
    PRED_COLUMNS,
    TRUE_COLUMNS,
    Evaluation,
    evaluate,
    read_metadata,
    select_gallery,
)
from posebowl.report.gallery import UNREADABLE, Progress, list_images, make_cards, missing_images
from posebowl.report.html import GroupSection, Page, render

DEFAULT_WORST = 24
DEFAULT_BEST = 6
INDEX_NAME = "index.html"
PER_IMAGE_NAME = "per_image.csv"


@dataclass(frozen=True)
class ReportResult:
    """Where the page is, the score on it, and everything it says was left out."""

    path: Path
    score: float
    scored: int
    official: tuple[Violation, ...]  # why the official scorer would reject the input (or empty)
    left_out: tuple[Violation, ...]  # rows not scored, images not found, ...

    @property
    def official_valid(self) -> bool:
        return not self.official


def _bucket_rule() -> str:
    small, medium = math.isqrt(buckets.SMALL_AREA), math.isqrt(buckets.MEDIUM_AREA)
    return (
        f"small: area < {small}×{small} px, medium: < {medium}×{medium} px, large: above; "
        "truncated: the true box touches the frame edge"
    )


def _groups(ev: Evaluation) -> list[GroupSection]:
    iou = ev.table["iou"]
    by_size = buckets.summarize(iou, ev.table["bucket"])
    sections = [
        GroupSection("box size", "size bucket", plots.group_bars(by_size, "size bucket"), by_size)
    ]
    if ev.has_metadata:
        for col in METADATA_COLUMNS:
            table = buckets.summarize(iou, ev.table[col].dropna())
            if len(table):
                sections.append(GroupSection(col, col, plots.group_bars(table, col), table))
    return sections


def build_report(
    pred_csv: str | Path,
    labels_csv: str | Path,
    images_dir: str | Path,
    out_dir: str | Path,
    metadata: str | Path | None = None,
    worst: int = DEFAULT_WORST,
    best: int = DEFAULT_BEST,
    progress: Progress | None = None,
) -> ReportResult:
    """Write ``out_dir/index.html`` (everything embedded) and ``out_dir/per_image.csv``.

    Only the ``worst + best`` gallery images are decoded; ``progress(done, total)`` is called
    after each. Rows that cannot be scored, and images missing on disk, are listed on the page
    and in the result, never dropped silently. Raises InvalidSubmissionError when a CSV lacks
    the required columns and InputError when a file is unreadable or nothing can be scored.
    """
    if worst < 0 or best < 0:
        raise InputError(
            f"worst={worst} and best={best} must not be negative.", "Pass 0 or more images."
        )
    images_dir, out_dir = Path(images_dir), Path(out_dir)
    labels = rules.read_boxes_csv(labels_csv, role="ground-truth")
    predicted = rules.read_boxes_csv(pred_csv, role="predictions")
    meta = read_metadata(metadata) if metadata is not None else None
    ev = evaluate(predicted, labels, meta)
    table = ev.table
    left_out = list(ev.left_out)

    listed = list_images(images_dir)
    absent = missing_images(table.index, listed, images_dir)
    if absent is not None:
        left_out.append(absent)
    worst_ids, best_ids = select_gallery(table, worst, best)
    cards = make_cards(table, worst_ids + best_ids, images_dir, listed, progress)
    unreadable = [c.image_id for c in cards if c.problem == UNREADABLE]
    if unreadable:
        left_out.append(
            violation(
                "image_unreadable",
                "gallery images that could not be decoded (shown as blank frames)",
                unreadable,
            )
        )

    iou = table["iou"]
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        _per_image_frame(table).to_csv(out_dir / PER_IMAGE_NAME)
        page = Page(
            title="posebowl evaluation report",
            sources=_sources(pred_csv, labels_csv, images_dir, metadata),
            generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            score=ev.score,
            scored=len(table),
            n_predictions=ev.n_predictions,
            n_labels=ev.n_labels,
            median=float(iou.median()),
            below_half=int((iou < 0.5).sum()),
            zero=int((iou == 0).sum()),
            official=list(ev.official),
            left_out=left_out,
            histogram_uri=plots.iou_histogram(iou),
            groups=_groups(ev),
            worst=cards[: len(worst_ids)],
            best=cards[len(worst_ids) :],
            per_image_csv=PER_IMAGE_NAME,
            bucket_rule=_bucket_rule(),
        )
        path = out_dir / INDEX_NAME
        path.write_text(render(page), encoding="utf-8")
    except OSError as exc:
        raise InputError(
            f"Cannot write the report into {out_dir} ({exc.strerror}).",
            "Pass a writable folder with -o.",
        ) from exc
    return ReportResult(path, ev.score, len(table), ev.official, tuple(left_out))


def _per_image_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The table as written to per_image.csv: whole-pixel boxes as integers, IoU to 6 places."""
    out = table.copy()
    for col in (*TRUE_COLUMNS, *PRED_COLUMNS):
        values = out[col].to_numpy()
        if np.array_equal(values, np.round(values)):
            out[col] = values.astype(np.int64)
    out["iou"] = out["iou"].round(6)
    return out


def _sources(
    pred: str | Path, labels: str | Path, images: Path, metadata: str | Path | None
) -> dict[str, str]:
    out = {"predictions": str(pred), "labels": str(labels), "images": str(images)}
    if metadata is not None:
        out["metadata"] = str(metadata)
    return out
