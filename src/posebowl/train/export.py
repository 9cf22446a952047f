"""Export a trained checkpoint to ONNX and OpenVINO IR, plus the benchmark's ``config.json``.

The model folder that ``example_benchmark/main.py`` reads::

    model.onnx            dynamic batch/height/width, opset 17, FP16 weights (onnxruntime fallback)
    model.xml, model.bin  OpenVINO IR converted from the ONNX, FP16-compressed weights
    config.json           input size, score threshold, fallback box (see BenchmarkConfig)

Both files must load on the official runtime's engines, which are older than ours: onnxruntime
1.17.1 reads ONNX IR version <= 9 and opsets <= 20, OpenVINO 2023.2 reads IR v11 with operator
sets opset1..opset13. :func:`check_official_compat` checks both after every export and pins
the ONNX IR version down when a newer exporter stamps a higher one than the graph needs.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from posebowl.errors import InputError
from posebowl.rules import FRAME_HEIGHT, FRAME_WIDTH
from posebowl.train import offline

FORMATS = ("onnx", "openvino")
# Predicted when the detector finds nothing: a 320x256 box in the frame centre.
FALLBACK_BOX = (480, 384, 800, 640)


@dataclass(frozen=True)
class BenchmarkConfig:
    """What ``example_benchmark/main.py`` reads from ``model/config.json``.

    ``imgsz``: the long side the 1280x1024 frame is letterboxed to (a multiple of 32; 1280 keeps
    full resolution, 640 is ~3x faster). ``min_score``: below it the fallback box is used.
    """

    imgsz: int = 1280
    min_score: float = 0.01
    fallback_box: tuple[int, int, int, int] = FALLBACK_BOX
    frame: tuple[int, int] = (FRAME_WIDTH, FRAME_HEIGHT)
    flip_tta: bool = False
    trained: dict[str, object] = field(default_factory=dict)

    def write(self, folder: Path) -> Path:
        path = folder / "config.json"
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path


# The official runtime (runtime/environment.yml): onnxruntime 1.17.1, openvino 2023.2.0.
OFFICIAL_ONNX_MAX_IR = 9
OFFICIAL_ONNX_MAX_OPSET = 20
OFFICIAL_OPENVINO_MAX_OPSET = 13
OFFICIAL_OPENVINO_IR = 11


@dataclass(frozen=True)
class Compat:
    """What the exported files need from the engines that will load them."""

    onnx_ir_version: int
    onnx_opset: int
    openvino_ir_version: int | None = None
    openvino_max_opset: int | None = None  # highest opsetN any layer uses

    def to_dict(self) -> dict[str, int | None]:
        return asdict(self)


def pin_onnx_ir_version(path: str | Path, max_ir: int = OFFICIAL_ONNX_MAX_IR) -> int:
    """Lower the ONNX file's IR version to ``max_ir`` when the graph allows it; return it.

    IR 10 only added 4-bit tensor types (and overloaded functions), which these detectors never
    hold, so a file stamped 10+ by a newer exporter is the same graph at IR 9.
    """
    import onnx
    from onnx import TensorProto

    model = onnx.load(str(path))
    if model.ir_version <= max_ir:
        return int(model.ir_version)
    four_bit = {getattr(TensorProto, n) for n in ("INT4", "UINT4") if hasattr(TensorProto, n)}
    used = {t.data_type for t in model.graph.initializer}
    if used & four_bit or model.functions:
        raise InputError(
            f"{path} needs ONNX IR version {model.ir_version}; onnxruntime 1.17 reads <= {max_ir}.",
            "Export without 4-bit weights or ONNX functions.",
        )
    model.ir_version = max_ir
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return max_ir


def _openvino_ir_versions(xml: Path) -> tuple[int, int]:
    import xml.etree.ElementTree as ET

    root = ET.parse(xml).getroot()
    opsets = [
        int(layer.get("version", "opset1").removeprefix("opset"))
        for layer in root.iter("layer")
        if layer.get("version", "").startswith("opset")
    ]
    return int(root.get("version", "0")), max(opsets, default=1)


def check_official_compat(onnx_path: str | Path, xml: str | Path | None = None) -> Compat:
    """Raise InputError unless onnxruntime 1.17.1 and OpenVINO 2023.2 can load the files."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    fix = "Export at opset 17 (posebowl train export does) with the pinned torch and onnx."
    if model.ir_version > OFFICIAL_ONNX_MAX_IR or opset > OFFICIAL_ONNX_MAX_OPSET:
        raise InputError(
            f"{onnx_path} has ONNX IR version {model.ir_version} and opset {opset}; the "
            f"official onnxruntime 1.17.1 reads IR <= {OFFICIAL_ONNX_MAX_IR} and opset <= "
            f"{OFFICIAL_ONNX_MAX_OPSET}.",
            fix,
        )
    ir = max_op = None
    if xml is not None:
        ir, max_op = _openvino_ir_versions(Path(xml))
        if ir != OFFICIAL_OPENVINO_IR or max_op > OFFICIAL_OPENVINO_MAX_OPSET:
            raise InputError(
                f"{xml} is OpenVINO IR v{ir} using opset{max_op}; the official OpenVINO 2023.2 "
                f"reads IR v{OFFICIAL_OPENVINO_IR} with opset1..opset"
                f"{OFFICIAL_OPENVINO_MAX_OPSET}.",
                "Convert with the pinned openvino (the [train] extra), from an opset-17 ONNX.",
            )
    return Compat(int(model.ir_version), int(opset), ir, max_op)


@dataclass(frozen=True)
class ExportResult:
    folder: Path
    onnx: Path
    openvino_xml: Path | None
    config: Path
    compat: Compat | None = None


def export_onnx(weights: str | Path, out: str | Path, imgsz: int = 640) -> Path:
    """Export ``weights`` (.pt) to ``out`` (.onnx) with dynamic batch, height and width."""
    from posebowl.train.fit import load_model

    weights = Path(weights)
    if weights.suffix != ".pt" or not weights.is_file():
        raise InputError(f"The checkpoint {weights} does not exist.", "Train a model first.")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        # ultralytics writes next to the checkpoint: export a copy, leave the run folder as is.
        local = Path(tmp) / "model.pt"
        shutil.copyfile(weights, local)
        model = load_model(local)
        produced = model.export(
            format="onnx",
            imgsz=imgsz,
            dynamic=True,
            simplify=False,  # onnxslim is not installed; True would try to pip-install it
            opset=offline.ONNX_OPSET,
            half=False,
            device="cpu",
            verbose=False,
        )
        if not produced or not Path(produced).is_file():
            raise InputError(f"ultralytics did not export {weights} to ONNX.", "See its log above.")
        shutil.move(str(produced), out)
    return out


def onnx_weights_to_fp16(src: str | Path, dst: str | Path) -> Path:
    """Store the float32 weights of an ONNX model as float16, each behind a Cast to float32.

    Halves the file (YOLO11n: 10.4 -> 5.3 MB). onnxruntime folds the casts when it loads the
    model, so inference still runs in float32 at the same speed; the rounding is the same as
    the OpenVINO IR's FP16-compressed weights.
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    kept, halves, casts = [], [], []
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT or int(np.prod(init.dims)) < 16:
            kept.append(init)
            continue
        half = numpy_helper.from_array(
            numpy_helper.to_array(init).astype(np.float16), f"{init.name}__fp16"
        )
        halves.append(half)
        casts.append(
            helper.make_node(
                "Cast", [half.name], [init.name], name=f"{init.name}__cast", to=TensorProto.FLOAT
            )
        )
    del graph.initializer[:]
    graph.initializer.extend(kept + halves)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return Path(dst)


def onnx_to_openvino(onnx_path: str | Path, out_xml: str | Path, fp16: bool = True) -> Path:
    """Convert an ONNX model to OpenVINO IR (``out_xml`` + the ``.bin`` beside it), offline."""
    ov = offline.openvino_offline()
    out_xml = Path(out_xml)
    out_xml.parent.mkdir(parents=True, exist_ok=True)
    # read_model parses ONNX directly (convert_model would also probe torch loaders on the path).
    model = ov.Core().read_model(str(onnx_path))
    ov.save_model(model, str(out_xml), compress_to_fp16=fp16)
    return out_xml


def export_benchmark_model(
    weights: str | Path,
    folder: str | Path,
    imgsz: int = 1280,
    formats: Sequence[str] = FORMATS,
    trained: dict[str, object] | None = None,
    onnx_fp16: bool = True,
    flip_tta: bool = False,
) -> ExportResult:
    """Write ``model.onnx`` (+ ``model.xml``/``.bin``) and ``config.json`` into ``folder``.

    ``onnx_fp16`` stores the ONNX weights as float16 (see :func:`onnx_weights_to_fp16`), so the
    OpenVINO IR and the ONNX fallback fit in ~11 MB together.
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or "onnx" not in formats:
        raise InputError(
            f"Unknown or incomplete export formats {list(formats)}.",
            f"Choose from {', '.join(FORMATS)} (onnx is always needed).",
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    onnx_path = export_onnx(weights, folder / "model.onnx", imgsz=min(imgsz, 640))
    pin_onnx_ir_version(onnx_path)
    xml = None
    if "openvino" in formats:
        xml = onnx_to_openvino(onnx_path, folder / "model.xml")
    if onnx_fp16:
        onnx_weights_to_fp16(onnx_path, onnx_path)
    compat = check_official_compat(onnx_path, xml)
    config = BenchmarkConfig(imgsz=imgsz, flip_tta=flip_tta, trained=dict(trained or {}))
    return ExportResult(folder, onnx_path, xml, config.write(folder), compat)
