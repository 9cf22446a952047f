"""After main.sh: the platform's checks on submission.csv, and the score against labels.

The labels are read by the host, after the run, once; they are never mounted in the sandbox.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from posebowl import metric, rules, sandbox
from posebowl.errors import InputError
from posebowl.findings import Violation

SUBMISSION_CSV = "submission.csv"


def check_output(csv: Path, fmt: pd.DataFrame) -> tuple[pd.DataFrame | None, list[Violation]]:
    """Read submission.csv and run the platform's checks on it: (the table, the problems).

    A missing or unreadable file is a violation (and no table).
    """
    if not csv.is_file():
        return None, [
            Violation("missing", f"{sandbox.SUBMISSION}/{SUBMISSION_CSV} was not written")
        ]
    try:
        sub = rules.read_boxes_csv(csv, role="submission")
    except InputError as exc:
        return None, [Violation("unreadable", exc.message.rstrip("."))]
    return sub, rules.submission_violations(sub, fmt)


def read_labels(labels: Path) -> pd.DataFrame:
    """The labels file as written (InputError when it is unreadable)."""
    return rules.read_boxes_csv(labels, role="labels")


def labels_of_run(fmt: pd.DataFrame, table: pd.DataFrame, labels: Path) -> pd.DataFrame:
    """The rows of the labels ``table`` (read from ``labels``) for the images the run saw, in
    the format file's order; InputError when one of those images has no row."""
    key = rules.INDEX_COLUMN
    actual = table.drop_duplicates(key)
    merged = fmt[[key]].merge(actual, on=key, how="left", indicator=True)
    lacking = merged.loc[merged["_merge"] == "left_only", key]
    if len(lacking):
        raise InputError(
            f"The labels file {labels} has no row for {len(lacking)} of the images "
            f"(e.g. {lacking.iloc[0]}).",
            "Pass the labels of this data folder.",
        )
    return merged.drop(columns="_merge")


def score(submitted: pd.DataFrame, truth: pd.DataFrame) -> float:
    """The official score of ``submitted`` against ``truth`` (:func:`labels_of_run`)."""
    return metric.score_frames(submitted, truth).score
