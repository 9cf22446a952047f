"""Recover a trainable ultralytics checkpoint from an exported ONNX model (no ``.pt`` needed).

The benchmark's committed weights exist only as ONNX (FP16 weights behind Casts, see
:func:`posebowl.train.export.onnx_weights_to_fp16`) and OpenVINO IR. ultralytics exports a
*fused* model: every ``Conv`` block's Conv2d + BatchNorm2d became one Conv2d with a bias, named
after the PyTorch parameter (``model.3.conv.weight``, ``model.3.conv.bias``). This module
rebuilds the unfused network from its yaml and puts the fused values back exactly:

- ``conv.weight`` = the fused weight;
- the BatchNorm becomes an identity plus bias: ``running_mean`` 0, ``running_var`` ``1 - eps``
  (so ``sqrt(running_var + eps)`` is exactly 1.0 in float32), ``weight`` 1, ``bias`` = the fused
  bias. Fusing it again (``model.fuse()`` in ultralytics' export) gives back the same numbers.

Plain convolutions (the detection head's last layers) load as they are; the DFL's fixed
``arange`` weights are rebuilt by the yaml. Every ONNX weight must land on a model tensor of the
same shape and every trainable model tensor must be covered, so a wrong yaml is refused rather
than half-loaded. With ``yaml="auto"`` each bundled yaml is tried.

The checkpoint is what ultralytics itself writes after training (``epoch -1``, no optimizer),
so ``YOLO(path).train(...)``, ``.predict`` and ``.export`` all accept it.

A recovered model sees only the fused statistics: in training mode its BatchNorms would start
normalising by batch statistics instead (mean 0 / variance 1 nowhere near the truth), which
changes the network. Fine-tune it with :data:`posebowl.train.fit.TrainConfig.freeze_bn`.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import logging
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from posebowl import boxes
from posebowl.errors import InputError
from posebowl.train import offline

FP16_SUFFIX = "__fp16"  # export.onnx_weights_to_fp16 names the stored halves like this
BENCHMARK_MAIN = Path(__file__).resolve().parents[3] / "example_benchmark" / "main.py"


@dataclass(frozen=True)
class OnnxWeights:
    """The float weights of an exported ONNX model, by PyTorch parameter name, as float32."""

    path: Path
    tensors: dict[str, np.ndarray]
    names: dict[int, str]  # class index -> name, from the ultralytics metadata
    imgsz: tuple[int, int] | None
    metadata: dict[str, str]


@dataclass(frozen=True)
class Recovered:
    """What :func:`recover` built: the unfused DetectionModel (eval mode) and its origin."""

    model: Any  # ultralytics.nn.tasks.DetectionModel
    yaml: str
    source: OnnxWeights
    fused_convs: int  # Conv blocks whose BatchNorm was rebuilt
    plain: int  # tensors loaded as they are


def onnx_path(model: str | Path) -> Path:
    """``model`` itself when it is an .onnx file, else ``model/model.onnx``."""
    path = Path(model)
    if path.is_dir():
        path = path / "model.onnx"
    if path.suffix != ".onnx" or not path.is_file():
        raise InputError(
            f"There is no ONNX model at {path}.",
            "Give an exported model folder (with model.onnx) or an .onnx file.",
        )
    return path


def read_onnx_weights(model: str | Path) -> OnnxWeights:
    """Every float initializer of the ONNX model (FP16 halves cast back), and its metadata."""
    import onnx
    from onnx import numpy_helper

    path = onnx_path(model)
    proto = onnx.load(str(path))
    tensors: dict[str, np.ndarray] = {}
    for init in proto.graph.initializer:
        array = numpy_helper.to_array(init)
        if not np.issubdtype(array.dtype, np.floating):
            continue
        name = init.name.removesuffix(FP16_SUFFIX)
        tensors[name] = array.astype(np.float32)
    meta = {p.key: p.value for p in proto.metadata_props}
    try:
        names = {int(k): str(v) for k, v in ast.literal_eval(meta.get("names", "{}")).items()}
    except (ValueError, SyntaxError, AttributeError):
        names = {}
    imgsz = None
    try:
        size = ast.literal_eval(meta.get("imgsz", ""))
        imgsz = (int(size[0]), int(size[1]))
    except (ValueError, SyntaxError, TypeError, IndexError):
        pass
    if not names:
        raise InputError(
            f"{path} has no ultralytics class names in its metadata.",
            "Recover only models exported by ultralytics (posebowl train export).",
        )
    if meta.get("task", "detect") != "detect":
        raise InputError(
            f"{path} is a {meta['task']} model; only detection models can be recovered.",
            "Give a detection model.",
        )
    return OnnxWeights(path, tensors, names, imgsz, meta)


@dataclass(frozen=True)
class _Fit:
    """How ONNX weights fit a model: counts when they all fit, else what did not."""

    fused: int = 0
    plain: int = 0
    unused: tuple[str, ...] = ()  # ONNX weights with no model tensor of that name and shape
    missing: tuple[str, ...] = ()  # model tensors no ONNX weight covers

    @property
    def ok(self) -> bool:
        return not self.unused and not self.missing


def _assign(model: Any, weights: OnnxWeights) -> _Fit:
    """Load ``weights`` into ``model`` when every tensor fits; else load nothing."""
    import torch
    from ultralytics.nn.modules.conv import Conv

    state = model.state_dict()
    src = dict(weights.tensors)
    used: set[str] = set()
    new: dict[str, torch.Tensor] = {}
    fused = 0
    bn_keys: set[str] = set()
    for name, module in model.named_modules():
        if not (isinstance(module, Conv) and hasattr(module, "bn")):
            continue
        w_key, b_key = f"{name}.conv.weight", f"{name}.conv.bias"
        if w_key not in src or b_key not in src:
            return _Fit(missing=(w_key,))
        w, b = src[w_key], src[b_key]
        if tuple(module.conv.weight.shape) != w.shape or b.shape != (w.shape[0],):
            return _Fit(missing=(w_key,))
        bn = module.bn
        prefix = f"{name}.bn"
        new[w_key] = torch.from_numpy(w)
        new[f"{prefix}.weight"] = torch.ones(b.shape)
        new[f"{prefix}.bias"] = torch.from_numpy(b)
        new[f"{prefix}.running_mean"] = torch.zeros(b.shape)
        new[f"{prefix}.running_var"] = torch.full(b.shape, 1.0 - bn.eps)
        bn_keys |= {f"{prefix}.{k}" for k in ("weight", "bias", "running_mean", "running_var")}
        bn_keys.add(f"{prefix}.num_batches_tracked")
        used |= {w_key, b_key}
        fused += 1
    plain = 0
    for key, value in state.items():
        if key in new or key in bn_keys or not value.dtype.is_floating_point:
            continue
        if key in src and tuple(value.shape) == src[key].shape:
            new[key] = torch.from_numpy(src[key])
            used.add(key)
            plain += 1
    unused = tuple(sorted(set(src) - used))
    missing = tuple(
        sorted(
            k
            for k, v in state.items()
            if v.dtype.is_floating_point and k not in new and ".dfl." not in k
        )
    )
    if unused or missing:
        return _Fit(unused=unused, missing=missing)
    model.load_state_dict(new, strict=False)
    return _Fit(fused, plain)


def recover(
    model: str | Path, yaml: str = "auto", log: Callable[[str], None] | None = None
) -> Recovered:
    """Rebuild the unfused ultralytics model of an exported ONNX ``model`` (folder or file)."""
    from posebowl.train.fit import MODEL_YAMLS

    offline.import_ultralytics()
    import torch
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils import LOGGER

    weights = read_onnx_weights(model)
    candidates: Sequence[str] = MODEL_YAMLS if yaml == "auto" else (yaml,)
    tried: list[str] = []
    for cfg in candidates:
        level = LOGGER.level
        LOGGER.setLevel(logging.WARNING)  # "Overriding model.yaml nc=80 with nc=1" and the like
        try:
            with torch.no_grad():
                net = DetectionModel(cfg, nc=len(weights.names), verbose=False)
                fit = _assign(net, weights)
        finally:
            LOGGER.setLevel(level)
        if fit.ok:
            net.names = dict(weights.names)
            net.eval()
            if log is not None:
                log(f"{cfg}: {fit.fused} Conv+BN blocks rebuilt, {fit.plain} tensors as they are")
            return Recovered(net, cfg, weights, fit.fused, fit.plain)
        kind, names = ("unused", fit.unused) if fit.unused else ("missing", fit.missing)
        tried.append(f"{cfg} ({len(names)} {kind}, e.g. {names[0]})")
    raise InputError(
        f"The weights of {weights.path} fit none of the model configs tried: {'; '.join(tried)}.",
        "Pass the yaml the model was trained from (--yaml).",
    )


def checkpoint_dict(rec: Recovered, train_imgsz: int | None = None) -> dict[str, Any]:
    """The checkpoint ultralytics writes at the end of training, for the recovered model."""
    from copy import deepcopy

    from ultralytics import __version__
    from ultralytics.cfg import DEFAULT_CFG_DICT

    imgsz = train_imgsz or (max(rec.source.imgsz) if rec.source.imgsz else 640)
    args = {**DEFAULT_CFG_DICT, "model": rec.yaml, "task": "detect", "imgsz": imgsz, "data": None}
    model = deepcopy(rec.model).float()
    model.args = {k: v for k, v in args.items()}
    return {
        "epoch": -1,  # training finished: YOLO(path).train() starts a new run from these weights
        "best_fitness": None,
        "model": model,
        "ema": None,
        "updates": None,
        "optimizer": None,
        "train_args": args,
        "train_metrics": None,
        "train_results": None,
        "date": datetime.now().isoformat(),
        "version": __version__,
        "license": "AGPL-3.0 (https://ultralytics.com/license)",
        "docs": "https://docs.ultralytics.com",
        "posebowl_recovered_from": {
            "onnx": str(rec.source.path),
            "yaml": rec.yaml,
            "metadata": rec.source.metadata,
        },
    }


def save_checkpoint(rec: Recovered, out: str | Path, train_imgsz: int | None = None) -> Path:
    """Write the recovered model as an ultralytics ``.pt`` checkpoint (float32)."""
    import torch

    out = Path(out)
    if out.suffix != ".pt":
        raise InputError(f"The checkpoint name {out} does not end in .pt.", "Name it e.g. x.pt.")
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint_dict(rec, train_imgsz), out)
    return out


# ---------------------------------------------------------------- BatchNorm calibration


@dataclass(frozen=True)
class Calibration:
    """What :func:`calibrate_batchnorm` measured."""

    images: int
    imgsz: int
    layers: int
    train_eval_gap_before: float  # mean |top score with batch statistics - eval top score|
    train_eval_gap_after: float  # ... after: small when batch statistics match the running ones


def _letterboxed(images: Sequence[str | Path], imgsz: int) -> list[np.ndarray]:
    import cv2

    bench = _benchmark_module()
    blobs = []
    for path in images:
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if frame is None:
            raise InputError(f"The image {path} cannot be read.", "Check the file.")
        blobs.append(bench.preprocess(frame, imgsz)[0])
    return blobs


def _train_eval_gap(model: Any, batch: Any) -> float:
    """Mean |change| of each image's top score when BatchNorm uses the batch's statistics.

    That is what training sees: 0 when batch statistics equal the running ones.
    """
    import copy

    import torch

    probe = copy.deepcopy(model)
    with torch.no_grad():
        probe.eval()
        ref = probe(batch)[0][:, 4:].amax(dim=(1, 2))
        for m in probe.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.train()  # normalise by this batch's statistics
                m.momentum = 0.0  # ... without touching the running ones
        got = probe(batch)[0][:, 4:].amax(dim=(1, 2))
    return float((got - ref).abs().mean())


def calibrate_batchnorm(
    model: Any, images: Sequence[str | Path], imgsz: int = 640, batch: int = 8
) -> Calibration:
    """Give every BatchNorm the statistics of its input on ``images``, keeping the function.

    For each BatchNorm, eval mode computes ``a * z + c`` (``a = weight / sqrt(var + eps)``,
    ``c = bias - a * mean``). With the measured per-channel mean ``mu`` and variance ``s2`` of
    its input ``z``, setting ``running_mean = mu``, ``running_var = s2``,
    ``weight = a * sqrt(s2 + eps)`` and ``bias = c + a * mu`` computes the same ``a * z + c``
    (up to float rounding), while batch statistics in training mode now come close to the
    running ones, so the model can be fine-tuned with BatchNorm training as usual.
    """
    import torch

    if not images:
        raise InputError("No calibration images were given.", "Pass a folder with images.")
    blobs = _letterboxed(images, imgsz)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    sums: dict[int, list[Any]] = {}

    def hook(module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        z = args[0].detach().double()
        acc = sums.setdefault(id(module), [0.0, 0.0, 0])
        acc[0] = acc[0] + z.sum(dim=(0, 2, 3))
        acc[1] = acc[1] + (z * z).sum(dim=(0, 2, 3))
        acc[2] += z.numel() // z.shape[1]

    probe_batch = torch.from_numpy(np.concatenate(blobs[: min(len(blobs), 16)]))
    before = _train_eval_gap(model, probe_batch)
    handles = [bn.register_forward_pre_hook(hook) for bn in bns]
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(blobs), batch):
                model(torch.from_numpy(np.concatenate(blobs[start : start + batch])))
    finally:
        for h in handles:
            h.remove()
    with torch.no_grad():
        for bn in bns:
            s1, s2, n = sums[id(bn)]
            mu = s1 / n
            var = (s2 / n - mu * mu).clamp(min=0)
            running_mean, running_var = bn.running_mean, bn.running_var
            assert running_mean is not None and running_var is not None  # YOLO's BN tracks them
            a = bn.weight.double() / torch.sqrt(running_var.double() + bn.eps)
            c = bn.bias.double() - a * running_mean.double()
            running_mean.copy_(mu)
            running_var.copy_(var)
            bn.weight.copy_(a * torch.sqrt(var + bn.eps))
            bn.bias.copy_(c + a * mu)
    after = _train_eval_gap(model, probe_batch)
    return Calibration(len(blobs), imgsz, len(bns), before, after)


# ---------------------------------------------------------------- exactness check


def _benchmark_module(script: Path = BENCHMARK_MAIN) -> ModuleType:
    """example_benchmark/main.py as a module, for its exact letterbox and top-box rules."""
    spec = importlib.util.spec_from_file_location("posebowl_benchmark_main", script)
    if spec is None or spec.loader is None or not script.is_file():
        raise InputError(f"The benchmark script {script} does not exist.", "Run from a checkout.")
    if spec.name in sys.modules:
        return sys.modules[spec.name]
    module = importlib.util.module_from_spec(spec)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[spec.name]
        raise
    finally:  # main.py configures logging for its own process: undo that here
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)
    return module


@dataclass(frozen=True)
class Agreement:
    """PyTorch (recovered) against onnxruntime (exported) on the same letterboxed frames."""

    images: int
    imgsz: int
    max_abs_output: float  # over every raw head output (box pixels and scores)
    max_abs_score: float  # over the class scores only
    same_best_candidate: int  # images whose best-scoring anchor is the same
    max_box_px: float  # largest top-box coordinate difference, frame pixels
    mean_box_iou: float  # mean IoU between the two top boxes

    def to_dict(self) -> dict[str, float | int]:
        return {k: (float(v) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def compare_with_onnx(
    model: Any,
    onnx: str | Path,
    images: Sequence[str | Path],
    imgsz: int | None = None,
    threads: int = 2,
) -> Agreement:
    """Run ``model`` (PyTorch, eval) and ``onnx`` (onnxruntime) on each letterboxed image.

    Uses example_benchmark/main.py's letterbox and fused top-box rule, so "same box" means
    the submission would not change. ``imgsz`` defaults to the model folder's config.json.
    """
    import cv2
    import onnxruntime as ort
    import torch

    bench = _benchmark_module()
    onnx = onnx_path(onnx)
    if imgsz is None:
        cfg_path = onnx.parent / "config.json"
        imgsz = (
            int(json.loads(cfg_path.read_text()).get("imgsz", 640)) if cfg_path.is_file() else 640
        )
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    session = ort.InferenceSession(str(onnx), so, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    torch.set_num_threads(threads)
    model = model.eval()
    max_out = max_score = max_px = 0.0
    same = 0
    ious: list[float] = []
    for path in images:
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if frame is None:
            raise InputError(f"The image {path} cannot be read.", "Check the file.")
        blob, lb = bench.preprocess(frame, imgsz)
        ref = session.run(None, {input_name: blob})[0]
        with torch.no_grad():
            got = model(torch.from_numpy(blob))
        got = (got[0] if isinstance(got, list | tuple) else got).numpy()
        diff = np.abs(got - ref)
        max_out = max(max_out, float(diff.max()))
        max_score = max(max_score, float(diff[0, 4:].max()))
        same += int(np.argmax(ref[0, 4:].max(0)) == np.argmax(got[0, 4:].max(0)))
        fh, fw = frame.shape[:2]
        a, _ = bench.top_box(ref, lb, fw, fh, 0.0)
        b, _ = bench.top_box(got, lb, fw, fh, 0.0)
        if a is None or b is None:
            ious.append(1.0 if a is None and b is None else 0.0)
            max_px = math.inf if (a is None) != (b is None) else max_px
            continue
        max_px = max(max_px, float(np.abs(a - b).max()))
        ious.append(1.0 if np.array_equal(a, b) else float(boxes.iou(a[None], b[None])[0]))
    return Agreement(
        len(images),
        imgsz,
        max_out,
        max_score,
        same,
        max_px,
        float(np.mean(ious)) if ious else math.nan,
    )
