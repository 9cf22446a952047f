import re
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from posebowl.cli.main import cli
from posebowl.errors import InputError, InvalidSubmissionError
from posebowl.metric import score_frames
from posebowl.report import build_report, evaluate, read_metadata, select_gallery
from posebowl.report.evaluate import PRED_COLUMNS, TRUE_COLUMNS
from posebowl.report.gallery import (
    FRAME_THUMB_WIDTH,
    PRED_BGR,
    TRUE_BGR,
    _zoom_window,
    make_card,
)
from tests.conftest import boxes_frame, make_ids
from tests.report_data import make_inputs


def frames(n: int = 6, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    ids = make_ids(n, seed)
    truth = [(10 * i, 10, 10 * i + 100, 110) for i in range(n)]
    pred = [(10 * i + 5 * i, 10, 10 * i + 100 + 5 * i, 110) for i in range(n)]
    return boxes_frame(ids, pred), boxes_frame(ids, truth)


def read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"image_id": str})


def rules(violations) -> set[str]:
    return {v.rule for v in violations}


# --- evaluate: the tolerant scoring ------------------------------------------------------


def test_clean_input_matches_the_official_score():
    pred, truth = frames()
    ev = evaluate(pred, truth)
    official = score_frames(pred, truth)
    assert ev.official == ()
    assert ev.left_out == ()
    assert ev.score == pytest.approx(official.score)
    np.testing.assert_allclose(ev.table["iou"], official.per_image.to_numpy())
    assert list(ev.table.index) == list(truth["image_id"])


def test_shuffled_predictions_are_aligned_by_id_and_flagged_as_officially_invalid():
    pred, truth = frames()
    shuffled = pred.iloc[::-1].reset_index(drop=True)
    ev = evaluate(shuffled, truth)
    assert ev.score == pytest.approx(score_frames(pred, truth).score)
    assert "id_order" in rules(ev.official)
    assert ev.left_out == ()


def test_unknown_and_missing_ids_are_left_out_and_named():
    pred, truth = frames(6)
    stranger = boxes_frame(["f" * 32], [(0, 0, 10, 10)])
    pred = pd.concat([pred.iloc[:4], stranger], ignore_index=True)
    ev = evaluate(pred, truth)
    assert len(ev.table) == 4
    by_rule = {v.rule: v for v in ev.left_out}
    assert by_rule["prediction_not_in_labels"].image_ids == ("f" * 32,)
    assert by_rule["label_without_prediction"].count == 2
    assert set(by_rule["label_without_prediction"].image_ids) == set(truth["image_id"][4:])
    assert {"id_missing", "id_extra"} <= rules(ev.official)
    expected = score_frames(pred.iloc[:4], truth.iloc[:4]).score
    assert ev.score == pytest.approx(expected)


def test_unusable_values_and_repeated_ids_are_left_out():
    pred, truth = frames(5)
    pred = pred.astype({"xmin": float, "xmax": float})
    pred.loc[1, "xmin"] = np.nan
    pred.loc[2, "xmax"] = np.inf
    repeat = pred.iloc[[3]].assign(xmin=999.0)
    pred = pd.concat([pred, repeat], ignore_index=True)
    ev = evaluate(pred, truth)
    by_rule = {v.rule: v for v in ev.left_out}
    assert by_rule["prediction_not_finite"].count == 2
    assert by_rule["prediction_duplicated"].image_ids == (truth["image_id"][3],)
    assert by_rule["label_without_prediction"].count == 2  # the NaN and inf rows
    assert len(ev.table) == 3
    kept = ev.table.loc[truth["image_id"][3], "pred_xmin"]
    assert kept == pred.loc[3, "xmin"]  # the first row of a repeated id is used


def test_nothing_in_common_is_an_input_error():
    _, truth = frames(3)
    other, _ = frames(3, seed=7)
    with pytest.raises(InputError, match="No image id is in both"):
        evaluate(other, truth)


@pytest.mark.parametrize("which", ["pred", "labels"])
def test_wrong_columns_are_rejected(which):
    pred, truth = frames(3)
    if which == "pred":
        pred = pred.rename(columns={"xmin": "x0"})
    else:
        truth = truth.drop(columns="ymax")
    with pytest.raises(InvalidSubmissionError):
        evaluate(pred, truth)


def test_metadata_groups_and_rows_without_metadata(tmp_path):
    pred, truth = frames(4)
    meta_csv = tmp_path / "meta.csv"
    pd.DataFrame(
        {
            "image_id": truth["image_id"][:3],
            "spacecraft_id": [7, 7, 9],
            "background_id": [1, 2, 1],
        }
    ).to_csv(meta_csv, index=False)
    ev = evaluate(pred, truth, read_metadata(meta_csv))
    assert ev.has_metadata
    assert list(ev.table["spacecraft_id"].iloc[:3]) == [7, 7, 9]
    assert pd.isna(ev.table["spacecraft_id"].iloc[3])
    (note,) = ev.left_out
    assert note.rule == "no_metadata"
    assert note.image_ids == (truth["image_id"][3],)


def test_metadata_without_the_columns_is_an_input_error(tmp_path):
    bad = tmp_path / "meta.csv"
    bad.write_text("image_id,spacecraft\nabc,1\n")
    with pytest.raises(InputError, match=r"lacks the columns \['spacecraft_id', 'background_id'\]"):
        read_metadata(bad)
    with pytest.raises(InputError, match="does not exist"):
        read_metadata(tmp_path / "nope.csv")


# --- gallery selection and drawing ---------------------------------------------------------


def test_select_gallery_orders_and_breaks_ties_by_id():
    table = pd.DataFrame(
        {"iou": [0.5, 0.0, 0.9, 0.0, 1.0, 0.7]}, index=["e", "d", "c", "b", "a", "f"]
    )
    worst, best = select_gallery(table, 3, 2)
    assert worst == ["b", "d", "e"]
    assert best == ["a", "c"]
    worst, best = select_gallery(table, 5, 5)  # fewer images than slots: no image twice
    assert worst == ["b", "d", "e", "f", "c"]
    assert best == ["a"]
    assert select_gallery(table, 0, 0) == ([], [])


coord = st.floats(0, 1280, allow_nan=False)


@given(st.lists(coord, min_size=8, max_size=8), st.sampled_from([(1280, 1024), (320, 256)]))
def test_zoom_window_holds_both_boxes_inside_the_image(values, size):
    w, h = size
    a = np.array(values[:4])
    b = np.array(values[4:])
    t = np.array([min(a[0], a[2]), min(a[1], a[3]), max(a[0], a[2]), max(a[1], a[3])])
    p = np.array([min(b[0], b[2]), min(b[1], b[3]), max(b[0], b[2]), max(b[1], b[3])])
    x0, y0, x1, y1 = _zoom_window((w, h), t, p)
    assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
    union = [min(t[0], p[0]), min(t[1], p[1]), max(t[2], p[2]), max(t[3], p[3])]
    assert x0 <= min(union[0], w - 1) and x1 >= min(np.floor(union[2]), w)
    assert y0 <= min(union[1], h - 1) and y1 >= min(np.floor(union[3]), h)


def _decode(uri: str) -> np.ndarray:
    import base64

    raw = base64.b64decode(uri.split(",", 1)[1])
    return cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)


def _row(t, p, iou=0.0) -> pd.Series:
    return pd.Series(
        dict(zip(TRUE_COLUMNS, t, strict=True))
        | dict(zip(PRED_COLUMNS, p, strict=True))
        | {"iou": iou, "bucket": "medium"}
    )


def _near(img: np.ndarray, xy: tuple[int, int], bgr: tuple[int, int, int]) -> bool:
    x, y = xy
    patch = img[max(y - 2, 0) : y + 3, max(x - 2, 0) : x + 3].reshape(-1, 3).astype(int)
    return bool((np.abs(patch - np.array(bgr)).max(axis=1) < 60).any())


def test_card_draws_the_true_box_green_and_the_predicted_box_red(tmp_path):
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), np.zeros((1024, 1280, 3), np.uint8))
    card = make_card(_row((100, 100, 500, 400), (700, 500, 1100, 900)), "a", path)
    assert card.problem is None
    frame = _decode(card.frame_uri)
    assert frame.shape[1] == FRAME_THUMB_WIDTH
    s = FRAME_THUMB_WIDTH / 1280
    assert _near(frame, (round(100 * s), round(250 * s)), TRUE_BGR)  # left edge of the truth
    assert _near(frame, (round(1100 * s), round(700 * s)), PRED_BGR)  # right edge of the guess
    assert not _near(frame, (round(900 * s), round(200 * s)), TRUE_BGR)  # empty sky
    zoom = _decode(card.zoom_uri)
    assert max(zoom.shape[:2]) == 224
    assert card.true_size == "400×300"


def test_card_of_a_missing_or_broken_image_says_so(tmp_path):
    row = _row((10, 10, 50, 50), (20, 20, 60, 60), 0.3)
    missing = make_card(row, "x", tmp_path / "x.png")
    assert missing.problem == "image file missing"
    broken = tmp_path / "y.png"
    broken.write_bytes(b"not a png")
    assert make_card(row, "y", broken).problem == "image could not be decoded"
    assert _decode(missing.frame_uri).shape[1] == FRAME_THUMB_WIDTH


# --- build_report and the command ------------------------------------------------------------


def cards_in(html: str, section: str) -> list[str]:
    block = html.split(f'<div class="gallery" id="{section}"', 1)[1].split('class="gallery"')[0]
    return re.findall(r'data-image-id="([0-9a-f]+)"', block)


def test_build_report_writes_the_page_and_the_per_image_table(tmp_path):
    inp = make_inputs(tmp_path / "in", n=10, seed=3)
    res = build_report(
        inp.pred, inp.labels, inp.images, tmp_path / "out", metadata=inp.metadata, worst=4, best=2
    )
    assert res.path == tmp_path / "out" / "index.html"
    html = res.path.read_text()
    assert res.official_valid and res.left_out == ()
    official = score_frames(read(inp.pred), read(inp.labels))
    expected = official.score
    assert res.score == pytest.approx(expected)
    assert f'id="score">{expected:.4f}<' in html
    assert "accepts these predictions" in html
    for section in ("size bucket", "spacecraft_id", "background_id"):
        assert f"mean IoU by {section}" in html
    per_image = pd.read_csv(tmp_path / "out" / "per_image.csv", dtype={"image_id": str})
    assert len(per_image) == 10
    ranked = official.per_image.rename_axis("image_id").reset_index()
    worst_ids = list(ranked.sort_values(["iou", "image_id"])["image_id"][:4])
    assert cards_in(html, "worst") == worst_ids
    assert len(cards_in(html, "best")) == 2
    assert html.count('class="gallery-img') == 2 * 6
    assert 'src="http' not in html and 'href="http' not in html  # nothing from the network


def test_build_report_renders_what_it_can_from_bad_input(tmp_path):
    inp = make_inputs(tmp_path / "in", n=10, seed=4, extra_pred_ids=2, missing_pred=1)
    worst, _ = select_gallery(evaluate(read(inp.pred), read(inp.labels)).table, 3, 0)
    (inp.images / f"{worst[0]}.png").unlink()
    (inp.images / f"{worst[1]}.png").write_bytes(b"garbage")
    res = build_report(inp.pred, inp.labels, inp.images, tmp_path / "out", worst=3, best=1)
    by_rule = {v.rule: v for v in res.left_out}
    assert by_rule["prediction_not_in_labels"].count == 2
    assert by_rule["label_without_prediction"].image_ids == (inp.ids[-1],)
    assert by_rule["image_missing"].image_ids == (worst[0],)
    assert by_rule["image_unreadable"].image_ids == (worst[1],)
    assert not res.official_valid
    html = res.path.read_text()
    assert "would reject these predictions" in html
    assert "Left out or not shown" in html
    for v in res.left_out:
        assert v.message in html
    assert html.count('data-missing="1"') == 2 * 2  # two cards, two images each
    assert res.scored == 9


def test_ids_are_escaped_in_the_page(tmp_path):
    inp = make_inputs(tmp_path / "in", n=4, seed=5)
    pred = read(inp.pred)
    pred.loc[len(pred)] = ["<script>alert(1)</script>", 1, 1, 2, 2]
    pred.to_csv(inp.pred, index=False)
    res = build_report(inp.pred, inp.labels, inp.images, tmp_path / "out", worst=1, best=0)
    html = res.path.read_text()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_report_command_with_relative_paths(tmp_path, monkeypatch):
    inp = make_inputs(tmp_path / "in", n=6, seed=6, missing_pred=1)
    monkeypatch.chdir(tmp_path)
    args = ["report", "--pred", "in/pred.csv", "--labels", "in/labels.csv"]
    args += ["--images", "in/images", "-o", "out", "--worst", "2", "--best", "1"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    out = Path("out")
    assert f"report written to {out / 'index.html'}" in res.output
    html = (out / "index.html").read_text()
    images = re.escape(inp.images.resolve().as_uri())
    assert re.search(rf'href="{images}/[0-9a-f]{{32}}\.png"', html)
    assert "labelled images with no usable prediction in 1 row" in res.output
    assert "official scorer would reject" in res.output
    assert (out / "index.html").is_file()


def test_report_command_errors(tmp_path):
    inp = make_inputs(tmp_path / "in", n=3, seed=8, n_images=0)
    base = ["report", "--labels", str(inp.labels), "--images", str(inp.images)]
    res = CliRunner().invoke(cli, [*base, "--pred", str(tmp_path / "none.csv")])
    assert res.exit_code == 3
    assert "does not exist" in res.output
    bad = tmp_path / "bad.csv"
    bad.write_text("image_id,x\n")
    res = CliRunner().invoke(cli, [*base, "--pred", str(bad)])
    assert res.exit_code == 1
    assert "columns are" in res.output
    res = CliRunner().invoke(cli, [*base, "--pred", str(inp.pred), "--worst", "-1"])
    assert res.exit_code == 2


def test_missing_images_folder_still_renders(tmp_path):
    inp = make_inputs(tmp_path / "in", n=3, seed=9, n_images=0)
    res = build_report(inp.pred, inp.labels, tmp_path / "nowhere", tmp_path / "out", worst=2)
    assert [v.rule for v in res.left_out] == ["images_dir_missing"]
    assert res.path.read_text().count('data-missing="1"') == 2 * 3


def test_report_path_is_a_file(tmp_path):
    inp = make_inputs(tmp_path / "in", n=3, seed=10, n_images=0)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="Cannot write the report"):
        build_report(inp.pred, inp.labels, inp.images, blocker, worst=0, best=0)


def test_progress_is_reported_once_per_gallery_image(tmp_path):
    inp = make_inputs(tmp_path / "in", n=5, seed=11, n_images=0)
    calls: list[tuple[int, int]] = []
    build_report(
        inp.pred,
        inp.labels,
        inp.images,
        tmp_path / "out",
        worst=3,
        best=1,
        progress=lambda d, t: calls.append((d, t)),
    )
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_public_api():
    import posebowl.report as r

    assert r.__all__ == sorted(r.__all__)
    assert Path(r.__file__).parent.joinpath("template.html").is_file()


def test_synthetic_backgrounds_are_grouped_by_their_type(tmp_path):
    inp = make_inputs(tmp_path / "in", n=90, seed=12, n_images=0)
    ids = pd.read_csv(inp.labels, dtype={"image_id": str})["image_id"]
    kinds = ["space", "limb", "surface"]
    meta = pd.DataFrame(
        {
            "image_id": ids,
            "spacecraft_id": [k % 3 for k in range(len(ids))],
            "background_id": [f"{kinds[k % 3]}-val-{k:05d}" for k in range(len(ids))],
        }
    )
    meta.to_csv(tmp_path / "meta.csv", index=False)
    res = build_report(
        inp.pred, inp.labels, inp.images, tmp_path / "out", tmp_path / "meta.csv", worst=0, best=0
    )
    html = res.path.read_text()
    assert "background type" in html and "surface" in html
    assert "space-val-00003" not in html  # 90 distinct ids: shown by type only
