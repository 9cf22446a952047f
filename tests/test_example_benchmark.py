"""example_benchmark/main.py without a model: geometry, CPU quota, errors (numpy + OpenCV)."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

MAIN = Path(__file__).resolve().parents[1] / "example_benchmark" / "main.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("benchmark_main", MAIN)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["benchmark_main"] = module
    spec.loader.exec_module(module)
    return module


bm = _load()


def test_main_imports_only_what_the_runtime_has() -> None:
    tree = ast.parse(MAIN.read_text())
    names = {
        a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    names |= {
        n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
    }
    assert "posebowl" not in names
    runtime = {"cv2", "numpy", "pandas", "openvino", "onnxruntime"}
    assert {n for n in names if n not in sys.stdlib_module_names} <= runtime


@pytest.mark.parametrize(
    ("frame", "imgsz", "expected"),
    [
        ((1280, 1024), 1280, (1.0, 0, 0, 1280, 1024)),
        ((1280, 1024), 640, (0.5, 0, 0, 640, 512)),
        ((1280, 1024), 800, (0.625, 0, 0, 800, 640)),
        ((1280, 1024), 416, (0.325, 0, 9, 416, 352)),  # 333 rows, padded to 352
    ],
)
def test_letterbox(frame: tuple[int, int], imgsz: int, expected: tuple) -> None:
    lb = bm.Letterbox.for_frame(*frame, imgsz)
    assert (lb.scale, lb.left, lb.top, lb.width, lb.height) == pytest.approx(expected)


def test_preprocess_shape_range_and_channel_order() -> None:
    image = np.zeros((1024, 1280, 3), np.uint8)
    image[..., 2] = 255  # red in BGR
    blob, lb = bm.preprocess(image, 416)
    assert blob.shape == (1, 3, lb.height, lb.width) and blob.dtype == np.float32
    assert blob[0, 0, 100, 100] == pytest.approx(1.0)  # R first
    assert blob[0, 2, 100, 100] == pytest.approx(0.0)
    assert blob[0, 0, 0, 0] == pytest.approx(114 / 255)  # the padding row


def _head(boxes_cxcywh: list[tuple[float, float, float, float]], scores: list[float]):
    out = np.zeros((1, 5, len(scores)), np.float32)
    out[0, :4] = np.asarray(boxes_cxcywh, np.float32).T
    out[0, 4] = scores
    return out


def test_top_box_maps_the_best_candidate_back_to_the_frame() -> None:
    lb = bm.Letterbox.for_frame(1280, 1024, 416)
    out = _head([(50, 60, 20, 10), (208, 176, 104, 52)], [0.3, 0.9])
    box, score = bm.top_box(out, lb, 1280, 1024, 0.01)
    assert score == pytest.approx(0.9)
    expected = np.array([156 / 0.325, (150 - 9) / 0.325, 260 / 0.325, (202 - 9) / 0.325])
    np.testing.assert_allclose(box, expected, rtol=1e-5)


def test_top_box_below_threshold_is_none() -> None:
    lb = bm.Letterbox.for_frame(1280, 1024, 640)
    box, score = bm.top_box(_head([(5, 5, 2, 2)], [0.004]), lb, 1280, 1024, 0.01)
    assert box is None and score == pytest.approx(0.004)


@pytest.mark.slow  # a new process, or many
@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-5000, 5000) | st.just(float("nan")), min_size=4, max_size=4))
def test_submission_boxes_are_valid_integers_inside_the_frame(values: list[float]) -> None:
    x0, y0, x1, y1 = bm.to_submission_box(np.asarray(values), 1280, 1024)
    assert all(isinstance(v, int) for v in (x0, y0, x1, y1))
    assert 0 <= x0 <= x1 <= 1280 and 0 <= y0 <= y1 <= 1024


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "150000 100000\n"}, 1.5),
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 2.0),
        ({"cpu,cpuacct/cpu.cfs_quota_us": "-1\n", "cpu,cpuacct/cpu.cfs_period_us": "1\n"}, None),
        ({}, None),
    ],
)
def test_cgroup_cpu_quota(tmp_path: Path, files: dict[str, str], expected: float | None) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert bm.cgroup_cpu_quota(tmp_path) == expected


def test_cpu_budget_follows_the_quota(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POSEBOWL_THREADS", raising=False)
    monkeypatch.setattr(bm.os, "sched_getaffinity", lambda _: {0, 1, 2, 3})
    for quota, expected in ((None, 4), (1.4, 1), (2.0, 2), (2.6, 3), (16.0, 4), (0.3, 1)):
        monkeypatch.setattr(bm, "cgroup_cpu_quota", lambda q=quota: q)
        assert bm.cpu_budget() == expected
    monkeypatch.setenv("POSEBOWL_THREADS", "3")
    assert bm.cpu_budget() == 3


@pytest.mark.slow  # a new process, or many
def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    pd.DataFrame({"image_id": ["a"], "xmin": [0], "ymin": [0], "xmax": [0], "ymax": [0]}).to_csv(
        data / "submission_format.csv", index=False
    )
    proc = subprocess.run(
        [sys.executable, str(MAIN), str(data), str(tmp_path / "sub.csv")],
        env={"POSEBOWL_MODEL_DIR": str(tmp_path / "nothing"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "no model in" in proc.stderr and "make train-benchmark" in proc.stderr
    assert not (tmp_path / "sub.csv").exists()


def test_fused_box_averages_overlapping_candidates_by_score() -> None:
    # two strong overlapping candidates and a far, weaker one that must not be averaged in
    out = _head([(100, 100, 40, 40), (104, 100, 40, 40), (300, 300, 40, 40)], [0.8, 0.4, 0.7])
    box, score = bm.fused_box(out, 0.01)
    assert score == pytest.approx(0.8)
    cx = (100 * 0.8 + 104 * 0.4) / 1.2
    np.testing.assert_allclose(box, [cx - 20, 80, cx + 20, 120], rtol=1e-6)


def test_flip_tta_mirrors_the_flipped_box_back() -> None:
    lb = bm.Letterbox.for_frame(1280, 1024, 640)  # 640x512, no padding: scale 0.5
    plain = _head([(100, 200, 40, 20)], [0.9])
    mirrored = _head([(lb.width - 110, 200, 40, 20)], [0.9])  # sees the object 10 px further
    box, _ = bm.top_box(plain, lb, 1280, 1024, 0.01, flipped=mirrored)
    # plain box x 80..120, mirrored back 90..130: the average is 85..125, then / 0.5
    np.testing.assert_allclose(box, [170, 380, 250, 420], rtol=1e-6)


def test_flip_tta_config_and_env(tmp_path, monkeypatch) -> None:
    (tmp_path / "config.json").write_text('{"imgsz": 800, "flip_tta": true}')
    cfg = bm.load_config(tmp_path)
    assert cfg.imgsz == 800 and cfg.flip_tta
    monkeypatch.setenv("POSEBOWL_FLIP_TTA", "0")
    assert not bm.load_config(tmp_path).flip_tta
