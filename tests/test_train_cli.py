"""``posebowl train`` commands that need no torch: dataset, and the errors before training."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from posebowl.cli.main import cli
from posebowl.train import pipeline
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


def test_run_without_data_is_refused(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["train", "run", "--out", str(tmp_path / "run")])
    assert res.exit_code == 3 and "No training data folder" in res.output
