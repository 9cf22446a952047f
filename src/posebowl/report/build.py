"""``build_report``: predictions + labels (+ images, metadata) -> a self-contained HTML page."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from posebowl import buckets, rules
from posebowl.datafolder import METADATA_COLUMNS, claim_files, read_metadata
from posebowl.errors import InputError
from posebowl.findings import Violation, violation
from posebowl.report import plots
from posebowl.report.evaluate import (
    PRED_COLUMNS,
    TRUE_COLUMNS,
    Evaluation,
    evaluate,
    select_gallery,
)
from posebowl.report.gallery import UNREADABLE, Progress, list_images, make_cards, missing_images
from posebowl.report.html import GroupSection, Page, render

MAX_GROUPS = 60  # a metadata column with more values than this is shown by its type only
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
        ids = ev.table["background_id"].dropna()
        kinds = ids.map(buckets.background_type)
        if 1 < kinds.nunique() < ids.nunique():  # ids that name their kind: group by it too
            table = buckets.summarize(iou, kinds)
            name = "background type"
            sections.append(GroupSection(name, name, plots.group_bars(table, name), table))
        for col in METADATA_COLUMNS:
            values = ev.table[col].dropna()
            if col == "background_id" and values.nunique() > MAX_GROUPS and kinds.nunique() > 1:
                continue  # hundreds of synthetic ids: their types (above) say it
            table = buckets.summarize(iou, values)
            if len(table):
                sections.append(GroupSection(col, col, plots.group_bars(table, col), table))
    return sections


Table = str | Path | pd.DataFrame  # a CSV path, or the table already read


def _table(src: Table, role: str) -> pd.DataFrame:
    return src if isinstance(src, pd.DataFrame) else rules.read_boxes_csv(src, role=role)


def build_report(
    pred_csv: Table,
    labels_csv: Table,
    images_dir: str | Path,
    out_dir: str | Path,
    metadata: str | Path | pd.DataFrame | None = None,
    worst: int = DEFAULT_WORST,
    best: int = DEFAULT_BEST,
    progress: Progress | None = None,
    sources: dict[str, str] | None = None,
) -> ReportResult:
    """Write ``out_dir/index.html`` (everything embedded) and ``out_dir/per_image.csv``.

    The predictions and labels are CSV paths or tables already read (``rules.read_boxes_csv``),
    the metadata a path or :func:`posebowl.datafolder.read_metadata`'s frame; ``sources`` names
    them on the page (default: the paths given). Only the ``worst + best`` gallery images are
    decoded; ``progress(done, total)`` is called after each. Rows that cannot be scored, and
    images missing on disk, are listed on the page and in the result, never dropped silently.
    Raises InvalidSubmissionError when a CSV lacks the required columns and InputError when a
    file is unreadable, nothing can be scored, or ``out_dir`` holds an index.html or
    per_image.csv posebowl did not write.
    """
    if worst < 0 or best < 0:
        raise InputError(
            f"worst={worst} and best={best} must not be negative.", "Pass 0 or more images."
        )
    images_dir, out_dir = Path(images_dir), Path(out_dir)
    labels = _table(labels_csv, "ground-truth")
    predicted = _table(pred_csv, "predictions")
    if metadata is None or isinstance(metadata, pd.DataFrame):
        meta = metadata
    else:
        meta = read_metadata(metadata)
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
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(
            f"Cannot write the report into {out_dir} (it is a file).",
            "Pass a writable folder with -o.",
        )
    claim = claim_files(out_dir, [INDEX_NAME, PER_IMAGE_NAME])
    try:
        _per_image_frame(table).to_csv(out_dir / PER_IMAGE_NAME)
        claim.record(PER_IMAGE_NAME)
        page = Page(
            title="posebowl evaluation report",
            sources=sources or _sources(pred_csv, labels_csv, images_dir, metadata),
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
        claim.record(INDEX_NAME)
        claim.save()
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
    pred: Table, labels: Table, images: Path, metadata: str | Path | pd.DataFrame | None
) -> dict[str, str]:
    def name(src: object) -> str:
        return f"a table of {len(src)} rows" if isinstance(src, pd.DataFrame) else str(src)

    out = {"predictions": name(pred), "labels": name(labels), "images": str(images)}
    if metadata is not None:
        out["metadata"] = name(metadata)
    return out
