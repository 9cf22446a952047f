"""``posebowl train`` commands that need no torch: dataset, and the errors before training."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from posebowl.cli.main import cli
from posebowl.synth.pool import SpritePool
from posebowl.train import pipeline
from posebowl.train.dataset import read_labelled_folder
from tests.labelled_data import make_labelled_folder


def test_dataset_command_builds_the_layout(tmp_path: Path) -> None:
    src = make_labelled_folder(tmp_path / "src", n=10, designs=5)
    res = CliRunner().invoke(cli, ["train", "dataset", str(src), "-o", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert "training and" in res.output and "held-out designs: sc" in res.output
    assert (tmp_path / "out" / "data.yaml").is_file()


def test_dataset_command_reports_bad_input_in_one_sentence(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    res = CliRunner().invoke(cli, ["train", "dataset", str(tmp_path / "empty"), "-o", "x"])
    assert res.exit_code == 3
    assert "has no train_labels.csv" in res.output


def test_generate_makes_a_labelled_folder_of_the_split(tmp_path: Path) -> None:
    lines: list[str] = []
    out = pipeline.generate(4, tmp_path / "g", "heldout", 1, lines.append)
    folder = read_labelled_folder(out)
    assert len(folder) == 4
    assert all(p.suffix == ".jpg" for p in folder.images.values())
    held_out = SpritePool(split="heldout").index["spacecraft_id"]
    assert set(folder.metadata["spacecraft_id"]) <= set(held_out)
    assert lines and "generating 4 heldout images" in lines[0]


def test_run_without_data_is_refused(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["train", "run", "--out", str(tmp_path / "run")])
    assert res.exit_code == 3 and "No training data folder" in res.output
