"""The submission rules: one place for the columns, the frame and every rule.

The platform checks a ``submission.csv`` against ``submission_format.csv`` after ``main.sh`` ends;
the official scorer checks predictions against the labels. Both sets of rules live here and
return a list of :class:`~posebowl.findings.Violation` (every problem at once, never only the
first), used by ``posebowl validate``, ``posebowl score`` and the sandbox's verdict.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from posebowl.errors import InputError
from posebowl.findings import Violation, violation

INDEX_COLUMN = "image_id"
BOX_COLUMNS = ("xmin", "ymin", "xmax", "ymax")
COLUMNS = (INDEX_COLUMN, *BOX_COLUMNS)
FRAME_WIDTH = 1280
FRAME_HEIGHT = 1024


def _ids(df: pd.DataFrame, mask: np.ndarray) -> list[str]:
    """The image ids of the rows in ``mask`` (only those are turned into Python strings)."""
    return [str(i) for i in df[INDEX_COLUMN].to_numpy()[mask]]


def _rows(rule: str, what: str, df: pd.DataFrame, mask: np.ndarray) -> Violation:
    """A violation for the rows of ``df`` selected by ``mask``."""
    return violation(rule, what, _ids(df, mask))


def read_boxes_csv(path: str | Path, role: str = "predictions") -> pd.DataFrame:
    """Read a box CSV as written (no index set, ``image_id`` as text), with clear errors."""
    p = Path(path)
    if not p.is_file():
        raise InputError(
            f"The {role} file {p} does not exist.", "Check the path (or create the file first)."
        )
    if p.stat().st_size == 0:
        raise InputError(
            f"The {role} file {p} is empty.",
            f"Write a header line {','.join(COLUMNS)} and one row per image.",
        )
    # Imported here so the rest of posebowl also runs where pyarrow is absent (the GPU machine).
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    try:
        # pyarrow parses 1M rows ~4x faster than the C engine and keeps ids as arrow strings.
        table = pa_csv.read_csv(
            p, convert_options=pa_csv.ConvertOptions(column_types={INDEX_COLUMN: pa.string()})
        )
        df = table.to_pandas(types_mapper=pd.ArrowDtype)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise InputError(
            f"The {role} file {p} is not a readable CSV ({exc}).",
            "Write plain comma-separated text with one header line.",
        ) from exc
    return df


def box_array(df: pd.DataFrame) -> np.ndarray:
    """The box columns as a float64 ``[N, 4]`` array; missing or non-numeric values are NaN."""
    return np.stack(
        [
            pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            for c in BOX_COLUMNS
        ],
        axis=1,
    )


def column_violations(df: pd.DataFrame) -> list[Violation]:
    """The columns must be exactly ``image_id,xmin,ymin,xmax,ymax`` in that order."""
    got = [str(c) for c in df.columns]
    if got == list(COLUMNS):
        return []
    msg = f"columns are {got}, expected exactly {list(COLUMNS)} in that order"
    missing = [c for c in COLUMNS if c not in got]
    extra = [c for c in got if c not in COLUMNS]
    if missing:
        msg += f"; missing {missing}"
    if extra:
        msg += f"; unexpected {extra}"
    return [Violation("columns", msg)]


def index_violations(got: pd.Series, expected: pd.Series) -> list[Violation]:
    """``got`` image ids must equal ``expected`` exactly: same ids, once each, same order."""
    g = pd.Index(got)
    e = pd.Index(expected)
    if g.equals(e):
        return []
    out: list[Violation] = []
    if g.hasnans:
        out.append(Violation("id_missing_value", "some image_id values are empty"))
    dup = g[g.duplicated()].unique()
    if len(dup):
        out.append(violation("id_duplicated", "image ids are duplicated", dup))
    ge, ee = set(g), set(e)
    missing = [i for i in e.unique() if i not in ge]
    if missing:
        out.append(violation("id_missing", "image ids are missing", missing))
    extra = [i for i in g.unique() if i not in ee]
    if extra:
        out.append(violation("id_extra", "image ids are not in the expected list", extra))
    if not out:
        if len(g) != len(e):
            out.append(Violation("id_count", f"{len(g)} rows, expected {len(e)}"))
        else:
            wrong = g[np.asarray(g != e)]
            out.append(violation("id_order", "image ids are not in the expected order", wrong))
    return out


def value_violations(df: pd.DataFrame, role: str = "predicted") -> list[Violation]:
    """Values the official scorer rejects: missing, non-finite, negative, inverted boxes.

    ``df`` must already have the right columns.
    """
    out: list[Violation] = []
    v = box_array(df)
    raw_missing = df[list(BOX_COLUMNS)].isna().to_numpy().any(axis=1)
    not_number = np.isnan(v).any(axis=1) & ~raw_missing
    if not_number.any():
        out.append(_rows("not_a_number", f"{role} values are not numbers", df, not_number))
    if raw_missing.any():
        out.append(_rows("missing", f"{role} values are missing (NaN)", df, raw_missing))
    present = ~np.isnan(v)
    nonfinite = (present & ~np.isfinite(v)).any(axis=1)
    if nonfinite.any():
        out.append(_rows("non_finite", f"{role} values are infinite", df, nonfinite))
    with np.errstate(invalid="ignore"):
        negative = (v < 0).any(axis=1)
        if negative.any():
            out.append(_rows("negative", f"{role} values are negative", df, negative))
        bad_x = v[:, 0] > v[:, 2]
        if bad_x.any():
            out.append(_rows("xmin_gt_xmax", "xmin is greater than xmax", df, bad_x))
        bad_y = v[:, 1] > v[:, 3]
        if bad_y.any():
            out.append(_rows("ymin_gt_ymax", "ymin is greater than ymax", df, bad_y))
    return out


def frame_violations(df: pd.DataFrame) -> list[Violation]:
    """Boxes must lie inside the 1280x1024 frame (the platform checks xmax and ymax)."""
    out: list[Violation] = []
    v = box_array(df)
    with np.errstate(invalid="ignore"):
        for col, limit in (("xmax", FRAME_WIDTH), ("ymax", FRAME_HEIGHT)):
            bad = v[:, BOX_COLUMNS.index(col)] > limit
            if bad.any():
                out.append(_rows(f"{col}_outside_frame", f"{col} is greater than {limit}", df, bad))
    return out


def dtype_violations(df: pd.DataFrame) -> list[Violation]:
    """Box columns must be integers (the format file's dtype), as the platform requires."""
    out: list[Violation] = []
    for col in BOX_COLUMNS:
        if pd.api.types.is_integer_dtype(df[col]):
            continue
        v = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            bad = ~(np.isfinite(v) & (v == np.round(v)))
        offenders = _ids(df, bad if bad.any() else np.ones(len(df), bool))
        out.append(
            violation(
                f"{col}_not_integer",
                f"column {col} is {df[col].dtype}, not integer (write whole pixels, e.g. "
                f"df[{list(BOX_COLUMNS)}].round().astype(int))",
                offenders,
            )
        )
    return out


def submission_violations(submission: pd.DataFrame, fmt: pd.DataFrame) -> list[Violation]:
    """Every check the platform runs on ``submission.csv`` after ``main.sh`` (plus >= 0)."""
    out = column_violations(submission)
    if out:
        return out
    if submission.empty and not fmt.empty:
        return [Violation("empty", f"the file has no rows, expected {len(fmt)}")]
    out += index_violations(submission[INDEX_COLUMN], fmt[INDEX_COLUMN])
    out += value_violations(submission, role="submitted")
    out += frame_violations(submission)
    out += dtype_violations(submission)
    return out


def prediction_violations(predicted: pd.DataFrame, actual: pd.DataFrame) -> list[Violation]:
    """Every check the official scorer runs before scoring ``predicted`` against ``actual``."""
    out = column_violations(predicted)
    if out:
        return out
    out += index_violations(predicted[INDEX_COLUMN], actual[INDEX_COLUMN])
    out += value_violations(predicted)
    return out


def label_violations(actual: pd.DataFrame) -> list[Violation]:
    """What the official scorer minds in ground truth: the columns, and every box's area
    ``(ymax - ymin) * (xmax - xmin)`` must be a positive number (negative coordinates and
    even inverted boxes with a positive product pass, as they do there)."""
    out = column_violations(actual)
    if out:
        return out
    v = box_array(actual)
    not_number = np.isnan(v).any(axis=1)
    if not_number.any():
        out.append(
            _rows(
                "label_not_a_number",
                "ground-truth values are missing or not numbers",
                actual,
                not_number,
            )
        )
    with np.errstate(invalid="ignore", over="ignore"):
        area = (v[:, 2] - v[:, 0]) * (v[:, 3] - v[:, 1])
        zero = ~(area > 0) & ~not_number
    if zero.any():
        out.append(_rows("label_zero_area", "ground-truth boxes have zero area", actual, zero))
    return out


def check_submission(submission: pd.DataFrame, fmt: pd.DataFrame) -> list[Violation]:
    """The platform's verdict on ``submission`` (both tables read with pandas' defaults, as
    :func:`posebowl.official.read` does), plus the scorer's non-negative rule.

    Empty when the platform would accept it. Otherwise every problem posebowl finds, with the
    rows at fault, then what the platform's own check says.
    """
    from posebowl import official

    problems = official.submission_problems(submission, fmt)
    if not problems:
        v = box_array(submission)
        with np.errstate(invalid="ignore"):
            negative = (v < 0).any(axis=1)
        if negative.any():
            return [
                _rows(
                    "negative",
                    "submitted values are negative (the scorer refuses them)",
                    submission,
                    negative,
                )
            ]
        return []
    said = [Violation("platform", f"the platform's check says: {p}") for p in problems]
    return [*submission_violations(submission, fmt), *said]
