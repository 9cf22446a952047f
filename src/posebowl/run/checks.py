"""After main.sh: the platform's checks on submission.csv, and the score against labels.

Both are the official verdicts (:mod:`posebowl.official`) on the files read once, the way the
official code reads them. submission.csv is read only up to a size its rows can need, so a
submission that writes gigabytes cannot exhaust the host's memory. The labels are read by the
host, after the run, once; they are never mounted in the sandbox.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from posebowl import metric, official, rules, sandbox
from posebowl.errors import InputError
from posebowl.findings import Violation

SUBMISSION_CSV = "submission.csv"


def check_output(csv: Path, fmt: pd.DataFrame) -> tuple[pd.DataFrame | None, list[Violation]]:
    """Read submission.csv and run the platform's checks on it: (the table, the problems).

    ``fmt`` is the format file as :func:`posebowl.official.read` reads it. A missing,
    oversized or unreadable file is a violation (and no table).
    """
    if not csv.is_file():
        written = f"{sandbox.SUBMISSION}/{SUBMISSION_CSV} was not written"
        return None, [Violation("missing", written)]
    size = csv.stat().st_size
    if size > metric.size_cap(len(fmt)):
        return None, [too_large(size, len(fmt))]
    try:
        sub = official.read(io.BytesIO(csv.read_bytes()))
    except Exception as exc:
        return None, [Violation("unreadable", f"{SUBMISSION_CSV} is not a readable CSV ({exc})")]
    return sub, rules.check_submission(sub, fmt)


def too_large(size: int, rows: int) -> Violation:
    """submission.csv is larger than ``rows`` rows can need: it is neither copied nor read."""
    cap = metric.size_cap(rows)
    return Violation(
        "too_large",
        f"{SUBMISSION_CSV} is {size / 1e6:,.0f} MB, far more than the {cap / 1e6:,.0f} MB its "
        f"{rows:,} rows can need, so it was not read",
    )


def read_labels(labels: Path) -> pd.DataFrame:
    """The labels file as the official scorer reads it (indexed by image_id), or InputError."""
    table = official.read_for_scorer(labels, "actual")
    if isinstance(table, str):
        try:
            labels.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            table = "it is not UTF-8 text"
        except OSError as exc:
            table = f"it cannot be read ({exc.strerror})"
        raise InputError(
            f"The labels file {labels} cannot be scored against: {table}.",
            f"Pass the competition's labels: {','.join(rules.COLUMNS)}.",
        )
    return table


def labels_of_run(fmt: pd.DataFrame, table: pd.DataFrame, labels: Path) -> pd.DataFrame:
    """The rows of the labels ``table`` (:func:`read_labels`) for the images the run saw, in
    the format file's order; InputError when one of those images has no row."""
    ids = pd.Index(fmt[rules.INDEX_COLUMN])
    unique = table[~table.index.duplicated()]
    truth = unique.reindex(ids)
    lacking = ids[~ids.isin(unique.index)]
    if len(lacking):
        raise InputError(
            f"The labels file {labels} has no row for {len(lacking)} of the images "
            f"(e.g. {lacking[0]}).",
            "Pass the labels of this data folder.",
        )
    return truth


def score(submitted: pd.DataFrame, truth: pd.DataFrame) -> float:
    """The official score of ``submitted`` (as read) against ``truth`` (:func:`labels_of_run`)."""
    outcome = official.score_tables(submitted.set_index(rules.INDEX_COLUMN), truth)
    if not outcome.accepted:
        assert outcome.reason is not None
        raise metric.refusal(outcome.reason, submitted, truth.reset_index())
    assert outcome.score is not None
    return outcome.score
