import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from posebowl import rules
from posebowl.cli.main import cli
from tests.conftest import boxes_frame, make_ids

IDS = make_ids(3, seed=5)
FMT = boxes_frame(IDS, [(0, 0, 0, 0)] * 3)
GOOD = boxes_frame(IDS, [(0, 0, 10, 10), (100, 200, 1280, 1024), (3, 3, 3, 3)])


def broken(sub, fmt=FMT):
    return [v.rule for v in rules.submission_violations(sub, fmt)]


def test_good_submission_has_no_violations():
    assert broken(GOOD) == []


def test_every_problem_reported_at_once():
    bad = GOOD.copy().astype({"xmin": float})
    bad.loc[0, "xmin"] = 20.5  # > xmax and not an integer
    bad.loc[1, "xmax"] = 1300  # outside the frame
    bad.loc[2, "ymax"] = 1025
    got = broken(bad)
    for rule in ("xmin_gt_xmax", "xmax_outside_frame", "ymax_outside_frame", "xmin_not_integer"):
        assert rule in got


@pytest.mark.parametrize(
    ("mutate", "rule"),
    [
        (lambda d: d.iloc[:2], "id_missing"),
        (lambda d: d.iloc[[0, 2, 1]], "id_order"),
        (lambda d: d.assign(xmin=d.xmin.astype(float) + 0.5), "xmin_not_integer"),
        (lambda d: d.assign(ymin=[-1, 0, 0]), "negative"),
        (lambda d: d.assign(extra=1), "columns"),
        (lambda d: d.assign(ymin=[np.nan, 0, 0]), "missing"),
    ],
)
def test_platform_rules(mutate, rule):
    assert rule in broken(mutate(GOOD).reset_index(drop=True))


def test_integer_valued_floats_still_break_the_dtype_rule():
    # The platform compares dtypes with the format file: 10.0 is not 10.
    assert "xmin_not_integer" in broken(GOOD.astype({"xmin": float}))


def test_empty_submission():
    assert broken(GOOD.iloc[:0]) == ["empty"]


def test_cli_validate(tmp_path):
    FMT.to_csv(tmp_path / "fmt.csv", index=False)
    GOOD.to_csv(tmp_path / "ok.csv", index=False)
    bad = GOOD.assign(xmax=[10, 2000, 3])
    bad.to_csv(tmp_path / "bad.csv", index=False)
    runner = CliRunner()
    ok = runner.invoke(cli, ["validate", str(tmp_path / "ok.csv"), str(tmp_path / "fmt.csv")])
    assert ok.exit_code == 0 and "is valid" in ok.output
    res = runner.invoke(
        cli, ["validate", str(tmp_path / "bad.csv"), str(tmp_path / "fmt.csv"), "--json"]
    )
    assert res.exit_code == 1
    data = json.loads(res.output)
    assert data["valid"] is False
    assert data["problems"][0]["rule"] == "xmax_outside_frame"
    assert data["problems"][0]["image_ids"] == [IDS[1]]


def test_unreadable_csv_is_an_input_error(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(Exception, match="is empty"):
        rules.read_boxes_csv(tmp_path / "empty.csv")


def test_ids_keep_leading_zeros(tmp_path):
    ids = ["0" * 31 + "1"]
    boxes_frame(ids, [(0, 0, 1, 1)]).to_csv(tmp_path / "a.csv", index=False)
    assert rules.read_boxes_csv(tmp_path / "a.csv").image_id.tolist() == ids
    assert isinstance(pd.read_csv(tmp_path / "a.csv").image_id[0], np.integer)  # the trap


def test_validate_with_a_format_lacking_image_id_is_a_clear_error(tmp_path):
    (tmp_path / "fmt.csv").write_text("id,xmin,ymin,xmax,ymax\nx,0,0,0,0\n")
    (tmp_path / "sub.csv").write_text("image_id,xmin,ymin,xmax,ymax\nx,0,0,1,1\n")
    res = CliRunner().invoke(
        cli, ["validate", str(tmp_path / "sub.csv"), str(tmp_path / "fmt.csv")]
    )
    assert res.exit_code == 3 and "does not start with an image_id column" in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)


def test_validate_refuses_a_submission_far_larger_than_its_rows(tmp_path):
    (tmp_path / "fmt.csv").write_text("image_id,xmin,ymin,xmax,ymax\nx,0,0,0,0\n")
    with open(tmp_path / "sub.csv", "wb") as f:
        f.write(b"image_id,xmin,ymin,xmax,ymax\n")
        f.write(b"x,0,0,1,1\n" * 300_000)  # 3 MB for 1 row
    res = CliRunner().invoke(
        cli, ["validate", str(tmp_path / "sub.csv"), str(tmp_path / "fmt.csv")]
    )
    assert res.exit_code == 3 and "it was not read" in res.output
