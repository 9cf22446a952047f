"""A runtime's import test, run inside the sandbox by `posebowl runtime test --runtime NAME`.

Like the official runtime's tests/test_packages.py, for every package: each one a submission may
use imports, and the inference engines the benchmark relies on actually run on the CPU. The
runtime's name comes from POSEBOWL_RUNTIME (official has every package, slim its subset).
"""

import importlib
import os

import pytest

RUNTIME = os.environ.get("POSEBOWL_RUNTIME", "slim")
# import names of slim.in's packages
SLIM = [
    "click", "cv2", "loguru", "numpy", "onnx", "onnxruntime", "openvino", "pandas", "PIL",
    "pip", "pyarrow", "pydantic", "pytest", "scipy", "skimage", "sklearn", "tqdm", "yaml",
]  # fmt: skip
# and of every other package of the official runtime's environment.yml
OFFICIAL = [
    *SLIM, "albumentations", "dill", "fastai", "imageio", "keras", "lightgbm", "numba",
    "pytorch_lightning", "statsmodels", "tensorflow", "torch", "torchvision", "ultralytics",
    "xgboost",
]  # fmt: skip
PACKAGES = OFFICIAL if RUNTIME == "official" else SLIM


@pytest.mark.parametrize("name", PACKAGES)
def test_import(name):
    importlib.import_module(name)


def _tiny_model(path):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "tiny", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def test_onnxruntime_runs_on_cpu(tmp_path):
    import numpy as np
    import onnxruntime as ort

    _tiny_model(tmp_path / "m.onnx")
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    (out,) = sess.run(None, {"x": np.array([[-1.0, 0.0, 2.0]], dtype=np.float32)})
    assert out.tolist() == [[0.0, 0.0, 2.0]]


def test_openvino_runs_on_cpu(tmp_path):
    import numpy as np
    import openvino as ov

    _tiny_model(tmp_path / "m.onnx")
    core = ov.Core()
    assert "CPU" in core.available_devices
    compiled = core.compile_model(core.read_model(str(tmp_path / "m.onnx")), "CPU")
    out = compiled(np.array([[-1.0, 0.0, 2.0]], dtype=np.float32))[0]
    assert out.tolist() == [[0.0, 0.0, 2.0]]


def test_opencv_decodes_png():
    import cv2
    import numpy as np

    img = np.zeros((1024, 1280, 3), np.uint8)
    img[100:200, 300:400] = 255
    ok, buf = cv2.imencode(".png", img)
    assert ok
    back = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    assert back.shape == (1024, 1280, 3) and int(back.sum()) == int(img.sum())


@pytest.mark.skipif(RUNTIME != "official", reason="torch is in the official runtime only")
def test_torch_runs_on_cpu():
    import torch

    x = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    assert torch.nn.functional.relu(x - 2).sum().item() == 6.0
