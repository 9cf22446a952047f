"""Train an ultralytics YOLO detector from its yaml (random init) or a checkpoint, offline.

Fine-tuning on a CPU (see ``scripts/train_cpu.sh``) adds three things ultralytics lacks:

- ``freeze_bn``: BatchNorm layers kept in eval mode (running statistics frozen) and, with
  ``"all"``, their scale and shift frozen too. A model recovered from its ONNX export
  (:mod:`posebowl.train.recover`) has identity statistics that batch statistics must never
  replace; ``"auto"`` (the default) freezes exactly when the model has them.
- ``threads``/``workers``: on the CPU ultralytics forces ``workers=0`` (images decoded and
  augmented in the training loop) and ``torch.set_num_threads(min(8, cores - 1))``, one thread
  on a 2-core machine. Both are put back to what the config asks for.
- ``resume``: continue ``out_dir/train/weights/last.pt`` (ultralytics saves it every epoch)
  after the process was stopped; a finished run is left as it is. Every finished epoch appends
  a line to ``out_dir/train/epochs.jsonl`` (wall seconds, images/hour, load average), so the
  hours spent survive a kill.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from posebowl.errors import InputError
from posebowl.train import offline

FREEZE_BN = ("auto", "none", "stats", "all")
EPOCH_LOG = "epochs.jsonl"

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
    freeze_bn: str = "auto"  # see FREEZE_BN and the module docstring
    threads: int | None = None  # torch threads on the CPU (None: every CPU this process may use)
    optimizer: str = "auto"  # ultralytics: auto (AdamW lr 0.002 for short runs), SGD, AdamW...
    lr0: float | None = None  # None: ultralytics' default (ignored by optimizer "auto")
    warmup_epochs: float | None = None  # None: ultralytics' 3; 0 turns warm-up off
    resume: bool = False  # continue out_dir/train/weights/last.pt when it exists
    close_mosaic: int | None = None  # None: ultralytics' 10 (last epochs without mosaic)
    extra: dict[str, Any] = field(default_factory=dict)  # any other ultralytics train argument


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    best: Path
    last: Path
    results_csv: Path
    seconds: float
    resumed: bool = False
    bn_frozen: str = "none"  # what freeze_bn resolved to


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


def batchnorm_is_identity(model: Any) -> bool:
    """True when every BatchNorm has mean 0 and variance ``1 - eps`` (a recovered model)."""
    import torch

    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    if not bns:
        return False
    for bn in bns:
        if bn.running_mean is None or bn.running_var is None:  # track_running_stats=False
            return False
        mean, var = bn.running_mean.float(), bn.running_var.float()
        if bool(mean.abs().max() > 0) or bool((var - (1 - bn.eps)).abs().max() > bn.eps / 4):
            return False
    return True


def resolve_freeze_bn(mode: str, model: Any) -> str:
    """``mode`` with ``"auto"`` decided from the model (``"stats"`` if its BN is identity)."""
    if mode not in FREEZE_BN:
        raise InputError(
            f"Unknown BatchNorm freeze mode {mode!r}.", f"Use one of {', '.join(FREEZE_BN)}."
        )
    if mode != "auto":
        return mode
    return "stats" if batchnorm_is_identity(model) else "none"


def batchnorm_callbacks(mode: str) -> dict[str, Callable[[Any], None]]:
    """ultralytics callbacks that keep BatchNorm frozen (``"stats"`` or ``"all"``).

    The trainer calls ``model.train()`` at every epoch start (after ``on_train_epoch_start``),
    so the BatchNorms are put back into eval mode before every batch. ``"all"`` also stops
    gradients to their weight and bias once the optimizer exists (the trainer re-enables
    ``requires_grad`` on every parameter while setting up).
    """
    import torch

    if mode in ("none", "auto"):
        return {}

    def bn_layers(trainer: Any) -> list[torch.nn.BatchNorm2d]:
        return [m for m in trainer.model.modules() if isinstance(m, torch.nn.BatchNorm2d)]

    def freeze_stats(trainer: Any) -> None:
        for bn in bn_layers(trainer):
            if bn.training:
                bn.eval()

    def freeze_affine(trainer: Any) -> None:
        for bn in bn_layers(trainer):
            for p in (bn.weight, bn.bias):
                if p is not None:
                    p.requires_grad_(False)

    callbacks: dict[str, Callable[[Any], None]] = {"on_train_batch_start": freeze_stats}
    if mode == "all":
        callbacks["on_train_start"] = freeze_affine
    return callbacks


def cpu_threads() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def cpu_callbacks(workers: int, threads: int) -> dict[str, Callable[[Any], None]]:
    """Undo ultralytics' CPU overrides: ``workers=0`` and one torch thread on 2 cores."""
    import torch
    import ultralytics.utils.torch_utils as torch_utils

    torch_utils.NUM_THREADS = threads  # what select_device() sets on the CPU

    def restore(trainer: Any) -> None:
        if trainer.device.type == "cpu":
            trainer.args.workers = workers
            torch.set_num_threads(threads)

    return {"on_pretrain_routine_start": restore}


def epoch_log_callbacks(path: Path) -> dict[str, Callable[[Any], None]]:
    """Append one JSON line per finished epoch to ``path`` (survives kills and resumes)."""
    state: dict[str, float] = {}

    def start(trainer: Any) -> None:
        state["start"] = time.time()

    def train_end(trainer: Any) -> None:
        state["train_end"] = time.time()

    def fit_end(trainer: Any) -> None:
        if "start" not in state or "train_end" not in state:
            return  # the final validation of best.pt also fires on_fit_epoch_end
        now = time.time()
        images = len(trainer.train_loader.dataset)
        train_s = state["train_end"] - state["start"]
        row = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "epoch": int(trainer.epoch) + 1,
            "epochs": int(trainer.epochs),
            "images": images,
            "imgsz": int(trainer.args.imgsz),
            "batch": int(trainer.batch_size),
            "train_seconds": round(train_s, 1),
            "val_seconds": round(now - state["train_end"], 1),
            "images_per_hour": round(images * 3600 / max(train_s, 1e-9)),
            "loadavg": [round(x, 2) for x in os.getloadavg()],
            "fitness": None if trainer.fitness is None else float(trainer.fitness),
            "metrics": {k: float(v) for k, v in (trainer.metrics or {}).items()},
        }
        with path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        state.clear()

    return {
        "on_train_epoch_start": start,
        "on_train_epoch_end": train_end,
        "on_fit_epoch_end": fit_end,
    }


def epoch_hours(path: Path) -> float:
    """Wall hours of the finished epochs in an epoch log (training + validation), 0 if none."""
    if not path.is_file():
        return 0.0
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return sum(r["train_seconds"] + r["val_seconds"] for r in rows) / 3600


def checkpoint_epoch(path: Path) -> int:
    """The epoch index saved in an ultralytics checkpoint (-1: training finished)."""
    import torch

    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    return int(ckpt.get("epoch", -1)) if isinstance(ckpt, dict) else -1


def train(data_yaml: str | Path, out_dir: str | Path, config: TrainConfig) -> TrainResult:
    """Train on ``data_yaml``; the run lands in ``out_dir/train`` (overwritten unless resumed)."""
    data_yaml = Path(data_yaml).resolve()
    if not data_yaml.is_file():
        raise InputError(
            f"The dataset file {data_yaml} does not exist.", "Build the dataset first."
        )
    out_dir = Path(out_dir).resolve()
    run_dir = out_dir / "train"
    weights = run_dir / "weights"
    last = weights / "last.pt"

    def result(seconds: float, resumed: bool, frozen: str) -> TrainResult:
        return TrainResult(
            run_dir, weights / "best.pt", last, run_dir / "results.csv", seconds, resumed, frozen
        )

    resumed = False
    if config.resume and last.is_file():
        if checkpoint_epoch(last) < 0:
            return result(0.0, False, "unknown")  # finished already: nothing to resume
        resumed = True
        model = load_model(last)
    else:  # a new run (or one killed before its first epoch ended): start from the model
        model = load_model(config.model)
        (run_dir / EPOCH_LOG).unlink(missing_ok=True)
    frozen = resolve_freeze_bn(config.freeze_bn, model.model)
    on_cuda = str(config.device) not in {"cpu", "mps"}
    threads = config.threads or cpu_threads()
    callbacks = {
        **batchnorm_callbacks(frozen),
        **({} if on_cuda else cpu_callbacks(config.workers, threads)),
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    for event, fn in [*callbacks.items(), *epoch_log_callbacks(run_dir / EPOCH_LOG).items()]:
        model.add_callback(event, fn)
    if resumed:
        args: dict[str, Any] = {
            "resume": True,
            "data": str(data_yaml),
            "batch": config.batch,
            "device": config.device,
        }
    else:
        args = {
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
            "optimizer": config.optimizer,
            **({"lr0": config.lr0} if config.lr0 is not None else {}),
            **({"warmup_epochs": config.warmup_epochs} if config.warmup_epochs is not None else {}),
            **({"close_mosaic": config.close_mosaic} if config.close_mosaic is not None else {}),
            **config.extra,
        }
        if not str(config.model).endswith((".yaml", ".yml")):
            # Fine-tuning: ultralytics' warm-up starts the bias learning rate at 0.1 (except
            # with optimizer "auto" -> AdamW), which throws trained biases far off.
            args.setdefault("warmup_bias_lr", 0.0)
        if config.time_hours:
            args["time"] = config.time_hours
    start = time.perf_counter()
    model.train(**args)
    seconds = time.perf_counter() - start
    return result(seconds, resumed, frozen)


def config_dict(config: TrainConfig) -> dict[str, Any]:
    return asdict(config)


@dataclass(frozen=True)
class Speed:
    """Training throughput measured over ``batches`` batches (after ``skipped`` warm-up ones)."""

    imgsz: int
    batch: int
    workers: int
    threads: int
    batches: int
    skipped: int
    seconds_per_batch: float
    images_per_hour: float
    cpu_seconds_per_image: float  # this process (all its threads); dataloader workers excluded
    loadavg_start: tuple[float, float, float]
    loadavg_end: tuple[float, float, float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Measured(Exception):
    """Raised from a callback to leave the training loop once enough batches are timed."""


def measure_speed(
    data_yaml: str | Path, out_dir: str | Path, config: TrainConfig, batches: int = 8, skip: int = 2
) -> Speed:
    """Time ``batches`` real training batches (data loading, forward, backward, optimizer).

    The first ``skip`` batches (worker start-up, first allocations) are not counted. Nothing
    is saved: the loop is left from a callback before the first epoch ends.
    """
    if batches < 1 or skip < 0:
        raise InputError("Measure at least one batch.", "Pass --batches 1 or more.")
    model = load_model(config.model)
    threads = config.threads or cpu_threads()
    frozen = resolve_freeze_bn(config.freeze_bn, model.model)
    stamps: list[float] = []
    cpu: list[float] = []
    load_start = os.getloadavg()

    def tick(trainer: Any) -> None:
        stamps.append(time.perf_counter())
        cpu.append(time.process_time())
        if len(stamps) > skip + batches:
            raise _Measured

    callbacks = {**batchnorm_callbacks(frozen), **cpu_callbacks(config.workers, threads)}
    for event, fn in callbacks.items():
        model.add_callback(event, fn)
    model.add_callback("on_train_batch_end", tick)
    model.add_callback("on_train_epoch_start", tick)
    from ultralytics.utils import LOGGER

    level = LOGGER.level
    LOGGER.setLevel(logging.WARNING)  # the run's arguments and model summary: not wanted here
    try:
        with contextlib.suppress(_Measured):
            model.train(
                data=str(Path(data_yaml).resolve()),
                epochs=1,
                imgsz=config.imgsz,
                batch=config.batch,
                device="cpu",
                workers=config.workers,
                project=str(Path(out_dir).resolve()),
                name="speed",
                exist_ok=True,
                pretrained=False,
                amp=False,
                plots=False,
                val=False,
                optimizer=config.optimizer,
                warmup_epochs=0,
                verbose=False,
                **config.extra,
            )
    finally:
        LOGGER.setLevel(level)
    timed, cpu_timed = stamps[skip:], cpu[skip:]
    if len(timed) - 1 < batches:
        raise InputError(
            f"Only {max(len(stamps) - 1, 0)} batches ran; {skip + batches} were needed.",
            "Use more images (one epoch must hold them all) or fewer --batches.",
        )
    per_batch = (timed[-1] - timed[0]) / (len(timed) - 1)
    return Speed(
        config.imgsz,
        config.batch,
        config.workers,
        threads,
        len(timed) - 1,
        skip,
        per_batch,
        config.batch * 3600 / per_batch,
        (cpu_timed[-1] - cpu_timed[0]) / ((len(timed) - 1) * config.batch),
        tuple(round(x, 2) for x in load_start),  # type: ignore[arg-type]
        tuple(round(x, 2) for x in os.getloadavg()),  # type: ignore[arg-type]
    )
