from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posebowl.errors import InputError
from posebowl.train.dataset import (
    _yolo_line,
    build_yolo_dataset,
    heldout_split,
    read_labelled_folder,
)
from tests.labelled_data import make_labelled_folder


def _labels(root: Path, split: str) -> dict[str, list[float]]:
    return {
        p.stem: [float(v) for v in p.read_text().split()]
        for p in sorted((root / "labels" / split).glob("*.txt"))
    }


def test_build_holds_out_whole_designs_and_links_images(tmp_path: Path) -> None:
    src = make_labelled_folder(tmp_path / "src", n=16, designs=4)
    ds = build_yolo_dataset([src], tmp_path / "out", val_fraction=0.3, seed=1)
    meta = pd.read_csv(src / "train_metadata.csv", dtype=str).set_index("image_id")
    train_ids, val_ids = _labels(ds.root, "train"), _labels(ds.root, "val")
    assert len(train_ids) == ds.n_train and len(val_ids) == ds.n_val
    assert ds.n_train + ds.n_val == 16 and ds.n_val > 0
    train_designs = set(meta.loc[list(train_ids), "spacecraft_id"])
    val_designs = set(meta.loc[list(val_ids), "spacecraft_id"])
    assert not train_designs & val_designs
    assert val_designs == set(ds.val_groups)
    image = next((ds.root / "images" / "val").iterdir())
    original = src / "images" / image.name
    assert os.stat(image).st_ino == os.stat(original).st_ino  # a hard link, not a copy
    data = json.loads(ds.data_yaml.read_text())
    assert data["names"] == {"0": "spacecraft"}
    assert data["train"] == "images/train" and Path(data["path"]) == ds.root


def test_label_lines_are_normalised_centre_size(tmp_path: Path) -> None:
    src = make_labelled_folder(tmp_path / "src", n=6, size=(200, 100), designs=3)
    ds = build_yolo_dataset([src], tmp_path / "out", val_fraction=0.3)
    labels = pd.read_csv(src / "train_labels.csv", dtype={"image_id": str}).set_index("image_id")
    lines = {**_labels(ds.root, "train"), **_labels(ds.root, "val")}
    for image_id, (cls, cx, cy, w, h) in lines.items():
        x0, y0, x1, y1 = labels.loc[image_id]
        assert cls == 0
        assert cx == pytest.approx((x0 + x1) / 2 / 200, abs=1e-6)
        assert cy == pytest.approx((y0 + y1) / 2 / 100, abs=1e-6)
        assert (w, h) == pytest.approx(((x1 - x0) / 200, (y1 - y0) / 100), abs=1e-6)


def test_heldout_folder_is_a_labelled_folder_of_the_val_images(tmp_path: Path) -> None:
    src = make_labelled_folder(tmp_path / "src", n=12)
    ds = build_yolo_dataset([src], tmp_path / "out", val_fraction=0.3)
    held = read_labelled_folder(ds.heldout)
    assert sorted(held.labels["image_id"]) == sorted(_labels(ds.root, "val"))
    assert held.metadata is not None and len(held.metadata) == ds.n_val
    fmt = pd.read_csv(ds.heldout / "submission_format.csv")
    assert (fmt[["xmin", "ymin", "xmax", "ymax"]] == 0).all().all()


def test_given_val_folders_are_the_validation_set(tmp_path: Path) -> None:
    train = make_labelled_folder(tmp_path / "a", n=8, seed=1)
    val = make_labelled_folder(tmp_path / "b", n=5, seed=2, metadata=False, suffix=".png")
    ds = build_yolo_dataset([train], tmp_path / "out", val=[val])
    assert (ds.n_train, ds.n_val, ds.val_groups) == (8, 5, ())
    assert sorted(p.suffix for p in (ds.root / "images" / "val").iterdir()) == [".png"] * 5


def test_without_metadata_images_are_split_at_random(tmp_path: Path) -> None:
    src = make_labelled_folder(tmp_path / "src", n=40, metadata=False)
    ds = build_yolo_dataset([src], tmp_path / "out", val_fraction=0.25, seed=3)
    assert ds.n_train + ds.n_val == 40 and 2 <= ds.n_val <= 20 and ds.val_groups == ()


def test_rebuilding_into_the_same_folder_replaces_it(tmp_path: Path) -> None:
    src = make_labelled_folder(tmp_path / "src", n=10)
    build_yolo_dataset([src], tmp_path / "out", val_fraction=0.3, seed=0)
    ds = build_yolo_dataset([src], tmp_path / "out", val_fraction=0.3, seed=5)
    n_files = sum(1 for _ in (ds.root / "labels").rglob("*.txt"))
    assert n_files == 10


def test_rebuilding_after_training_replaces_ultralytics_label_caches_only(tmp_path: Path) -> None:
    # a resumed training run rebuilds its dataset: the caches ultralytics wrote beside the labels
    # are part of what posebowl made there, anything else still is not
    src = make_labelled_folder(tmp_path / "src", n=10)
    ds = build_yolo_dataset([src], tmp_path / "out", val_fraction=0.3, seed=0)
    for split in ("train", "val"):
        (ds.root / "labels" / f"{split}.cache").write_bytes(b"cache")
    ds = build_yolo_dataset([src], tmp_path / "out", val_fraction=0.3, seed=0)
    assert not (ds.root / "labels" / "train.cache").exists()
    (ds.root / "labels" / "notes.cache").write_text("mine")
    with pytest.raises(InputError, match="not made by posebowl"):
        build_yolo_dataset([src], tmp_path / "out", val_fraction=0.3, seed=0)
    assert (ds.root / "labels" / "notes.cache").read_text() == "mine"


@pytest.mark.parametrize(
    ("box", "expected"),
    [
        ((0, 0, 100, 50), "0 0.250000 0.250000 0.500000 0.500000\n"),
        ((-50, 0, 50, 100), "0 0.125000 0.500000 0.250000 1.000000\n"),  # clipped at the left
        ((250, 10, 300, 20), ""),  # entirely outside: background image
    ],
)
def test_yolo_line(box: tuple[int, int, int, int], expected: str) -> None:
    assert _yolo_line(np.asarray(box, float), 200, 100) == expected


def _write(root: Path, labels: str | None, images: list[str]) -> Path:
    (root / "images").mkdir(parents=True)
    for name in images:
        (root / "images" / name).write_bytes(b"")
    if labels is not None:
        (root / "train_labels.csv").write_text(labels)
    return root


@pytest.mark.parametrize(
    ("labels", "images", "message"),
    [
        (None, [], "has no train_labels.csv"),
        ("image_id,xmin,ymin,xmax,ymax\na,0,0,10,10\n", [], "missing from"),
        ("image_id,xmin,ymin,xmax,ymax\na,0,0,0,10\n", ["a.png"], "zero area"),
        ("image_id,x\na,1\n", ["a.png"], "invalid"),
    ],
)
def test_bad_folders_are_refused_with_the_reason(
    tmp_path: Path, labels: str | None, images: list[str], message: str
) -> None:
    root = _write(tmp_path / "d", labels, images)
    with pytest.raises(InputError, match=message):
        read_labelled_folder(root)


def test_duplicate_ids_and_foreign_output_folders_are_refused(tmp_path: Path) -> None:
    a = make_labelled_folder(tmp_path / "a", n=4, seed=7)
    b = make_labelled_folder(tmp_path / "b", n=4, seed=7)
    with pytest.raises(InputError, match="more than one data folder"):
        build_yolo_dataset([a], tmp_path / "out", val=[b])
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("x")
    with pytest.raises(InputError, match="not made by posebowl"):
        build_yolo_dataset([a], foreign, val_fraction=0.5)
    assert (foreign / "precious.txt").exists()
    with pytest.raises(InputError, match="between 0 and 1"):
        build_yolo_dataset([a], tmp_path / "out2", val_fraction=1.5)


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(1, 30), min_size=2, max_size=12),
    fraction=st.floats(0.01, 0.99),
    seed=st.integers(0, 2**16),
)
def test_heldout_split_takes_whole_designs_never_all(
    counts: list[int], fraction: float, seed: int
) -> None:
    ids = [f"{k:032x}" for k in range(sum(counts))]
    designs = np.repeat([f"d{k}" for k in range(len(counts))], counts)
    meta = pd.DataFrame({"image_id": ids, "spacecraft_id": designs, "background_id": "x"})
    from posebowl.train.dataset import LabelledFolder

    folder = LabelledFolder(Path("."), pd.DataFrame({"image_id": ids}), meta, {})
    (mask,) = heldout_split([folder], fraction, seed)
    held = set(designs[mask])
    assert held and held != set(designs)  # at least one design, never all of them
    for d in held:  # whole designs only
        assert mask[designs == d].all()
