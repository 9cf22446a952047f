from __future__ import annotations

from pathlib import Path

import pytest

from posebowl.buckets import background_type
from posebowl.errors import InvalidSubmissionError
from posebowl.train.dataset import read_labelled_folder
from posebowl.train.evaluate import evaluate_predictions
from tests.labelled_data import make_labelled_folder


@pytest.mark.parametrize(
    ("background_id", "expected"),
    [("earth_03", "earth"), ("Space-12", "space"), ("mixed7", "mixed"), (17, "17"), ("", "")],
)
def test_background_type(background_id: object, expected: str) -> None:
    assert background_type(background_id) == expected


def test_perfect_predictions_score_one_in_every_group(tmp_path: Path) -> None:
    folder = read_labelled_folder(make_labelled_folder(tmp_path / "d", n=8, designs=2))
    result = evaluate_predictions(folder.labels.copy(), folder)
    assert result.score == pytest.approx(1.0)
    assert set(result.by_background.index) == {"earth", "space"}
    assert (result.by_background["mean"] == 1.0).all()
    assert result.by_bucket["count"].sum() == 8
    assert list(result.per_image.index) == list(folder.labels["image_id"])


def test_breakdowns_are_means_of_their_images(tmp_path: Path) -> None:
    folder = read_labelled_folder(make_labelled_folder(tmp_path / "d", n=8, designs=2))
    pred = folder.labels.copy()
    earth = folder.metadata["background_id"].str.startswith("earth").to_numpy()
    pred.loc[earth, ["xmin", "ymin", "xmax", "ymax"]] = 0  # earth images: IoU 0
    pred.loc[earth, ["xmax", "ymax"]] = 1
    result = evaluate_predictions(pred, folder, fallbacks=3, seconds=1.5)
    assert result.by_background.loc["earth", "mean"] == pytest.approx(0.0)
    assert result.by_background.loc["space", "mean"] == pytest.approx(1.0)
    assert result.score == pytest.approx(1 - earth.mean())
    d = result.to_dict()
    assert d["fallbacks"] == 3 and d["images"] == 8 and d["seconds"] == 1.5
    assert d["by_background"]["earth"]["below_0.5"] == earth.sum()


def test_no_metadata_means_no_background_table(tmp_path: Path) -> None:
    folder = read_labelled_folder(make_labelled_folder(tmp_path / "d", n=4, metadata=False))
    result = evaluate_predictions(folder.labels.copy(), folder)
    assert result.by_background is None and "background" not in result.per_image


def test_predictions_in_another_order_are_rejected(tmp_path: Path) -> None:
    folder = read_labelled_folder(make_labelled_folder(tmp_path / "d", n=4))
    shuffled = folder.labels.iloc[::-1].reset_index(drop=True)
    with pytest.raises(InvalidSubmissionError, match="order"):
        evaluate_predictions(shuffled, folder)
