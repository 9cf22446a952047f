"""Train an ultralytics YOLO detector from its yaml (random init), fully offline."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from posebowl.errors import InputError
from posebowl.train import offline

# Model configs that ship inside ultralytics: building from them downloads nothing.
MODEL_YAMLS = ("yolo11n.yaml", "yolo11s.yaml", "yolov8n.yaml", "yolov8s.yaml")


@dataclass(frozen=True)
class TrainConfig:
    """Training options; ``time_hours`` (when set) caps training time and overrides epochs."""

    model: str = "yolo11n.yaml"
    epochs: int = 30
    imgsz: int = 640
    batch: int = 16
    device: str = "cpu"
    workers: int = 2
    time_hours: float | None = None
    amp: bool = True  # used on CUDA only (see offline._patch_check_amp)
    cache: str | bool = False  # "ram" caches decoded, resized images (fast epochs on a GPU box)
    seed: int = 0
    patience: int = 100
    plots: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # any other ultralytics train argument


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    best: Path
    last: Path
    results_csv: Path
    seconds: float


def load_model(model: str | Path) -> Any:
    """A YOLO from a bundled yaml (random init) or a local checkpoint; never a download."""
    ul = offline.import_ultralytics()
    name = str(model)
    if name in MODEL_YAMLS or name.endswith((".yaml", ".yml")):
        if not (name in MODEL_YAMLS or Path(name).is_file()):
            raise InputError(
                f"The model config {name} does not exist.", f"Use one of {', '.join(MODEL_YAMLS)}."
            )
        return ul.YOLO(name)
    path = Path(name)
    if not path.is_file():
        # YOLO("name.pt") would try to download it: refuse instead.
        raise InputError(
            f"The model {name} is neither a bundled yaml nor a local checkpoint file.",
            f"Give a path to a .pt file, or one of {', '.join(MODEL_YAMLS)}.",
        )
    return ul.YOLO(str(path))


def train(data_yaml: str | Path, out_dir: str | Path, config: TrainConfig) -> TrainResult:
    """Train on ``data_yaml``; the run lands in ``out_dir/train`` (overwritten)."""
    data_yaml = Path(data_yaml).resolve()
    if not data_yaml.is_file():
        raise InputError(
            f"The dataset file {data_yaml} does not exist.", "Build the dataset first."
        )
    out_dir = Path(out_dir).resolve()
    model = load_model(config.model)
    on_cuda = str(config.device) not in {"cpu", "mps"}
    args: dict[str, Any] = {
        "data": str(data_yaml),
        "epochs": config.epochs,
        "imgsz": config.imgsz,
        "batch": config.batch,
        "device": config.device,
        "workers": config.workers,
        "project": str(out_dir),
        "name": "train",
        "exist_ok": True,
        "pretrained": False,
        "amp": bool(config.amp and on_cuda),
        "cache": config.cache,
        "seed": config.seed,
        "deterministic": False,
        "patience": config.patience,
        "plots": config.plots,
        "verbose": True,
        **config.extra,
    }
    if config.time_hours:
        args["time"] = config.time_hours
    start = time.perf_counter()
    model.train(**args)
    seconds = time.perf_counter() - start
    run_dir = Path(model.trainer.save_dir)
    weights = run_dir / "weights"
    return TrainResult(
        run_dir, weights / "best.pt", weights / "last.pt", run_dir / "results.csv", seconds
    )


def config_dict(config: TrainConfig) -> dict[str, Any]:
    return asdict(config)
