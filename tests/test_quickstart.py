import subprocess
import sys
from pathlib import Path

import pytest

from posebowl import rules

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # a new process, or many
def test_quickstart_writes_a_valid_submission(tiny_data, tmp_path):
    out = tmp_path / "submission" / "submission.csv"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "example_src" / "main.py"), str(tiny_data), str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    fmt = rules.read_boxes_csv(tiny_data / "submission_format.csv")
    assert rules.submission_violations(rules.read_boxes_csv(out), fmt) == []
    assert proc.stderr.count("images done") <= 11  # progress without flooding the log
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "posebowl.cli.main",
            "validate",
            str(out),
            str(tiny_data / "submission_format.csv"),
        ],
        capture_output=True,
    )
    assert cli.returncode == 0
