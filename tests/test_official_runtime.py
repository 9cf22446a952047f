"""The official runtime for real: every package imports in the sandbox, and submissions written
the way real ones are (ultralytics + torch, an OpenVINO folder, a bundled wheel, ``../data``)
run unchanged and finish SUCCESS; under slim the same submissions end with the diagnosis.

The YOLOv8n checkpoint is made here, from its yaml, by the runtime's own ultralytics 8.1.34
(random weights: nothing is downloaded, nothing large is committed).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from posebowl import runtimes, sandbox, workspace
from posebowl.engines.base import Bind, Status
from posebowl.engines.bwrap import BwrapEngine
from posebowl.errors import SetupError
from posebowl.run import run_command
from posebowl.runtimes import Runtime

from .sandbox_helpers import fast_limits, make_data, make_zip, needs_sandbox, posebowl, run_zip

pytestmark = [pytest.mark.sandbox, pytest.mark.slow, needs_sandbox()]


def _runtime(name: str) -> Runtime:
    try:
        return runtimes.locate(name, workspace.find())
    except SetupError as exc:
        pytest.skip(f"{exc.message} {exc.fix}")


MAKE_MODEL = """
import datetime, torch, ultralytics
from ultralytics import YOLO

torch.manual_seed(0)
model = YOLO("yolov8n.yaml")  # ships inside ultralytics: nothing is fetched
# YOLO.save() needs a trained checkpoint in 8.1.34: save what its trainer saves
torch.save(
    {"model": model.model.half(), "train_args": {"task": "detect", "imgsz": 640},
     "date": datetime.datetime.now().isoformat(), "version": ultralytics.__version__},
    "/out/yolov8n.pt",
)
YOLO("/out/yolov8n.pt").export(format="openvino", imgsz=320)
print("made", ultralytics.__version__)
"""

# In the style of the official benchmark (example_benchmark/main.py of the official runtime):
# YOLO on every image, cv2.imread, a pandas table written out, data found through ../data.
MAIN_SH = """#!/usr/bin/env bash
DATA_DIR=../data
SUBMISSION_PATH=/code_execution/submission/submission.csv
python main.py $DATA_DIR $SUBMISSION_PATH
"""
MAIN_PY = """
import sys
from pathlib import Path

import cv2
import pandas as pd
from ultralytics import YOLO

data_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
fmt = pd.read_csv(data_dir / "submission_format.csv", index_col="image_id")
model = YOLO("{model}", task="detect")
submission = fmt.copy()
for image_id in fmt.index:
    img = cv2.imread(str(data_dir / "images" / f"{{image_id}}.png"))
    result = model(img, verbose=False, imgsz=320)[0]
    h, w = img.shape[:2]
    centre = [w * 0.45, h * 0.45, w * 0.55, h * 0.55]
    box = result.boxes.xyxy[0].tolist() if len(result.boxes) else centre
    submission.loc[image_id] = [int(v) for v in box]
submission.to_csv(out, index=True)
print("wrote", len(submission), "boxes with", "{model}")
"""


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """yolov8n.pt and its OpenVINO folder, made in the sandbox by the official runtime."""
    official = _runtime("official")
    out = tmp_path_factory.mktemp("yolo")
    (out / "make.py").write_text(MAKE_MODEL)
    said: list[bytes] = []
    result = run_command(
        ("python", "/out/make.py"),
        BwrapEngine(),
        fast_limits(time_limit_s=900, memory_bytes=4 << 30),
        official,
        network=False,
        interactive=False,
        extra_binds=(Bind(out, "/out", True),),
        on_output=said.append,
    )
    log = b"".join(said).decode(errors="replace")
    assert result.exit_code == 0, log[-3000:]
    assert (out / "yolov8n.pt").is_file() and (out / "yolov8n_openvino_model").is_dir(), log
    return out


def _submission(tmp_path: Path, model: Path, weights: str) -> Path:
    files: dict[str, str | bytes] = {"main.sh": MAIN_SH, "main.py": MAIN_PY.format(model=weights)}
    for p in (model / weights).rglob("*") if (model / weights).is_dir() else [model / weights]:
        if p.is_file():
            files[str(p.relative_to(model))] = p.read_bytes()
    return make_zip(tmp_path / "submission.zip", files)


def _limits():
    return fast_limits(time_limit_s=900, memory_bytes=4 << 30, pids=1024)


@pytest.mark.parametrize("weights", ["yolov8n.pt", "yolov8n_openvino_model"])
def test_ultralytics_submissions_run_unchanged(tmp_path: Path, model: Path, weights: str) -> None:
    data, labels = make_data(tmp_path, n=3)
    z = _submission(tmp_path, model, weights)
    o = run_zip(tmp_path, z, data, limits=_limits(), runtime=_runtime("official"), labels=labels)
    assert o.verdict.status is Status.SUCCESS, o.log[-4000:]
    assert f"wrote 3 boxes with {weights}" in o.log
    assert o.verdict.score is not None
    if weights.endswith("_openvino_model"):
        # ultralytics 8.1.34 asks for openvino>=2024 (the platform has 2023.2): it says so, it
        # cannot install it offline, and it goes on, as on the platform
        assert "openvino>=2024" in o.log and "offline" in o.log


def _wheel() -> bytes:
    buf = io.BytesIO()
    record = "tinypkg/__init__.py,,\ntinypkg-1.0.dist-info/METADATA,,\n"
    record += "tinypkg-1.0.dist-info/WHEEL,,\ntinypkg-1.0.dist-info/RECORD,,\n"
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("tinypkg/__init__.py", "VALUE = 42\n")
        zf.writestr(
            "tinypkg-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: tinypkg\nVersion: 1.0\n"
        )
        zf.writestr(
            "tinypkg-1.0.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        zf.writestr("tinypkg-1.0.dist-info/RECORD", record)
    return buf.getvalue()


def test_a_main_sh_that_pip_installs_a_bundled_wheel(tmp_path: Path) -> None:
    data, _ = make_data(tmp_path, n=3)
    main = (
        "pip install --no-index --no-deps tinypkg-1.0-py3-none-any.whl\n"
        "python - <<'EOF'\n"
        "import pandas as pd, tinypkg, torch\n"
        "fmt = pd.read_csv('/code_execution/data/submission_format.csv')\n"
        "fmt[['xmin','ymin','xmax','ymax']] = [0, 0, tinypkg.VALUE, tinypkg.VALUE]\n"
        "fmt.to_csv('/code_execution/submission/submission.csv', index=False)\n"
        "print('torch', torch.__version__, 'tinypkg', tinypkg.VALUE)\n"
        "EOF\n"
    )
    z = make_zip(
        tmp_path / "submission.zip", {"main.sh": main, "tinypkg-1.0-py3-none-any.whl": _wheel()}
    )
    o = run_zip(tmp_path, z, data, limits=_limits(), runtime=_runtime("official"))
    assert o.verdict.status is Status.SUCCESS, o.log[-3000:]
    assert "torch 2.1.0" in o.log and "tinypkg 42" in o.log


def test_under_slim_the_same_submission_says_to_build_official(tmp_path: Path, model: Path) -> None:
    data, _ = make_data(tmp_path, n=3)
    z = _submission(tmp_path, model, "yolov8n.pt")
    o = run_zip(tmp_path, z, data, limits=_limits(), runtime=_runtime("slim"))
    assert o.verdict.status is Status.FAILED, o.log[-3000:]
    assert "No module named 'ultralytics'" in o.log
    assert "make build RUNTIME=official" in o.result["message"]


def test_runtime_test_imports_every_official_package() -> None:
    _runtime("official")
    res = posebowl("runtime", "test", "--runtime", "official", "--engine", "bwrap")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    for module in ("ultralytics", "tensorflow", "torch", "lightgbm", "xgboost", "fastai"):
        assert f"test_import[{module}] PASSED" in res.stdout or "passed" in res.stdout


def test_the_runs_record_which_runtime_they_used(tmp_path: Path) -> None:
    data, _ = make_data(tmp_path, n=3)
    official = _runtime("official")
    z = make_zip(
        tmp_path / "s.zip",
        {"main.sh": "cp ../data/submission_format.csv " f"{sandbox.SUBMISSION}/submission.csv\n"},
    )
    o = run_zip(tmp_path, z, data, runtime=official)
    assert o.result["runtime"] == {"name": "official", "lock_sha256": official.lock_sha256}
