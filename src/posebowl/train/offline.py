"""Run ultralytics and OpenVINO's converter with no network access, ever.

ultralytics (8.3.185) reaches the network in several places unless told not to; each line of
:data:`OFFLINE_ENV` and each patch below says which one it closes:

- at import, ``ultralytics.utils.is_online()`` opens sockets to 1.1.1.1 and 8.8.8.8 unless
  ``YOLO_OFFLINE`` is the string ``true`` (``1`` does **not** count in this version);
- ``check_font()`` downloads Arial.ttf / Arial.Unicode.ttf into ``YOLO_CONFIG_DIR`` unless they
  are already there: we copy matplotlib's bundled DejaVuSans under both names;
- ``check_requirements()`` pip-installs missing or out-of-range packages (onnx, onnxslim, ...)
  when online and ``YOLO_AUTOINSTALL`` is true;
- ``check_amp()`` (training on CUDA with ``amp=True``) downloads ``yolo11n.pt`` to compare FP32 and
  AMP outputs: :func:`_patch_check_amp` replaces it with "AMP on CUDA, off elsewhere", so AMP
  stays on without the download (the check only exists to catch a few old GeForce/Quadro cards);
- settings ``sync`` (usage analytics), ``hub`` and the experiment loggers (ClearML, Comet, DVC,
  MLflow, Neptune, Ray Tune, TensorBoard, W&B) are switched off;
- ``YOLO("yolo11n.pt")`` or ``YOLO()`` without a path downloads weights: this package only ever
  builds models from a yaml (random init) or loads a local checkpoint by path.

torch 2.9+ exports ONNX through ``torch.export`` (dynamo) by default, which needs onnxscript and
does not compute a sane default opset; :func:`_patch_onnx_export` makes ultralytics' exporter use
the TorchScript exporter (``dynamo=False``) at an explicit opset instead.

OpenVINO sends usage telemetry (Google Analytics) from ``import openvino`` itself and from its
model converter unless a consent file in the home folder says no. :func:`openvino_offline`
blocks the ``openvino_telemetry`` module before the first ``import openvino`` (``sys.modules``
entry ``None``), so OpenVINO falls back to its bundled no-op stub; the user's consent file is
left alone. ``example_benchmark/main.py`` does the same.

Call :func:`configure` before importing ultralytics (``import_ultralytics`` does it for you).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

from posebowl.errors import SetupError

TRAIN_EXTRA_FIX = "Install the training extra: .venv/bin/pip install -e '.[train]'."
ONNX_OPSET = 17  # supported by torch's TorchScript exporter, OpenVINO 2023.2+ and onnxruntime 1.17+

OFFLINE_ENV = {
    # is_online() returns False without opening a socket; must be the word "true".
    "YOLO_OFFLINE": "true",
    # check_requirements() never runs pip, even if a check fails.
    "YOLO_AUTOINSTALL": "false",
}

SETTINGS_OFF = {
    "sync": False,
    "hub": False,
    "api_key": "",
    "clearml": False,
    "comet": False,
    "dvc": False,
    "mlflow": False,
    "neptune": False,
    "raytune": False,
    "tensorboard": False,
    "wandb": False,
    "vscode_msg": False,
    "openvino_msg": False,
    "platform": False,
}

FONT_NAMES = ("Arial.ttf", "Arial.Unicode.ttf")


def default_config_dir() -> Path:
    """``$POSEBOWL_YOLO_CONFIG_DIR``, else ``$XDG_CACHE_HOME/posebowl/ultralytics``."""
    explicit = os.environ.get("POSEBOWL_YOLO_CONFIG_DIR")
    if explicit:
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "posebowl" / "ultralytics"


def local_font() -> Path:
    """A TrueType font that ships with matplotlib (DejaVuSans), to stand in for Arial."""
    import matplotlib

    font = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    if not font.is_file():
        raise SetupError(
            f"matplotlib's bundled font {font} is missing, so ultralytics would download Arial.",
            "Reinstall matplotlib (pip install --force-reinstall matplotlib).",
        )
    return font


def configure(config_dir: Path | None = None) -> Path:
    """Set the offline environment and a writable ``YOLO_CONFIG_DIR`` holding the fonts.

    Returns the config dir. Call before ``import ultralytics``: it reads these at import.
    """
    if config_dir is None and os.environ.get("YOLO_CONFIG_DIR"):
        config_dir = Path(os.environ["YOLO_CONFIG_DIR"])
    if config_dir is None:
        config_dir = default_config_dir()
    try:
        config_dir.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=config_dir, delete=True)
        probe.close()
    except OSError:
        config_dir = Path(tempfile.mkdtemp(prefix="posebowl-yolo-"))
    font = local_font()
    # ultralytics 8.3 looks in $YOLO_CONFIG_DIR itself; older releases in .../Ultralytics.
    for folder in (config_dir, config_dir / "Ultralytics"):
        folder.mkdir(parents=True, exist_ok=True)
        for name in FONT_NAMES:
            target = folder / name
            if not target.is_file():
                shutil.copyfile(font, target)
    os.environ.update(OFFLINE_ENV)
    os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
    return config_dir


def import_ultralytics(config_dir: Path | None = None) -> ModuleType:
    """Configure, import and patch ultralytics; raise SetupError if the extra is missing."""
    configure(config_dir)
    try:
        import ultralytics
        from ultralytics.utils import SETTINGS
    except ImportError as exc:
        raise SetupError(f"ultralytics cannot be imported ({exc}).", TRAIN_EXTRA_FIX) from exc
    SETTINGS.update({k: v for k, v in SETTINGS_OFF.items() if k in SETTINGS})
    _patch_check_amp()
    _patch_onnx_export()
    return ultralytics


def _amp_on_cuda(model: Any) -> bool:
    """Stand-in for ``check_amp``: AMP on CUDA devices, off elsewhere, no weights download."""
    try:
        return next(model.parameters()).device.type == "cuda"
    except (StopIteration, AttributeError):
        return False


def _patch_check_amp() -> None:
    import ultralytics.engine.trainer as trainer
    import ultralytics.utils.checks as checks

    # The trainer imported the name, so patch it where it is looked up too.
    checks.check_amp = _amp_on_cuda
    trainer.check_amp = _amp_on_cuda


def _patch_onnx_export() -> None:
    import torch
    import ultralytics.engine.exporter as exporter

    if getattr(exporter.export_onnx, "_posebowl", False):
        return

    def export_onnx(
        torch_model: Any,
        im: Any,
        onnx_file: str,
        opset: int = ONNX_OPSET,
        input_names: list[str] | None = None,
        output_names: list[str] | None = None,
        dynamic: Any = False,
    ) -> None:
        torch.onnx.export(
            torch_model,
            im,
            onnx_file,
            verbose=False,
            opset_version=opset if opset and opset >= 11 else ONNX_OPSET,
            do_constant_folding=True,
            input_names=input_names or ["images"],
            output_names=output_names or ["output0"],
            dynamic_axes=dynamic or None,
            dynamo=False,
        )

    export_onnx._posebowl = True  # type: ignore[attr-defined]
    exporter.export_onnx = export_onnx


def openvino_offline() -> ModuleType:
    """Import openvino with its telemetry replaced by OpenVINO's own no-op stub."""
    if "openvino" not in sys.modules:
        # ``import openvino_telemetry`` now raises ImportError, and OpenVINO's ovc tools catch
        # it and use openvino.tools.ovc.telemetry_stub instead.
        sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]
    try:
        import openvino
        import openvino.tools.ovc.convert_impl as convert_impl
        import openvino.tools.ovc.telemetry_stub as stub
        import openvino.tools.ovc.telemetry_utils as telemetry_utils
    except ImportError as exc:
        raise SetupError(f"openvino cannot be imported ({exc}).", TRAIN_EXTRA_FIX) from exc
    # Already imported with telemetry (by someone else): at least silence the converter.
    convert_impl.tm = stub
    telemetry_utils.tm = stub
    return openvino
