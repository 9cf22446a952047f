import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from posebowl.cli.main import cli
from posebowl.errors import InputError, InvalidSubmissionError
from posebowl.metric import score_files, score_frames
from tests.conftest import boxes_frame, make_ids

ROOT = Path(__file__).resolve().parents[1]
IDS = make_ids(4)
TRUTH = boxes_frame(IDS, [(0, 0, 10, 10), (100, 100, 200, 300), (5, 5, 6, 6), (0, 0, 1280, 1024)])


def test_perfect_and_zero_scores():
    assert score_frames(TRUTH.copy(), TRUTH).score == pytest.approx(1.0)
    zeros = boxes_frame(IDS, [(0, 0, 0, 0)] * 4)
    assert score_frames(zeros, TRUTH).score == 0.0


def test_score_is_mean_of_per_image_iou():
    pred = boxes_frame(
        IDS, [(5, 0, 15, 10), (100, 100, 200, 300), (50, 50, 60, 60), (0, 0, 640, 1024)]
    )
    res = score_frames(pred, TRUTH)
    expected = [50 / 150, 1.0, 0.0, 0.5]
    np.testing.assert_allclose(res.per_image.to_numpy(), expected)
    assert res.score == pytest.approx(np.mean(expected))
    assert list(res.per_image.index) == IDS


def _with(df, row, col, value):
    df = df.copy()
    df[col] = df[col].astype(object) if isinstance(value, str) else df[col].astype(float)
    df.loc[row, col] = value
    return df


INVALID = [
    # (name, predictions, expected rule, words the message must contain)
    ("nan", _with(TRUTH, 1, "xmin", np.nan), "missing", "missing"),
    ("inf", _with(TRUTH, 1, "ymax", np.inf), "non_finite", "infinite"),
    ("negative", _with(TRUTH, 2, "ymin", -1), "negative", "negative"),
    ("xmin>xmax", _with(TRUTH, 0, "xmin", 11), "xmin_gt_xmax", "xmin is greater than xmax"),
    ("ymin>ymax", _with(TRUTH, 0, "ymin", 11), "ymin_gt_ymax", "ymin is greater than ymax"),
    ("text", _with(TRUTH, 0, "xmax", "abc"), "not_a_number", "not numbers"),
    ("missing id", TRUTH.iloc[:3], "id_missing", "missing"),
    (
        "extra id",
        pd.concat([TRUTH, boxes_frame(["f" * 32], [(0, 0, 1, 1)])]),
        "id_extra",
        "not in the expected list",
    ),
    ("duplicated id", pd.concat([TRUTH, TRUTH.iloc[[1]]]), "id_duplicated", "duplicated"),
    ("misordered", TRUTH.iloc[[1, 0, 2, 3]], "id_order", "order"),
    ("wrong columns", TRUTH.rename(columns={"xmax": "x_max"}), "columns", "x_max"),
    ("missing column", TRUTH.drop(columns=["ymax"]), "columns", "missing ['ymax']"),
    (
        "reordered columns",
        TRUTH[["image_id", "ymin", "xmin", "xmax", "ymax"]],
        "columns",
        "in that order",
    ),
]


@pytest.mark.parametrize(("name", "pred", "rule", "words"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_predictions_are_rejected_with_a_clear_message(name, pred, rule, words):
    with pytest.raises(InvalidSubmissionError) as info:
        score_frames(pred.reset_index(drop=True), TRUTH)
    rules = [v.rule for v in info.value.violations]
    assert rule in rules
    v = info.value.violations[rules.index(rule)]
    assert words in v.message
    if v.count:  # row-level problems name the offending ids
        assert any(i in v.message for i in [*IDS, "f" * 32])


def test_zero_area_truth_is_rejected():
    truth = _with(TRUTH, 2, "xmax", 5)
    with pytest.raises(InvalidSubmissionError, match="ground-truth boxes have zero area") as info:
        score_frames(TRUTH, truth)
    assert IDS[2] in str(info.value)


def test_message_names_first_ten_ids_and_the_count():
    ids = make_ids(25, seed=3)
    truth = boxes_frame(ids, [(0, 0, 10, 10)] * 25)
    pred = boxes_frame(ids, [(-1, 0, 10, 10)] * 25)
    with pytest.raises(InvalidSubmissionError) as info:
        score_frames(pred, truth)
    msg = info.value.violations[0].message
    assert "in 25 rows" in msg and "and 15 more" in msg
    assert all(i in msg for i in ids[:10]) and ids[10] not in msg


def test_missing_file_is_an_input_error(tmp_path):
    TRUTH.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(InputError, match="does not exist"):
        score_files(tmp_path / "nope.csv", tmp_path / "t.csv")


def _official_reference(pred: pd.DataFrame, truth: pd.DataFrame) -> float:
    """The official definition written out plainly (per-row loop, continuous coordinates)."""
    total = 0.0
    for p, t in zip(
        pred[["xmin", "ymin", "xmax", "ymax"]].to_numpy(),
        truth[["xmin", "ymin", "xmax", "ymax"]].to_numpy(),
        strict=True,
    ):
        iw = max(min(p[2], t[2]) - max(p[0], t[0]), 0)
        ih = max(min(p[3], t[3]) - max(p[1], t[1]), 0)
        inter = iw * ih
        union = (t[2] - t[0]) * (t[3] - t[1]) + (p[2] - p[0]) * (p[3] - p[1]) - inter
        total += inter / union
    return total / len(pred)


def test_matches_official_definition_on_random_data():
    rng = np.random.default_rng(7)
    n = 500
    ids = make_ids(n, seed=11)

    def rand_boxes(min_size):
        x0 = rng.integers(0, 1200, n)
        y0 = rng.integers(0, 1000, n)
        return np.stack(
            [x0, y0, x0 + rng.integers(min_size, 300, n), y0 + rng.integers(min_size, 300, n)],
            axis=1,
        )

    truth = boxes_frame(ids, rand_boxes(1).tolist())
    pred = boxes_frame(ids, rand_boxes(0).tolist())
    assert score_frames(pred, truth).score == pytest.approx(_official_reference(pred, truth))


def test_cli_prints_json_and_per_image(tmp_path):
    TRUTH.to_csv(tmp_path / "truth.csv", index=False)
    TRUTH.to_csv(tmp_path / "pred.csv", index=False)
    res = CliRunner().invoke(
        cli,
        [
            "score",
            str(tmp_path / "pred.csv"),
            str(tmp_path / "truth.csv"),
            "--per-image",
            str(tmp_path / "per.csv"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == {"score": 1.0}
    per = pd.read_csv(tmp_path / "per.csv")
    assert list(per.columns) == ["image_id", "iou"] and len(per) == 4


@pytest.mark.slow  # a new process, or many
def test_cli_invalid_exits_1_with_sentence(tmp_path):
    TRUTH.to_csv(tmp_path / "truth.csv", index=False)
    _with(TRUTH, 0, "xmin", -3).to_csv(tmp_path / "pred.csv", index=False)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "posebowl.cli.main",
            "score",
            str(tmp_path / "pred.csv"),
            str(tmp_path / "truth.csv"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert "negative" in proc.stderr and IDS[0] in proc.stderr


@pytest.mark.slow  # a new process, or many
def test_official_script_shim(tmp_path):
    TRUTH.to_csv(tmp_path / "truth.csv", index=False)
    boxes_frame(IDS, [(0, 0, 0, 0)] * 4).to_csv(tmp_path / "fmt.csv", index=False)
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "score.py"),
            str(tmp_path / "fmt.csv"),
            str(tmp_path / "truth.csv"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(proc.stdout) == {"score": 0.0}
