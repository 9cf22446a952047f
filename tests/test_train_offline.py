"""Training, export and the benchmark with the [train] extra: offline, end to end, tiny scale.

One tiny run (1 epoch at 64 px) is shared by the tests below. It runs in a child process whose
``sitecustomize`` replaces every way to open a network connection (and records pip calls), so
the training, the export and the benchmark's main.py run as they would with the network off.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from posebowl import rules
from posebowl.cli.main import cli
from tests.labelled_data import make_labelled_folder

pytestmark = pytest.mark.train
ROOT = Path(__file__).resolve().parents[1]
MAIN = ROOT / "example_benchmark" / "main.py"

GUARD = """
import json, os, socket, subprocess

_LOG = os.environ["NET_GUARD_LOG"]


def _record(kind, detail):
    with open(_LOG, "a") as f:
        f.write(json.dumps([os.getpid(), kind, detail]) + "\\n")


def _blocked(kind):
    def call(*args, **kwargs):
        _record(kind, repr(args[:2]))
        raise OSError(f"network disabled by the test ({kind})")
    return call


socket.socket.connect = _blocked("connect")
socket.socket.connect_ex = _blocked("connect_ex")
socket.create_connection = _blocked("create_connection")
socket.getaddrinfo = _blocked("getaddrinfo")
_init = subprocess.Popen.__init__


def _popen(self, args, *a, **k):
    text = repr(args)
    if "pip" in text or " uv " in text:
        _record("pip", text)
    return _init(self, args, *a, **k)


subprocess.Popen.__init__ = _popen
"""


def _env(tmp: Path, guard_dir: Path, log: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(guard_dir),
        NET_GUARD_LOG=str(log),
        HOME=str(tmp / "home"),  # no user consent files or settings from the real home
        YOLO_CONFIG_DIR=str(tmp / "yolo-config"),
        XDG_CACHE_HOME=str(tmp / "cache"),
    )
    for key in ("YOLO_OFFLINE", "YOLO_AUTOINSTALL"):  # posebowl must set these itself
        env.pop(key, None)
    return env


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    tmp = tmp_path_factory.mktemp("train")
    (tmp / "home").mkdir()
    guard_dir = tmp / "guard"
    guard_dir.mkdir()
    (guard_dir / "sitecustomize.py").write_text(GUARD)
    log = tmp / "network.jsonl"
    log.touch()
    src = make_labelled_folder(tmp / "src", n=16, designs=4)
    out = tmp / "run"
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "posebowl.cli.main", "train", "run", "--data", str(src)),
            *("--out", str(out), "--imgsz", "64", "--epochs", "1", "--batch", "8"),
            *("--workers", "0", "--export-imgsz", "128", "--val-fraction", "0.3"),
            "--eval-exported",
        ],
        env=_env(tmp, guard_dir, log),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    return {"proc": proc, "calls": calls, "out": out, "tmp": tmp}


def test_training_export_and_benchmark_attempt_no_network_call(tiny_run: dict) -> None:
    proc = tiny_run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert tiny_run["calls"] == []


def test_guard_would_catch_a_connection(tmp_path: Path) -> None:
    """The guard itself works: an online check in a guarded child is recorded."""
    guard_dir = tmp_path / "guard"
    guard_dir.mkdir()
    (guard_dir / "sitecustomize.py").write_text(GUARD)
    log = tmp_path / "log.jsonl"
    code = (
        "import socket\n"
        "try:\n    socket.create_connection(('1.1.1.1', 80), 1)\n"
        "except OSError:\n    pass"
    )
    subprocess.run([sys.executable, "-c", code], env=_env(tmp_path, guard_dir, log), check=True)
    assert [c[1] for c in map(json.loads, log.read_text().splitlines())] == ["create_connection"]


def test_run_leaves_weights_model_summary_and_offline_settings(tiny_run: dict) -> None:
    out: Path = tiny_run["out"]
    assert (out / "runs" / "train" / "weights" / "best.pt").is_file()
    assert (out / "runs" / "train" / "results.csv").is_file()
    for name in ("model.onnx", "model.xml", "model.bin", "config.json"):
        assert (out / "model" / name).is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert 0.0 <= summary["heldout_pt"]["score"] <= 1.0
    assert summary["heldout_exported"]["images"] == summary["dataset"]["val"]
    assert set(summary["heldout_pt"]["by_bucket"]) <= {"small", "medium", "large", "truncated"}
    config_dir: Path = tiny_run["tmp"] / "yolo-config"
    assert (config_dir / "Arial.ttf").is_file() and (config_dir / "Arial.Unicode.ttf").is_file()
    settings = json.loads((config_dir / "settings.json").read_text())
    assert settings["sync"] is False and settings["hub"] is False


def _frames(root: Path, n: int = 3) -> Path:
    """PNG frames at the competition size and a submission_format.csv."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    ids = [f"{k:032x}" for k in range(n)]
    for image_id in ids:
        img = rng.integers(0, 60, (1024, 1280, 3), dtype=np.uint8)
        cv2.rectangle(img, (500, 400), (800, 650), (230, 230, 230), -1)
        cv2.imwrite(str(root / "images" / f"{image_id}.png"), img)
    fmt = pd.DataFrame({"image_id": ids, "xmin": 0, "ymin": 0, "xmax": 0, "ymax": 0})
    fmt.to_csv(root / "submission_format.csv", index=False)
    return root


def _run_main(model_dir: Path, data: Path, sub: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(MAIN), str(data), str(sub)],
        env=dict(os.environ, POSEBOWL_MODEL_DIR=str(model_dir), **env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
def test_exported_model_gives_a_valid_submission(
    tiny_run: dict, tmp_path: Path, backend: str
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    for p in (tiny_run["out"] / "model").iterdir():
        (model / p.name).write_bytes(p.read_bytes())
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "imgsz": 320, "min_score": 0.0}))
    data = _frames(tmp_path / "data")
    proc = _run_main(model, data, tmp_path / "sub.csv", POSEBOWL_BACKEND=backend)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"backend {backend}" in proc.stderr and "letterbox 320" in proc.stderr
    assert "fallback box for 0 " in proc.stderr
    sub = rules.read_boxes_csv(tmp_path / "sub.csv")
    fmt = rules.read_boxes_csv(data / "submission_format.csv")
    assert rules.submission_violations(sub, fmt) == []


def test_nothing_found_uses_the_fallback_box_and_says_so(tiny_run: dict, tmp_path: Path) -> None:
    model = tiny_run["out"] / "model"
    data = _frames(tmp_path / "data", n=2)
    high = tmp_path / "model"
    high.mkdir()
    for p in model.iterdir():
        (high / p.name).write_bytes(p.read_bytes())
    config = json.loads((high / "config.json").read_text())
    (high / "config.json").write_text(json.dumps({**config, "imgsz": 320, "min_score": 2.0}))
    proc = _run_main(high, data, tmp_path / "sub.csv")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "fallback box for 2 (no detection 2, unreadable 0)" in proc.stderr
    sub = pd.read_csv(tmp_path / "sub.csv")
    assert sub[["xmin", "ymin", "xmax", "ymax"]].values.tolist() == [config["fallback_box"]] * 2


def test_cli_evaluate_exported_model_and_checkpoint(tiny_run: dict) -> None:
    out: Path = tiny_run["out"]
    heldout = out / "dataset" / "heldout"
    runner = CliRunner()
    res = runner.invoke(cli, ["train", "evaluate", str(out / "model"), str(heldout), "--json"])
    assert res.exit_code == 0, res.output
    exported = json.loads(res.output)
    summary = json.loads((out / "summary.json").read_text())
    assert exported["score"] == pytest.approx(summary["heldout_exported"]["score"])
    best = out / "runs" / "train" / "weights" / "best.pt"
    res = runner.invoke(cli, ["train", "evaluate", str(best), str(heldout), "--imgsz", "64"])
    assert res.exit_code == 0, res.output
    assert "mean IoU" in res.output and "by size bucket" in res.output


def test_models_are_never_fetched_by_name(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "cfg"))
    from posebowl.errors import InputError
    from posebowl.train.fit import load_model

    for name in ("yolo11n.pt", "yolov8n.pt", "missing.yaml"):
        with pytest.raises(InputError):
            load_model(name)


def test_amp_check_is_local(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "cfg"))
    import torch

    from posebowl.train import offline

    offline.import_ultralytics()
    import ultralytics.engine.trainer as trainer

    assert trainer.check_amp is offline._amp_on_cuda
    assert trainer.check_amp(torch.nn.Linear(2, 2)) is False
    assert os.environ["YOLO_OFFLINE"] == "true"


@pytest.mark.slow
def test_device_script_at_tiny_scale(tmp_path: Path) -> None:
    """The whole device script on CPU at tiny scale, with the real synthetic generator."""
    out = tmp_path / "out"
    env = dict(
        os.environ,
        PYTHON=sys.executable,
        OUT=str(out),
        WORK=str(tmp_path / "work"),
        N_TRAIN="10",
        N_VAL="4",
        SYNTH_WORKERS="2",
        DEVICE="cpu",
        IMGSZ="64",
        EPOCHS="1",
        TRAIN_MIN="0",
        BATCH="4",
        WORKERS="0",
        CACHE="none",
    )
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "train_on_device.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    files = sorted(p.name for p in out.iterdir())
    assert files == sorted(
        [
            "args.yaml",
            "best.pt",
            "heldout_pt_per_image.csv",
            "model.onnx",
            "results.csv",
            "summary.json",
            "train_log.txt",
        ]
    )
    assert all((out / f).stat().st_size < 16 << 20 for f in files)
    log = (out / "train_log.txt").read_text()
    assert "held-out mean IoU:" in log and "done; files in" in log
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"]["train"] == 10 and summary["dataset"]["val"] == 4
    synth = tmp_path / "work" / "synth"
    held = pd.read_csv(synth / "heldout" / "train_metadata.csv")
    train = pd.read_csv(synth / "train" / "train_metadata.csv")
    # validation only on designs never trained on, and no image id in both sets
    assert not set(held.spacecraft_id) & set(train.spacecraft_id)
    assert not set(held.image_id) & set(train.image_id)
    assert all(p.suffix == ".jpg" for p in (synth / "train" / "images").iterdir())


def test_bench_detector_reports_every_size(tiny_run: dict, tmp_path: Path) -> None:
    data = make_labelled_folder(tmp_path / "d", n=3, size=(1280, 1024), suffix=".png")
    report = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            *(sys.executable, str(ROOT / "benchmarks" / "bench_detector.py")),
            *(str(tiny_run["out"] / "model"), str(data), "--sizes", "320,640"),
            *("--json", str(report)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(report.read_text())["rows"]
    assert [r["size"] for r in rows] == [320, 640]
    for r in rows:
        assert r["images"] == 3 and r["bound_ms"] == pytest.approx(
            r["decode_ms"] + r["infer_ms"], abs=0.2
        )
        assert r["e2e_ms"] > 0 and 0 <= r["iou"] <= 1 and r["peak_rss_mb"] > 0
