from __future__ import annotations

import re

import cv2
import pandas as pd
import pytest
from click.testing import CliRunner

from posebowl.cli.main import cli
from posebowl.errors import InputError
from posebowl.rules import COLUMNS, FRAME_HEIGHT, FRAME_WIDTH, label_violations
from posebowl.synth import dataset
from posebowl.synth.pool import SHIPPED_SPRITES, SpritePool, read_index


def test_generate_writes_the_competition_layout(tmp_path, sprite_dir):
    out = tmp_path / "train"
    df = dataset.generate(out, 5, split="all", seed=1, workers=1, sprite_dir=sprite_dir)
    labels = pd.read_csv(out / "train_labels.csv", dtype={"image_id": str})
    meta = pd.read_csv(out / "train_metadata.csv", dtype={"image_id": str})
    fmt = pd.read_csv(out / "submission_format.csv", dtype={"image_id": str})
    assert list(labels.columns) == list(COLUMNS)
    assert list(meta.columns) == ["image_id", "spacecraft_id", "background_id"]
    assert list(fmt.columns) == list(COLUMNS)
    assert (fmt.iloc[:, 1:] == 0).all().all()
    assert list(labels.image_id) == list(meta.image_id) == list(fmt.image_id) == list(df.image_id)
    assert label_violations(labels) == []
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in labels.image_id)
    assert set(meta.spacecraft_id) <= set(range(7))
    assert meta.background_id.str.fullmatch(r"(space|limb|surface|random)-train-\d{5}").all()
    for i in labels.image_id:
        img = cv2.imread(str(out / "images" / f"{i}.png"), cv2.IMREAD_UNCHANGED)
        assert img.shape == (FRAME_HEIGHT, FRAME_WIDTH, 3)
    assert len(list((out / "images").iterdir())) == 5


@pytest.mark.slow  # a new process, or many
def test_output_does_not_depend_on_workers(tmp_path, sprite_dir, monkeypatch):
    monkeypatch.setattr(dataset, "CHUNK", 3)  # 3 chunks for 2 workers from 8 images
    a = dataset.generate(tmp_path / "a", 8, split="all", seed=3, workers=1, sprite_dir=sprite_dir)
    b = dataset.generate(tmp_path / "b", 8, split="all", seed=3, workers=2, sprite_dir=sprite_dir)
    pd.testing.assert_frame_equal(a, b)
    one = next((tmp_path / "a" / "images").iterdir())
    assert one.read_bytes() == (tmp_path / "b" / "images" / one.name).read_bytes()


def test_jpg_output(tmp_path, sprite_dir):
    dataset.generate(tmp_path, 2, split="all", workers=1, image_format="jpg", sprite_dir=sprite_dir)
    assert all(p.suffix == ".jpg" for p in (tmp_path / "images").iterdir())


@pytest.mark.slow
def test_splits_keep_held_out_designs_and_the_family_apart(tmp_path, sprite_dir):
    kw = {"workers": 1, "sprite_dir": sprite_dir}
    train = dataset.generate(tmp_path / "t", 8, split="train", **kw)
    held = dataset.generate(tmp_path / "h", 3, split="heldout", **kw)
    fam = dataset.generate(tmp_path / "f", 4, split="family", **kw)
    assert set(held.spacecraft_id) == {5}  # id % 6 == 5 is held out
    assert set(fam.spacecraft_id) == {6}  # id % 7 == 6: the held-out family
    assert not {5, 6} & set(train.spacecraft_id)
    # the family split is also over the validation background recipe, the others are not
    assert fam.background_id.str.contains("-val-").all()
    assert train.background_id.str.contains("-train-").all()
    assert held.background_id.str.contains("-train-").all()
    val = dataset.generate(tmp_path / "v", 2, split="train", recipe="val", **kw)
    assert val.background_id.str.contains("-val-").all()
    assert not set(val.image_id) & set(train.image_id)


def test_sample_test_set_keeps_labels_outside(tmp_path, sprite_dir):
    data, labels = tmp_path / "data", tmp_path / "data_labels"
    dataset.sample_test_set(data, labels, 3, split="all", sprite_dir=sprite_dir)
    # and the list of what posebowl wrote there (never mounted in the sandbox)
    assert sorted(p.name for p in data.iterdir()) == [
        ".posebowl-files",
        "images",
        "submission_format.csv",
    ]
    assert (labels / "test_labels.csv").is_file() and (labels / "test_metadata.csv").is_file()
    with pytest.raises(InputError, match="inside the data folder"):
        dataset.sample_test_set(data, data / "labels", 3, sprite_dir=sprite_dir, force=True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "at least 1"),
        ({"image_format": "gif"}, "Unknown image format"),
        ({"workers": 0}, "at least 1"),
        ({"split": "test"}, "Unknown split"),
        ({"recipe": "test"}, "Unknown background recipe"),
    ],
)
def test_bad_inputs(tmp_path, sprite_dir, kwargs, message):
    args = {"n": 2, "workers": 1, "sprite_dir": sprite_dir, **kwargs}
    with pytest.raises(InputError, match=message):
        dataset.generate(tmp_path, **args)


def test_refuses_to_overwrite_without_force(tmp_path, sprite_dir):
    dataset.generate(tmp_path, 1, split="all", workers=1, sprite_dir=sprite_dir)
    with pytest.raises(InputError, match="already holds a data set made by posebowl"):
        dataset.generate(tmp_path, 1, split="all", workers=1, sprite_dir=sprite_dir)
    dataset.generate(tmp_path, 2, split="all", workers=1, sprite_dir=sprite_dir, force=True)
    assert len(list((tmp_path / "images").iterdir())) == 2


def test_sprite_folder_errors(tmp_path, sprite_dir):
    with pytest.raises(InputError, match="index.csv does not exist"):
        SpritePool(tmp_path)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "index.csv").write_text("sprite,spacecraft_id\nx.png,1\n")
    with pytest.raises(InputError, match="lacks the columns"):
        read_index(bad)
    (bad / "index.csv").write_text("sprite,spacecraft_id,view_id,held_out\nx.png,1,0,False\n")
    with pytest.raises(InputError, match="not on disk"):
        read_index(bad)


def test_shipped_pool_is_complete_and_small():
    index = read_index(SHIPPED_SPRITES)
    assert index.spacecraft_id.nunique() >= 40
    assert index.groupby("spacecraft_id").size().min() >= 3
    designs = index.drop_duplicates("spacecraft_id")
    counts = designs.split.value_counts()
    assert counts["train"] >= 40 and counts["heldout"] >= 6 and counts["family"] >= 6
    assert set(designs[designs.split == "family"].family) == {"probe"}
    assert "probe" not in set(designs[designs.split != "family"].family)
    assert designs[designs.split == "train"].family.nunique() == 5
    size = sum(p.stat().st_size for p in SHIPPED_SPRITES.iterdir())
    assert size < 15 * 2**20
    img = cv2.imread(str(SHIPPED_SPRITES / index.sprite.iloc[0]), cv2.IMREAD_UNCHANGED)
    assert img.shape[2] == 4 and 150 <= max(img.shape[:2]) <= 600
    # cropped to the object: alpha reaches every border
    a = img[..., 3] > 0
    assert a[0].any() and a[-1].any() and a[:, 0].any() and a[:, -1].any()


def test_cli_images_and_sample(tmp_path, sprite_dir):
    res = CliRunner().invoke(
        cli,
        [
            "synth",
            "images",
            "--n",
            "3",
            "--out",
            str(tmp_path / "t"),
            "--workers",
            "1",
            "--split",
            "family",
            "--sprites",
            str(sprite_dir),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "3 images" in res.output and "truncated" in res.output
    assert "backgrounds:" in res.output
    meta = pd.read_csv(tmp_path / "t" / "train_metadata.csv")
    assert set(meta.spacecraft_id) == {6} and meta.background_id.str.contains("-val-").all()
    res = CliRunner().invoke(
        cli,
        [
            "data",
            "sample",
            "--n",
            "2",
            "--out",
            str(tmp_path / "data"),
            "--labels-out",
            str(tmp_path / "lab"),
            "--sprites",
            str(sprite_dir),
            "--split",
            "all",
        ],
    )
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(tmp_path / "lab" / "test_labels.csv")) == 2


def test_cli_preview(tmp_path, sprite_dir):
    out = tmp_path / "sheet.png"
    res = CliRunner().invoke(
        cli,
        [
            "synth",
            "preview",
            "--n",
            "3",
            "--cols",
            "2",
            "--out",
            str(out),
            "--split",
            "all",
            "--sprites",
            str(sprite_dir),
        ],
    )
    assert res.exit_code == 0, res.output
    sheet = cv2.imread(str(out))
    assert sheet.shape[1] == 2 * (480 + 2)


def test_cli_bad_input_exit_code(tmp_path):
    res = CliRunner().invoke(
        cli, ["synth", "images", "--n", "1", "--out", str(tmp_path), "--sprites", str(tmp_path)]
    )
    assert res.exit_code == 3


def test_cli_preview_from_a_test_set(tmp_path, sprite_dir):
    data, labels = tmp_path / "data", tmp_path / "data_labels"
    dataset.sample_test_set(data, labels, 3, split="all", sprite_dir=sprite_dir)
    out = tmp_path / "sheet.png"
    res = CliRunner().invoke(cli, ["synth", "preview", "--from", str(data), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert cv2.imread(str(out)).shape[1] == 4 * (480 + 2)
    (labels / "test_labels.csv").unlink()
    res = CliRunner().invoke(cli, ["synth", "preview", "--from", str(data), "--out", str(out)])
    assert res.exit_code == 3 and "--labels" in res.output


def test_force_never_deletes_what_posebowl_did_not_make(tmp_path, sprite_dir):
    data, labels = tmp_path / "data", tmp_path / "data_labels"
    dataset.sample_test_set(data, labels, 3, split="all", sprite_dir=sprite_dir)
    real = data / "images" / "downloaded.png"  # a competitor's real image, dropped in later
    real.write_bytes(b"png")
    (labels / "train_labels.csv").write_text("theirs")
    with pytest.raises(InputError, match="not made by posebowl"):
        dataset.sample_test_set(data, labels, 3, split="all", sprite_dir=sprite_dir, force=True)
    assert real.read_bytes() == b"png" and (labels / "train_labels.csv").read_text() == "theirs"
    real.unlink()
    (labels / "train_labels.csv").unlink()
    again = dataset.sample_test_set(data, labels, 2, split="all", sprite_dir=sprite_dir, force=True)
    assert sorted(p.stem for p in (data / "images").iterdir()) == sorted(again.image_id)
