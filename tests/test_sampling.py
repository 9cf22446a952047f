from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from posebowl.cli.main import cli
from posebowl.errors import InputError
from posebowl.sampling import split_dev, stratified_sample
from tests.conftest import make_ids


def _dev(tmp_path, n=60, meta=True, images=True):
    dev = tmp_path / "dev"
    (dev / "images").mkdir(parents=True)
    ids = make_ids(n, seed=1)
    pd.DataFrame({"image_id": ids, "xmin": 1, "ymin": 2, "xmax": 30, "ymax": 40}).to_csv(
        dev / "train_labels.csv", index=False
    )
    if meta:
        pd.DataFrame(
            {
                "image_id": ids,
                "spacecraft_id": [i % 3 for i in range(n)],
                "background_id": [i % 2 for i in range(n)],
            }
        ).to_csv(dev / "train_metadata.csv", index=False)
    if images:
        for i in ids:
            (dev / "images" / f"{i}.png").write_bytes(b"png")
    return dev


def test_split_stratifies_and_keeps_labels_outside(tmp_path):
    dev = _dev(tmp_path)
    out, lab = tmp_path / "data", tmp_path / "data_labels"
    pick = split_dev(dev, 12, out_dir=out, labels_dir=lab, seed=0)
    assert len(pick) == 12
    # 6 strata of 10 images each -> 2 of each
    assert (pick.groupby(["spacecraft_id", "background_id"]).size() == 2).all()
    fmt = pd.read_csv(out / "submission_format.csv")
    labels = pd.read_csv(lab / "test_labels.csv")
    assert list(fmt.image_id) == list(labels.image_id) == list(pick.image_id)
    assert (fmt.iloc[:, 1:] == 0).all().all()
    assert sorted(p.stem for p in (out / "images").iterdir()) == sorted(pick.image_id)
    assert (lab / "test_metadata.csv").is_file()


def test_split_without_metadata(tmp_path):
    dev = _dev(tmp_path, meta=False)
    pick = split_dev(dev, 5, out_dir=tmp_path / "d", labels_dir=tmp_path / "l")
    assert len(pick) == 5 and "spacecraft_id" not in pick


def test_stratified_sample_is_proportional():
    df = pd.DataFrame({"g": ["a"] * 70 + ["b"] * 20 + ["c"] * 10})
    got = stratified_sample(df, 10, ["g"], np.random.default_rng(0))
    assert got.g.value_counts().to_dict() == {"a": 7, "b": 2, "c": 1}


@pytest.mark.parametrize(
    ("setup", "n", "message"),
    [
        ("ok", 61, "fewer than the 61 asked for"),
        ("ok", 0, "at least 1"),
        ("no_images", 5, "missing from"),
        ("bad_columns", 5, "lacks the columns"),
        ("no_labels", 5, "does not exist"),
    ],
)
def test_split_errors(tmp_path, setup, n, message):
    dev = _dev(tmp_path, images=setup != "no_images")
    if setup == "bad_columns":
        (dev / "train_metadata.csv").write_text("image_id,spacecraft\nx,1\n")
    if setup == "no_labels":
        (dev / "train_labels.csv").unlink()
    with pytest.raises(InputError, match=message):
        split_dev(dev, n, out_dir=tmp_path / "d", labels_dir=tmp_path / "l")


def test_split_cli(tmp_path):
    dev = _dev(tmp_path)
    args = ["data", "split", str(dev), "--n", "6", "--out", str(tmp_path / "d")]
    res = CliRunner().invoke(cli, [*args, "--labels-out", str(tmp_path / "l")])
    assert res.exit_code == 0, res.output
    assert "stratified" in res.output
    res = CliRunner().invoke(cli, [*args, "--labels-out", str(tmp_path / "l")])
    assert res.exit_code == 3 and "--force" in res.output


def test_a_new_split_leaves_no_stale_metadata(tmp_path):
    out, lab = tmp_path / "data", tmp_path / "data_labels"
    split_dev(_dev(tmp_path / "a"), 6, out_dir=out, labels_dir=lab)
    assert (lab / "test_metadata.csv").is_file()
    split_dev(_dev(tmp_path / "b", meta=False), 6, out_dir=out, labels_dir=lab, force=True)
    assert not (lab / "test_metadata.csv").exists()  # it described the previous images


def test_split_never_deletes_the_competitors_data(tmp_path):
    dev = _dev(tmp_path)
    data = tmp_path / "data"  # where the official README says to extract the real data
    (data / "images").mkdir(parents=True)
    (data / "images" / "real.png").write_bytes(b"png")
    (data / "train_labels.csv").write_text("image_id,xmin,ymin,xmax,ymax\n")
    with pytest.raises(InputError, match="not made by posebowl"):
        split_dev(dev, 5, out_dir=data, labels_dir=tmp_path / "l", force=True)
    assert (data / "images" / "real.png").exists() and (data / "train_labels.csv").exists()
