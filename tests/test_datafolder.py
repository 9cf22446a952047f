"""The data-folder layout and its ownership rule: posebowl never deletes what it did not make."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from posebowl import datafolder as layout
from posebowl.errors import InputError

from .conftest import make_ids


def _write_set(folder: Path, force: bool = False, n: int = 3) -> list[str]:
    """A tiny data set written the way every posebowl writer does."""
    ids = make_ids(n, seed=n)
    claim = layout.claim(folder, force=force)
    with claim.saving():
        (folder / layout.IMAGES_DIR).mkdir()
        for i in ids:
            (folder / layout.IMAGES_DIR / f"{i}.png").write_bytes(b"png")
            claim.record(f"{layout.IMAGES_DIR}/{i}.png")
        layout.write_format(claim, ids)
    return ids


def test_a_new_folder_is_created_and_its_files_recorded(tmp_path: Path) -> None:
    ids = _write_set(tmp_path / "out")
    fmt = pd.read_csv(tmp_path / "out" / layout.FORMAT_CSV, dtype={"image_id": str})
    assert list(fmt["image_id"]) == ids and (fmt.iloc[:, 1:] == 0).all().all()
    assert (tmp_path / "out" / layout.MANIFEST).is_file()


def test_own_output_needs_force_and_force_replaces_only_it(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = _write_set(out, n=3)
    with pytest.raises(InputError, match="--force"):
        _write_set(out, n=4)
    second = _write_set(out, force=True, n=4)
    names = sorted(p.stem for p in (out / layout.IMAGES_DIR).iterdir())
    assert names == sorted(second) and not set(first) & set(names)


@pytest.mark.parametrize("where", ["train_labels.csv", "images/real.png", "notes/readme.txt"])
def test_foreign_files_block_even_with_force_and_survive(tmp_path: Path, where: str) -> None:
    out = tmp_path / "data"
    _write_set(out)
    foreign = out / where
    foreign.parent.mkdir(parents=True, exist_ok=True)
    foreign.write_text("the competitor's")
    with pytest.raises(InputError, match="not made by posebowl") as exc:
        _write_set(out, force=True)
    assert where.split("/")[-1] in exc.value.message
    assert foreign.read_text() == "the competitor's"
    assert (out / layout.FORMAT_CSV).is_file()  # nothing of the earlier set was deleted either


def test_a_folder_without_manifest_is_foreign(tmp_path: Path) -> None:
    out = tmp_path / "data"
    (out / "images").mkdir(parents=True)
    (out / "images" / "x.png").write_bytes(b"png")
    with pytest.raises(InputError, match="1 file"):
        layout.claim(out, force=True)
    assert (out / "images" / "x.png").exists()


def test_claim_all_checks_every_folder_before_deleting(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _write_set(a)
    b.mkdir()
    (b / "mine.csv").write_text("x")
    with pytest.raises(InputError):
        layout.claim_all([(a, "a test set"), (b, "labels")], force=True)
    assert (a / layout.FORMAT_CSV).is_file()


def test_claim_files_leaves_other_files_and_refuses_foreign_names(tmp_path: Path) -> None:
    out = tmp_path / "report"
    out.mkdir()
    (out / "notes.txt").write_text("keep")
    claim = layout.claim_files(out, ["index.html"])
    (out / "index.html").write_text("v1")
    claim.record("index.html")
    claim.save()
    layout.claim_files(out, ["index.html"])  # posebowl's own: may be replaced
    assert (out / "notes.txt").read_text() == "keep"
    (out / "per_image.csv").write_text("theirs")
    with pytest.raises(InputError, match="per_image.csv"):
        layout.claim_files(out, ["index.html", "per_image.csv"])


def test_claim_refuses_a_file_path(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(InputError, match="is a file"):
        layout.claim(f, force=True)


def test_metadata_reader_and_finder(tmp_path: Path) -> None:
    meta = tmp_path / "test_metadata.csv"
    meta.write_text("image_id,spacecraft_id,background_id\n007,3,space-1\n007,4,x\n008,,y\n")
    df = layout.read_metadata(meta)
    assert list(df.index) == ["007", "008"]  # ids kept as text, first row of each
    assert str(df["spacecraft_id"].dtype) == "Int64"
    assert layout.metadata_beside(tmp_path / "test_labels.csv") == meta
    (tmp_path / "bad.csv").write_text("image_id,other\n1,2\n")
    with pytest.raises(InputError, match="lacks the columns"):
        layout.read_metadata(tmp_path / "bad.csv")


def test_image_lookup_knows_every_suffix(tmp_path: Path) -> None:
    for name in ("a.png", "b.jpg", "c.JPEG", "d.txt"):
        (tmp_path / name).write_bytes(b"")
    assert sorted(layout.image_names(tmp_path)) == ["a", "b", "c"]
    assert layout.image_file(tmp_path, "b") == tmp_path / "b.jpg"
    assert layout.image_file(tmp_path, "d") is None
