"""posebowl's verdicts are the official ones, on random and mutated CSVs.

`posebowl score` must accept exactly what the official scorer accepts, with the same score;
`posebowl validate` (and a run's checks) exactly what the platform's checks accept, plus the
scorer's non-negative rule. The reference is a plain transcription of the official code
(tests/official_transcription.py), pandas' defaults included.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posebowl.cli.main import cli
from posebowl.errors import InputError, InvalidSubmissionError
from posebowl.metric import score_files

from . import official_transcription as ref

HEADER = "image_id,xmin,ymin,xmax,ymax"
# odd but real things people write in a cell
CELLS = [
    "0",
    "5",
    "+5",
    "-1",
    "-0",
    "0005",
    " 7",
    "7 ",
    "1.5",
    "2.0",
    "1e3",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "",
    "abc",
    "0x10",
    "99999999999999999999",
    "1" * 40,
    "True",
    "False",
    "1280",
    "1281",
    "1024",
    "1025",
    '"12"',
    "12\x00",
    "\x00",
]
IDS = ["a3f", "0b1", "001", "1", "7", "c0ffee", "12\x00", "", "x y", '"q"', "nan", "TRUE"]


@st.composite
def rows(draw: st.DrawFn, n: int) -> list[list[str]]:
    out = []
    for k in range(n):
        x0, y0 = draw(st.integers(0, 1200)), draw(st.integers(0, 1000))
        out.append(
            [
                f"id{k:03d}",
                str(x0),
                str(y0),
                str(x0 + draw(st.integers(0, 80))),
                str(y0 + draw(st.integers(0, 24))),
            ]
        )
    return out


@st.composite
def mutated(draw: st.DrawFn, base: list[list[str]]) -> bytes:
    """``base`` as CSV text after a few random edits of cells, ids, rows, columns or bytes."""
    body = [list(r) for r in base]
    header = HEADER.split(",")
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(
            st.sampled_from(["cell", "id", "drop", "dup", "swap", "column", "header", "bytes"])
        )
        if kind == "cell" and body:
            r = draw(st.integers(0, len(body) - 1))
            c = draw(st.integers(0, len(body[r]) - 1))
            body[r][c] = draw(st.sampled_from(CELLS))
        elif kind == "id" and body:
            body[draw(st.integers(0, len(body) - 1))][0] = draw(st.sampled_from(IDS))
        elif kind == "drop" and body:
            body.pop(draw(st.integers(0, len(body) - 1)))
        elif kind == "dup" and body:
            body.append(list(body[draw(st.integers(0, len(body) - 1))]))
        elif kind == "swap" and len(body) > 1:
            body[0], body[-1] = body[-1], body[0]
        elif kind == "column":
            order = draw(st.permutations(range(len(header))))
            header = [header[i] for i in order]
            body = [[r[i] if i < len(r) else "" for i in order] for r in body]
        elif kind == "header":
            header = draw(
                st.sampled_from(
                    [
                        [*header, "extra"],
                        header[:-1],
                        ["image_id", "x_min", *header[2:]],
                        ["Image_id", *header[1:]],
                    ]
                )
            )
    text = "\n".join([",".join(header), *(",".join(r) for r in body)]) + "\n"
    data = text.encode()
    if draw(st.booleans()) and draw(st.integers(0, 9)) == 0:
        data = data.replace(b"\n", b"\r\n")
    if draw(st.integers(0, 14)) == 0:
        data = data[:-3] + b"\xff\xfe\n"  # not UTF-8
    return data


def _ours_score(pred: Path, truth: Path) -> float | None:
    try:
        return score_files(pred, truth).score
    except (InvalidSubmissionError, InputError):
        return None


def _ours_valid(sub: Path, fmt: Path) -> bool | None:
    res = CliRunner().invoke(cli, ["validate", str(sub), str(fmt)])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.output
    return {0: True, 1: False}.get(res.exit_code)


SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.mark.slow
@SETTINGS
@given(data=st.data())
def test_score_verdict_and_value_are_the_official_ones(tmp_path: Path, data: st.DataObject) -> None:
    base = data.draw(rows(data.draw(st.integers(0, 6))))
    truth, pred = tmp_path / "truth.csv", tmp_path / "pred.csv"
    truth.write_bytes(
        data.draw(mutated(base))
        if data.draw(st.integers(0, 4)) == 0
        else ("\n".join([HEADER, *(",".join(r) for r in base)]) + "\n").encode()
    )
    pred.write_bytes(data.draw(mutated(base)))
    want, got = ref.score(pred, truth), _ours_score(pred, truth)
    assert (want is None) == (got is None), (pred.read_bytes(), truth.read_bytes(), want, got)
    if want is not None:
        assert got is not None and math.isclose(got, want, rel_tol=1e-12, abs_tol=0.0)


@pytest.mark.slow
@SETTINGS
@given(data=st.data())
def test_validate_verdict_is_the_platforms(tmp_path: Path, data: st.DataObject) -> None:
    base = data.draw(rows(data.draw(st.integers(1, 6))))
    fmt, sub = tmp_path / "fmt.csv", tmp_path / "sub.csv"
    fmt.write_text("\n".join([HEADER, *(f"{r[0]},0,0,0,0" for r in base)]) + "\n")
    sub.write_bytes(data.draw(mutated(base)))
    want = ref.submission_ok(sub, fmt) and ref.non_negative(sub)
    got = _ours_valid(sub, fmt)
    if got is None:  # posebowl could not read the file at all: the platform fails it too
        assert not want, sub.read_bytes()
        return
    assert got == want, sub.read_bytes()


@pytest.mark.parametrize(
    ("cells", "accepted"),
    [
        (["+5", "0", "10", "10"], True),  # pandas reads +5 as 5
        (["0x10", "0", "20", "20"], False),
        (["99999999999999999999", "0", "10", "10"], False),
        (["True", "0", "10", "10"], False),
    ],
)
def test_named_cases_from_the_issue(tmp_path: Path, cells: list[str], accepted: bool) -> None:
    fmt, sub = tmp_path / "fmt.csv", tmp_path / "sub.csv"
    fmt.write_text(f"{HEADER}\nabc,0,0,0,0\n")
    sub.write_text(f"{HEADER}\nabc,{','.join(cells)}\n")
    assert ref.submission_ok(sub, fmt) == accepted
    assert _ours_valid(sub, fmt) == accepted


def test_numeric_ids_compare_as_the_official_code_reads_them(tmp_path: Path) -> None:
    truth, pred = tmp_path / "truth.csv", tmp_path / "pred.csv"
    truth.write_text(f"{HEADER}\n001,0,0,10,10\n2,0,0,10,10\n")
    # image_id is the index wherever it stands; 001 and 1 are the same number
    pred.write_text("xmin,image_id,ymin,xmax,ymax\n0,1,0,10,10\n0,2,0,10,10\n")
    assert ref.score(pred, truth) == pytest.approx(1.0)
    assert _ours_score(pred, truth) == pytest.approx(1.0)
    pred.write_text(f"{HEADER}\n1,0,0,10,10\n02,0,0,5,10\n")
    assert ref.score(pred, truth) == pytest.approx(0.75)
    assert _ours_score(pred, truth) == pytest.approx(0.75)


def test_header_only_files_are_refused_like_the_official_nan(tmp_path: Path) -> None:
    truth, pred = tmp_path / "truth.csv", tmp_path / "pred.csv"
    truth.write_text(HEADER + "\n")
    pred.write_text(HEADER + "\n")
    assert ref.score(pred, truth) is None and _ours_score(pred, truth) is None


def test_negative_labels_with_a_positive_area_are_scored(tmp_path: Path) -> None:
    truth, pred = tmp_path / "truth.csv", tmp_path / "pred.csv"
    truth.write_text(f"{HEADER}\nabc,-10,-10,10,10\n")
    pred.write_text(f"{HEADER}\nabc,0,0,10,10\n")
    assert ref.score(pred, truth) == pytest.approx(0.25)
    assert _ours_score(pred, truth) == pytest.approx(0.25)
