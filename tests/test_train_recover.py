"""Recovering trainable weights from the committed export, fine-tuning them, resuming, exporting.

Uses the committed benchmark model (example_benchmark/model) and the real synthetic generator;
the trainings run at 64 px on a few drawn images, so each takes seconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from posebowl.cli.main import cli
from posebowl.errors import InputError
from tests.labelled_data import make_labelled_folder

pytestmark = pytest.mark.train
ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "example_benchmark" / "model"


@pytest.fixture(autouse=True)
def _yolo_config(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    cfg = tmp_path_factory.getbasetemp() / "yolo-config"
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(cfg))


@pytest.fixture(scope="module")
def recovered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed model recovered into a checkpoint, through the CLI."""
    out = tmp_path_factory.mktemp("recovered") / "recovered.pt"
    res = CliRunner().invoke(cli, ["train", "recover", str(COMMITTED), str(out), "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report["yaml"] == "yolo11n.yaml" and report["names"] == {"0": "spacecraft"}
    return out


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    src = make_labelled_folder(root / "src", n=12, designs=4)
    res = CliRunner().invoke(
        cli, ["train", "dataset", str(src), "-o", str(root / "ds"), "--val-fraction", "0.3"]
    )
    assert res.exit_code == 0, res.output
    return root / "ds" / "data.yaml"


def test_recovered_model_gives_the_exported_outputs_and_boxes(tmp_path: Path) -> None:
    from posebowl.synth.dataset import generate
    from posebowl.train import recover

    data = tmp_path / "ho"
    generate(data, 4, split="heldout", workers=1, seed=77)
    rec = recover.recover(COMMITTED)
    assert rec.fused_convs == 81 and rec.plain == 13
    images = sorted((data / "images").iterdir())
    agreement = recover.compare_with_onnx(rec.model, COMMITTED, images)
    assert agreement.imgsz == json.loads((COMMITTED / "config.json").read_text())["imgsz"]
    assert agreement.same_best_candidate == len(images)
    assert agreement.max_abs_score < 1e-4  # sigmoid scores; FP32 rounding only
    assert agreement.max_box_px < 0.01  # frame pixels
    assert agreement.max_abs_output < 0.05  # raw box outputs are network pixels (up to 800)


def test_recovered_checkpoint_loads_and_reexports_the_same_weights(
    recovered: Path, tmp_path: Path
) -> None:
    import onnx
    from onnx import numpy_helper

    from posebowl.train import export, fit

    model = fit.load_model(recovered)
    assert model.task == "detect" and model.names == {0: "spacecraft"}
    assert fit.batchnorm_is_identity(model.model)
    result = export.export_benchmark_model(recovered, tmp_path / "model", 800, ("onnx",))
    assert result.compat is not None and result.compat.onnx_ir_version <= 9
    assert result.compat.onnx_opset <= 20

    def weights(path: Path) -> dict[str, np.ndarray]:
        return {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}

    ours, committed = weights(result.onnx), weights(COMMITTED / "model.onnx")
    assert ours.keys() == committed.keys()
    assert all(np.array_equal(ours[k], committed[k]) for k in committed)


def test_calibrated_batchnorm_keeps_the_outputs_and_tracks_batch_statistics(
    tmp_path: Path,
) -> None:
    from posebowl.synth.dataset import generate
    from posebowl.train import fit, recover

    data = tmp_path / "train"
    generate(data, 8, split="train", workers=1, seed=5, image_format="jpg")
    rec = recover.recover(COMMITTED)
    images = sorted((data / "images").iterdir())
    cal = recover.calibrate_batchnorm(rec.model, images, imgsz=320)
    assert cal.layers == 81 and cal.images == 8
    # with identity statistics, batch statistics move the top score a lot; calibrated, little
    assert cal.train_eval_gap_after < cal.train_eval_gap_before / 2
    assert not fit.batchnorm_is_identity(rec.model)
    assert fit.resolve_freeze_bn("auto", rec.model) == "none"
    agreement = recover.compare_with_onnx(rec.model, COMMITTED, images[:2], imgsz=320)
    assert agreement.same_best_candidate == 2 and agreement.max_box_px < 0.01
    assert agreement.max_abs_score < 1e-4


def test_a_model_config_that_does_not_fit_is_refused() -> None:
    from posebowl.train import recover

    with pytest.raises(InputError, match="fit none of the model configs"):
        recover.recover(COMMITTED, yaml="yolov8n.yaml")


def test_an_onnx_without_ultralytics_metadata_is_refused(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    from posebowl.train import recover

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    onnx.save(helper.make_model(graph), str(tmp_path / "model.onnx"))
    with pytest.raises(InputError, match="no ultralytics class names"):
        recover.recover(tmp_path)
    with pytest.raises(InputError, match="no ONNX model"):
        recover.recover(tmp_path / "missing")


def _bn_stats(weights: Path) -> tuple[float, float, list[np.ndarray]]:
    """Largest |mean| and |var - (1 - eps)| over the BatchNorms, and the conv weights."""
    import torch

    from posebowl.train import fit

    net = fit.load_model(weights).model
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    mean = max(float(b.running_mean.abs().max()) for b in bns)
    var = max(float((b.running_var - (1 - b.eps)).abs().max()) for b in bns)
    convs = [
        m.weight.detach().float().numpy().copy()
        for m in net.modules()
        if type(m) is torch.nn.Conv2d
    ]
    return mean, var, convs


@pytest.mark.parametrize("mode", ["auto", "all", "none"])
def test_fine_tuning_keeps_the_recovered_batchnorm_only_when_frozen(
    recovered: Path, tiny_data: Path, tmp_path: Path, mode: str
) -> None:
    from posebowl.train import fit

    cfg = fit.TrainConfig(
        model=str(recovered),
        epochs=1,
        imgsz=64,
        batch=4,
        workers=0,
        threads=1,
        freeze_bn=mode,
        optimizer="SGD",
        lr0=0.01,
        warmup_epochs=0,
        extra={"nbs": 4},  # an optimizer step every batch (64 would accumulate 16 batches)
    )
    result = fit.train(tiny_data, tmp_path / "runs", cfg)
    assert result.bn_frozen == {"auto": "stats", "all": "all", "none": "none"}[mode]
    mean, var, convs = _bn_stats(result.last)
    _, _, before = _bn_stats(recovered)
    changed = max(float(np.abs(a - b).max()) for a, b in zip(convs, before, strict=True))
    assert changed > 0  # the network did train
    if mode == "none":  # batch statistics replaced the recovered ones
        assert mean > 0.01 or var > 0.01
    else:  # frozen: identity statistics, up to the FP16 rounding of the saved checkpoint
        assert mean == 0 and var < 1e-4
    rows = [json.loads(x) for x in (result.run_dir / fit.EPOCH_LOG).read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1]
    n_train = len(list((tiny_data.parent / "images" / "train").iterdir()))
    assert rows[0]["images"] == n_train and rows[0]["images_per_hour"] > 0


def test_bn_freeze_all_also_stops_gradients() -> None:
    import torch

    from posebowl.train import fit

    class Trainer:
        model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.BatchNorm2d(2))

    trainer = Trainer()
    callbacks = fit.batchnorm_callbacks("all")
    trainer.model.train()
    callbacks["on_train_start"](trainer)
    callbacks["on_train_batch_start"](trainer)
    bn = trainer.model[1]
    assert not bn.training and not bn.weight.requires_grad and not bn.bias.requires_grad
    assert trainer.model[0].weight.requires_grad
    assert fit.batchnorm_callbacks("none") == {}
    with pytest.raises(InputError):
        fit.resolve_freeze_bn("sometimes", trainer.model)


def test_a_yaml_model_is_not_frozen_by_auto() -> None:
    from posebowl.train import fit

    model = fit.load_model("yolo11n.yaml")
    assert fit.resolve_freeze_bn("auto", model.model) == "none"


def _epochs(run: Path) -> list[int]:
    log = run / "runs" / "train" / "epochs.jsonl"
    if not log.is_file():
        return []
    return [json.loads(x)["epoch"] for x in log.read_text().splitlines() if x.strip()]


def test_a_killed_run_resumes_where_its_last_epoch_ended(recovered: Path, tmp_path: Path) -> None:
    src = make_labelled_folder(tmp_path / "src", n=24, designs=4)
    out = tmp_path / "run"
    command = [
        *(sys.executable, "-m", "posebowl.cli.main", "train", "run", "--data", str(src)),
        *("--out", str(out), "--model", str(recovered), "--imgsz", "64", "--epochs", "4"),
        *("--batch", "2", "--workers", "0", "--threads", "1", "--formats", "none"),
        *("--val-fraction", "0.3", "--optimizer", "SGD", "--lr0", "0.001", "--resume"),
    ]
    env = dict(os.environ)
    first = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 300
    while not _epochs(out) and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)
    output = first.communicate()[0].decode(errors="replace")
    done = _epochs(out)
    assert done and done[-1] < 4, output[-3000:]  # killed after an epoch, before the end
    last = out / "runs" / "train" / "weights" / "last.pt"
    from posebowl.train import fit

    assert fit.checkpoint_epoch(last) == done[-1] - 1  # ultralytics counts epochs from 0

    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert _epochs(out) == [1, 2, 3, 4]  # no epoch repeated or skipped
    results = pd.read_csv(out / "runs" / "train" / "results.csv")
    assert len(results) == 4
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed"] is True and summary["bn_frozen"] == "stats"
    assert "reusing" not in second.stdout  # --data folders are read, never regenerated

    third = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert third.returncode == 0, third.stdout[-3000:] + third.stderr[-3000:]
    assert _epochs(out) == [1, 2, 3, 4]  # finished: nothing trained again


def test_speed_times_real_batches(recovered: Path, tiny_data: Path, tmp_path: Path) -> None:
    import torch

    from posebowl.train import fit

    threads = torch.get_num_threads()
    try:
        cfg = fit.TrainConfig(model=str(recovered), imgsz=64, batch=2, workers=0, threads=1)
        speed = fit.measure_speed(tiny_data, tmp_path, cfg, batches=2, skip=1)
        assert torch.get_num_threads() == 1  # not ultralytics' min(8, cores - 1)
    finally:
        torch.set_num_threads(threads)
    assert speed.batches == 2 and speed.threads == 1 and speed.workers == 0
    assert speed.seconds_per_batch > 0 and speed.images_per_hour > 0
    assert speed.cpu_seconds_per_image > 0
    with pytest.raises(InputError, match="batches ran"):
        fit.measure_speed(tiny_data, tmp_path, cfg, batches=50, skip=0)
    res = CliRunner().invoke(
        cli,
        [
            *("train", "speed", str(tiny_data.parent), "--model", str(recovered)),
            *("--imgsz", "64", "--batch", "2", "--workers", "0", "--threads", "1"),
            *("--batches", "1", "--skip", "1", "--json"),
        ],
    )
    torch.set_num_threads(threads)
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["batches"] == 1  # nothing but the JSON on stdout


def test_compat_check_refuses_a_newer_onnx(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    from posebowl.train import export

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), str(path))
    with pytest.raises(InputError, match="opset 21"):
        export.check_official_compat(path)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    onnx.save(model, str(path))
    assert export.pin_onnx_ir_version(path) == 9
    assert export.check_official_compat(path).onnx_ir_version == 9
    compat = export.check_official_compat(COMMITTED / "model.onnx", COMMITTED / "model.xml")
    assert compat.openvino_ir_version == 11 and compat.openvino_max_opset <= 13


OFFICIAL_PYTHON = os.environ.get("POSEBOWL_OFFICIAL_ENGINES_PYTHON", "")


@pytest.mark.skipif(
    not OFFICIAL_PYTHON,
    reason="set POSEBOWL_OFFICIAL_ENGINES_PYTHON to a Python with onnxruntime 1.17.1 and "
    "openvino 2023.2.0 (plus numpy, pandas, opencv-python-headless)",
)
@pytest.mark.parametrize("engine", ["openvino", "onnxruntime"])
def test_reexport_runs_on_the_official_engines(
    recovered: Path, tmp_path: Path, engine: str
) -> None:
    from posebowl.synth.dataset import generate
    from posebowl.train import export

    folder = export.export_benchmark_model(recovered, tmp_path / "model", 800, flip_tta=True).folder
    data = tmp_path / "data"
    generate(data, 2, split="heldout", workers=1, seed=3)
    sub = tmp_path / "submission.csv"
    proc = subprocess.run(
        [
            OFFICIAL_PYTHON,
            str(ROOT / "example_benchmark" / "main.py"),
            str(data),
            str(sub),
        ],
        env=dict(os.environ, POSEBOWL_MODEL_DIR=str(folder), POSEBOWL_BACKEND=engine),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    version = {"openvino": "openvino 2023.2", "onnxruntime": "onnxruntime 1.17.1"}[engine]
    assert f"backend {version}" in proc.stderr and "fallback box for 0 " in proc.stderr
