"""``posebowl train`` commands that need no torch: dataset, and the errors before training."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from posebowl.cli.main import cli
from posebowl.errors import SetupError
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


def test_generate_without_the_generator_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "synth_available", lambda: False)
    res = CliRunner().invoke(
        cli, ["train", "run", "--generate", "10", "--out", str(tmp_path / "run")]
    )
    assert res.exit_code == 4
    assert "posebowl.synth" in res.output and "--data DIR" in res.output


def test_generate_calls_the_generator_with_its_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = Path(__file__).with_name("fake_synth.py")
    monkeypatch.setattr(pipeline, "SYNTH_COMMAND", [sys.executable, str(fake)])
    monkeypatch.setattr(pipeline, "synth_available", lambda: True)
    lines: list[str] = []
    out = pipeline.generate(5, tmp_path / "g", "heldout", 3, lines.append)
    assert len(read_labelled_folder(out)) == 5
    assert (out / "args.txt").read_text().split() == [
        *("--n", "5", "--out", str(tmp_path / "g"), "--split", "heldout"),
        *("--workers", "3", "--image-format", "jpg"),
    ]
    assert lines and "generating 5 heldout images" in lines[0]


def test_generator_failure_shows_its_last_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        pipeline, "SYNTH_COMMAND", [sys.executable, "-c", "raise SystemExit('boom')"]
    )
    monkeypatch.setattr(pipeline, "synth_available", lambda: True)
    with pytest.raises(SetupError, match="boom"):
        pipeline.generate(5, tmp_path / "g", "train", 1, lambda _: None)


def test_run_without_data_is_refused(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["train", "run", "--out", str(tmp_path / "run")])
    assert res.exit_code == 3 and "No training data folder" in res.output
