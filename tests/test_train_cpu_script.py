"""scripts/train_cpu.sh: background start, stop, resume and the hours it records (tiny scale)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.labelled_data import make_labelled_folder

pytestmark = [pytest.mark.train, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "train_cpu.sh"


def _script(command: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), command],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def _epochs(run: Path) -> list[int]:
    log = run / "runs" / "train" / "epochs.jsonl"
    if not log.is_file():
        return []
    return [json.loads(x)["epoch"] for x in log.read_text().splitlines() if x.strip()]


def test_stopped_run_resumes_and_records_its_sessions(tmp_path: Path) -> None:
    import sys

    data = make_labelled_folder(tmp_path / "data", n=24, designs=4)
    run = tmp_path / "run"
    env = dict(
        os.environ,
        RUN=str(run),
        DATA=str(data),
        POSEBOWL=str(Path(sys.executable).parent / "posebowl"),
        IMGSZ="64",
        EPOCHS="3",
        BATCH="2",
        WORKERS="0",
        THREADS="1",
        EXPORT_IMGSZ="128",
        EXTRA_ARGS="--val-fraction 0.3 --formats onnx",
        YOLO_CONFIG_DIR=str(tmp_path / "yolo"),
    )
    started = _script("start", env)
    assert started.returncode == 0 and "started" in started.stdout, started.stderr
    assert _script("start", env).returncode == 1  # one run at a time
    deadline = time.monotonic() + 600
    while not _epochs(run) and time.monotonic() < deadline:
        time.sleep(0.5)
    stopped = _script("stop", env)
    assert stopped.stdout.strip() in {"stopped", "killed"}
    assert "not running" in _script("status", env).stdout
    assert (run / "recovered.pt").is_file()  # the committed weights, recovered
    assert 1 <= len(_epochs(run)) < 3

    finished = _script("run", env)
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    assert _epochs(run) == [1, 2, 3]
    sessions = pd.read_csv(run / "sessions.tsv", sep="\t")
    assert sessions["rc"].astype(str).tolist() == ["143", "0"]
    assert (sessions["seconds"] > 0).all()
    status = _script("status", env).stdout
    assert "epochs finished: 3 of 3" in status and "wall hours" in status
    summary = json.loads((run / "summary.json").read_text())
    assert summary["resumed"] is True and summary["bn_frozen"] == "stats"
    assert summary["epoch_hours"] > 0
    config = json.loads((run / "model" / "config.json").read_text())
    assert config["imgsz"] == 128 and config["flip_tta"] is True
