"""`posebowl run --report`: the evaluation report after a scored run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from posebowl.datafolder import metadata_beside as find_metadata

from .sandbox_helpers import make_data, needs_sandbox, real_runtime

ROOT = Path(__file__).resolve().parents[1]


def posebowl(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", "posebowl.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
    )


@pytest.mark.parametrize(
    ("present", "labels", "want"),
    [
        (["test_labels.csv", "test_metadata.csv"], "test_labels.csv", "test_metadata.csv"),
        (["train_labels.csv", "train_metadata.csv"], "train_labels.csv", "train_metadata.csv"),
        (["labels.csv", "metadata.csv"], "labels.csv", "metadata.csv"),
        (["test_labels.csv", "train_metadata.csv"], "test_labels.csv", None),
    ],
)
def test_find_metadata_beside_the_labels(tmp_path, present, labels, want):
    for name in present:
        (tmp_path / name).write_text("")
    found = find_metadata(tmp_path / labels)
    assert found == (tmp_path / want if want else None)


@pytest.mark.slow  # a new process, or many
def test_report_needs_labels(tmp_path):
    res = posebowl("run", tmp_path / "x.zip", "--report")
    assert res.returncode == 2 and "--report needs --labels" in res.stderr


@pytest.mark.sandbox
@needs_sandbox()
def test_quickstart_run_with_labels_and_report(tmp_path):
    real_runtime()  # skips when the runtime is not built
    data, labels = make_data(tmp_path, n=4, labels_dir="data_labels")
    ids = pd.read_csv(labels)["image_id"]
    pd.DataFrame({"image_id": ids, "spacecraft_id": 7, "background_id": 3}).to_csv(
        labels.parent / "test_metadata.csv", index=False
    )
    z = tmp_path / "submission" / "submission.zip"
    assert posebowl("pack", ROOT / "example_src", "-o", z).returncode == 0
    res = posebowl("run", z, "--data", data, "--labels", labels, "--report", "-q")
    assert res.returncode == 0, res.stderr
    page = tmp_path / "submission" / "report" / "index.html"
    assert page.is_file() and "report written to" in res.stdout
    per_image = pd.read_csv(page.parent / "per_image.csv")
    assert len(per_image) == 4 and (per_image["spacecraft_id"] == 7).all()
    html = page.read_text()
    assert "spacecraft_id" in html
