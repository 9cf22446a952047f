"""The whole recipe behind ``posebowl train run``: data -> dataset -> train -> export -> evaluate.

Every step reports through a ``log(message)`` callback (the CLI prints it with timestamps); the
summary lands in ``OUT/summary.json``::

    OUT/synth/{train,heldout}/   generated data (with --generate)
    OUT/dataset/                 the ultralytics layout (links, labels, data.yaml, heldout/)
    OUT/runs/train/              ultralytics' run: weights/best.pt, results.csv, args.yaml
    OUT/model/                   model.onnx (+ model.xml/.bin), config.json
    OUT/summary.json             recipe, sizes, times, held-out IoU overall/by bucket/background
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from posebowl.errors import InputError
from posebowl.train import dataset, evaluate, export, fit

if TYPE_CHECKING:
    from posebowl.scale import Executor

Log = Callable[[str], None]


@dataclass(frozen=True)
class Recipe:
    """Everything ``posebowl train run`` needs; see the CLI's help for each option."""

    out: Path
    data: tuple[Path, ...] = ()
    val: tuple[Path, ...] = ()
    generate: int = 0
    generate_val: int = 0
    synth_workers: int = 2
    synth_executor: str = "local"  # or "ray": generation as Ray tasks (posebowl.scale)
    ray_address: str | None = None
    val_fraction: float = 0.1
    train: fit.TrainConfig = field(default_factory=fit.TrainConfig)
    export_imgsz: int = 1280
    formats: tuple[str, ...] = export.FORMATS
    evaluate_pt: bool = True
    evaluate_exported: bool = False
    eval_imgsz: int | None = None
    flip_tta: bool = False  # written into the exported config.json


def generate(
    n: int,
    out: Path,
    split: str,
    workers: int,
    log: Log,
    executor: Executor | None = None,
    reuse: bool = False,
) -> Path:
    """Composite ``n`` synthetic images of ``split``'s designs into ``out`` (JPEG, for speed).

    ``reuse`` keeps a folder that already holds ``n`` labelled images (a resumed run).
    """
    from posebowl.synth.dataset import generate as synth_generate

    if reuse:
        try:
            if len(dataset.read_labelled_folder(out)) == n:
                log(f"reusing the {n} {split} images in {out}")
                return out
        except InputError:
            pass
    where = executor.describe() if executor is not None else f"{workers} workers"
    log(f"generating {n} {split} images on {where} into {out}")
    synth_generate(
        out, n, split=split, workers=workers, image_format="jpg", force=True, executor=executor
    )
    return out


def run(recipe: Recipe, log: Log) -> dict[str, object]:
    """Run the recipe; return (and write) the summary."""
    t0 = time.perf_counter()
    out = recipe.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    data, val = list(recipe.data), list(recipe.val)

    t = time.perf_counter()
    if recipe.generate or recipe.generate_val:
        from posebowl.scale import make_executor

        w = recipe.synth_workers
        again = recipe.train.resume
        with make_executor(recipe.synth_executor, workers=w, address=recipe.ray_address) as ex:
            if recipe.generate:
                train_dir = out / "synth" / "train"
                data.append(generate(recipe.generate, train_dir, "train", w, log, ex, again))
            if recipe.generate_val:
                val_dir = out / "synth" / "heldout"
                val.append(generate(recipe.generate_val, val_dir, "heldout", w, log, ex, again))
    times["generate"] = time.perf_counter() - t

    t = time.perf_counter()
    log(f"building the dataset from {len(data)} training and {len(val)} held-out folders")
    ds = dataset.build_yolo_dataset(data, out / "dataset", val, recipe.val_fraction)
    times["dataset"] = time.perf_counter() - t
    log(f"dataset: {ds.n_train} training, {ds.n_val} validation images ({ds.linked}s)")

    t = time.perf_counter()
    cfg = recipe.train
    budget = f"{cfg.time_hours * 60:.2f} min" if cfg.time_hours else f"{cfg.epochs} epochs"
    log(f"training {cfg.model} at {cfg.imgsz} on {cfg.device} for {budget}")
    result = fit.train(ds.data_yaml, out / "runs", cfg)
    times["train"] = time.perf_counter() - t
    how = "resumed and trained" if result.resumed else "trained"
    log(f"{how} in {result.seconds:.0f} s (BatchNorm frozen: {result.bn_frozen}): {result.best}")

    summary: dict[str, object] = {
        "recipe": {
            "data": [str(p) for p in data],
            "val": [str(p) for p in val],
            "generate": recipe.generate,
            "generate_val": recipe.generate_val,
            "synth_executor": recipe.synth_executor,
            "val_fraction": recipe.val_fraction,
            "train": fit.config_dict(cfg),
            "export_imgsz": recipe.export_imgsz,
        },
        "dataset": {"train": ds.n_train, "val": ds.n_val, "val_spacecraft": list(ds.val_groups)},
        "machine": {"python": platform.python_version(), "node": platform.node()},
        "best": str(result.best),
        "resumed": result.resumed,
        "bn_frozen": result.bn_frozen,
        "epoch_log": str(result.run_dir / fit.EPOCH_LOG),
        "epoch_hours": round(fit.epoch_hours(result.run_dir / fit.EPOCH_LOG), 4),
        "results_csv": str(result.results_csv),
    }
    try:
        import torch

        if torch.cuda.is_available():
            summary["machine"]["gpu"] = torch.cuda.get_device_name(0)  # type: ignore[index]
    except ImportError:
        pass

    heldout = dataset.read_labelled_folder(ds.heldout)
    eval_imgsz = recipe.eval_imgsz or cfg.imgsz
    if recipe.evaluate_pt:
        t = time.perf_counter()
        log(f"evaluating best.pt on {len(heldout)} held-out images at {eval_imgsz}")
        preds, fallbacks = evaluate.predict_with_ultralytics(
            result.best, heldout, imgsz=eval_imgsz, device=cfg.device, batch=cfg.batch
        )
        ev = evaluate.evaluate_predictions(
            preds, heldout, fallbacks, seconds=time.perf_counter() - t
        )
        times["evaluate_pt"] = time.perf_counter() - t
        summary["heldout_pt"] = ev.to_dict()
        ev.per_image.to_csv(out / "heldout_pt_per_image.csv")
        log(f"held-out mean IoU (best.pt at {eval_imgsz}): {ev.score:.4f}")

    if recipe.formats:
        t = time.perf_counter()
        log(f"exporting {', '.join(recipe.formats)} (benchmark letterbox {recipe.export_imgsz})")
        trained = {"train_imgsz": cfg.imgsz, "model": cfg.model, "data_images": ds.n_train}
        exported = export.export_benchmark_model(
            result.best,
            out / "model",
            recipe.export_imgsz,
            recipe.formats,
            trained,
            flip_tta=recipe.flip_tta,
        )
        times["export"] = time.perf_counter() - t
        summary["model_dir"] = str(exported.folder)
        if recipe.evaluate_exported:
            t = time.perf_counter()
            log("evaluating the exported model with example_benchmark/main.py")
            bench = evaluate.predict_with_benchmark(exported.folder, heldout)
            ev = evaluate.evaluate_predictions(
                bench.predictions, heldout, bench.fallbacks, bench.seconds
            )
            times["evaluate_exported"] = time.perf_counter() - t
            summary["heldout_exported"] = ev.to_dict()
            log(f"held-out mean IoU (exported, main.py): {ev.score:.4f}")

    times["total"] = time.perf_counter() - t0
    summary["seconds"] = {k: round(v, 1) for k, v in times.items()}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
