"""``posebowl train``: train, export and evaluate the benchmark detector (needs ``[train]``)."""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.progress import Progress
from rich.table import Table

from posebowl.cli._render import out as console
from posebowl.cli._render import print_json
from posebowl.cli.synth import executor_options
from posebowl.errors import InputError
from posebowl.train import dataset as ds
from posebowl.train import evaluate as ev
from posebowl.train import export as ex
from posebowl.train import fit, pipeline

_T0 = time.monotonic()


def _log(message: str) -> None:
    """A progress line with wall-clock time and seconds since the command started."""
    console.print(f"[dim]{time.strftime('%H:%M:%S')} +{time.monotonic() - _T0:5.0f}s[/] {message}")


def _table(title: str, df: object) -> Table:
    table = Table(title=title, title_justify="left")
    for col in ("group", "count", "mean", "median", "below_0.5"):
        table.add_column(col, justify="left" if col == "group" else "right")
    for name, row in df.iterrows():  # type: ignore[attr-defined]
        table.add_row(
            str(name),
            f"{int(row['count'])}",
            f"{row['mean']:.4f}",
            f"{row['median']:.4f}",
            f"{int(row['below_0.5'])}",
        )
    return table


def _render(result: ev.DetectorScore, as_json: bool) -> None:
    if as_json:
        print_json(result.to_dict())
        return
    speed = f" in {result.seconds:.1f} s" if result.seconds else ""
    console.print(
        f"mean IoU [bold]{result.score:.4f}[/] over {len(result.per_image)} images{speed}; "
        f"fallback box for {result.fallbacks}"
    )
    console.print(_table("by size bucket", result.by_bucket))
    if result.by_background is not None:
        console.print(_table("by background", result.by_background))


@click.group("train")
def command() -> None:
    """Train, export and evaluate the benchmark detector (YOLO, offline, from scratch)."""


_paths = click.Path(exists=True, file_okay=False, path_type=Path)


@command.command("run")
@click.option("--data", "data", multiple=True, type=_paths, help="Labelled folder (repeatable).")
@click.option("--val", "val", multiple=True, type=_paths, help="Held-out folder (repeatable).")
@click.option("--generate", default=0, show_default=True, help="Synthetic training images.")
@click.option("--generate-val", default=0, show_default=True, help="Synthetic held-out images.")
@click.option("--synth-workers", default=2, show_default=True, help="Processes for generation.")
@executor_options
@click.option("--val-fraction", default=0.1, show_default=True, help="Held out when no --val.")
@click.option("-o", "--out", type=click.Path(path_type=Path), default=Path("runs/benchmark"))
@click.option("--model", default="yolo11n.yaml", show_default=True, help="yaml or local .pt.")
@click.option("--epochs", default=30, show_default=True)
@click.option("--time-min", type=float, default=None, help="Training time cap (overrides epochs).")
@click.option("--imgsz", default=640, show_default=True, help="Training input size.")
@click.option("--batch", default=16, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="cpu, 0, 0,1 ...")
@click.option("--workers", default=2, show_default=True, help="Dataloader workers.")
@click.option("--cache", type=click.Choice(["none", "ram", "disk"]), default="none")
@click.option("--export-imgsz", default=1280, show_default=True, help="Benchmark letterbox.")
@click.option(
    "--formats", default="onnx,openvino", show_default=True, help="Export formats, or 'none'."
)
@click.option("--eval-imgsz", type=int, default=None, help="Held-out eval size (default imgsz).")
@click.option("--eval-exported", is_flag=True, help="Also evaluate the export via main.py.")
@click.option("--plots", is_flag=True, help="Let ultralytics draw its plots.")
@click.option(
    "--freeze-bn",
    type=click.Choice(fit.FREEZE_BN),
    default="auto",
    show_default=True,
    help="Keep BatchNorm statistics (stats) or also its affine (all) frozen; auto: when the "
    "model was recovered from an export (posebowl train recover).",
)
@click.option("--threads", type=int, default=None, help="Torch threads on the CPU [all].")
@click.option("--optimizer", default="auto", show_default=True, help="auto, SGD, AdamW, ...")
@click.option("--lr0", type=float, default=None, help="Initial learning rate (not with auto).")
@click.option("--warmup-epochs", type=float, default=None, help="Warm-up epochs (0: none) [3].")
@click.option(
    "--resume",
    is_flag=True,
    help="Continue OUT's last.pt if it exists (reusing generated data), else start.",
)
@click.option("--flip-tta", is_flag=True, help="Export with flip TTA on (config.json).")
@click.option("--close-mosaic", type=int, default=None, help="Last epochs without mosaic [10].")
def run_command(
    data: tuple[Path, ...],
    val: tuple[Path, ...],
    generate: int,
    generate_val: int,
    synth_workers: int,
    executor: str,
    ray_address: str | None,
    val_fraction: float,
    out: Path,
    model: str,
    epochs: int,
    time_min: float | None,
    imgsz: int,
    batch: int,
    device: str,
    workers: int,
    cache: str,
    export_imgsz: int,
    formats: str,
    eval_imgsz: int | None,
    eval_exported: bool,
    plots: bool,
    freeze_bn: str,
    threads: int | None,
    optimizer: str,
    lr0: float | None,
    warmup_epochs: float | None,
    resume: bool,
    flip_tta: bool,
    close_mosaic: int | None,
) -> int:
    """Generate and/or read labelled data, train, evaluate on held-out designs, export."""
    cfg = fit.TrainConfig(
        model=model,
        epochs=epochs,
        imgsz=imgsz,
        batch=batch,
        device=device,
        workers=workers,
        time_hours=time_min / 60 if time_min else None,
        cache=False if cache == "none" else cache,
        plots=plots,
        freeze_bn=freeze_bn,
        threads=threads,
        optimizer=optimizer,
        lr0=lr0,
        warmup_epochs=warmup_epochs,
        resume=resume,
        close_mosaic=close_mosaic,
    )
    recipe = pipeline.Recipe(
        out=out,
        data=data,
        val=val,
        generate=generate,
        generate_val=generate_val,
        synth_workers=synth_workers,
        synth_executor=executor,
        ray_address=ray_address,
        val_fraction=val_fraction,
        train=cfg,
        export_imgsz=export_imgsz,
        formats=() if formats == "none" else tuple(f.strip() for f in formats.split(",")),
        evaluate_exported=eval_exported,
        eval_imgsz=eval_imgsz,
        flip_tta=flip_tta,
    )
    summary = pipeline.run(recipe, _log)
    _log(f"done in {summary['seconds']['total']:.0f} s; summary in {out / 'summary.json'}")  # type: ignore[index]
    return 0


@command.command("dataset")
@click.argument("data", nargs=-1, required=True, type=_paths)
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True)
@click.option("--val", "val", multiple=True, type=_paths, help="Held-out folder (repeatable).")
@click.option("--val-fraction", default=0.1, show_default=True)
@click.option("--seed", default=0, show_default=True)
def dataset_command(
    data: tuple[Path, ...], out: Path, val: tuple[Path, ...], val_fraction: float, seed: int
) -> int:
    """Convert labelled folders (competition layout) to the ultralytics layout in OUT."""
    with Progress(transient=True) as bar:
        task = bar.add_task("linking images", total=None)
        result = ds.build_yolo_dataset(
            data,
            out,
            val,
            val_fraction,
            seed,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    held = f" (held-out designs: {', '.join(result.val_groups)})" if result.val_groups else ""
    console.print(
        f"[green]✓[/] {result.n_train} training and {result.n_val} validation images{held} "
        f"in {result.root}; ultralytics reads {result.data_yaml}"
    )
    return 0


@command.command("export")
@click.argument("weights", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--imgsz", default=1280, show_default=True, help="Benchmark letterbox size.")
@click.option("--formats", default="onnx,openvino", show_default=True)
@click.option(
    "--flip-tta/--no-flip-tta",
    default=False,
    show_default=True,
    help="Also run the mirrored frame and average the boxes (2x inference, better IoU).",
)
def export_command(weights: Path, folder: Path, imgsz: int, formats: str, flip_tta: bool) -> int:
    """Export WEIGHTS (.pt) to FOLDER: model.onnx, model.xml/.bin and config.json."""
    result = ex.export_benchmark_model(
        weights, folder, imgsz, tuple(f.strip() for f in formats.split(",")), flip_tta=flip_tta
    )
    files = sorted(p.name for p in result.folder.iterdir())
    console.print(f"[green]✓[/] exported to {result.folder}: {', '.join(files)}")
    return 0


@command.command("evaluate")
@click.argument("model", type=click.Path(exists=True, path_type=Path))
@click.argument("data", type=_paths)
@click.option("--imgsz", type=int, default=None, help="Input size (default: the model's).")
@click.option("--device", default="cpu", show_default=True, help="For .pt checkpoints.")
@click.option(
    "--backend",
    type=click.Choice(["openvino", "onnxruntime"]),
    default=None,
    help="The inference backend main.py uses [default: openvino when it imports].",
)
@click.option("--per-image", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def evaluate_command(
    model: Path,
    data: Path,
    imgsz: int | None,
    device: str,
    backend: str | None,
    per_image: Path | None,
    as_json: bool,
) -> int:
    """Mean IoU of MODEL on the labelled folder DATA, by size bucket and background type.

    MODEL is a .pt checkpoint (run with ultralytics) or an exported model folder (or a file in
    it), run with example_benchmark/main.py exactly as on the platform.
    """
    folder = ds.read_labelled_folder(data)
    start = time.perf_counter()
    if model.suffix == ".pt":
        preds, fallbacks = ev.predict_with_ultralytics(model, folder, imgsz or 640, device)
        result = ev.evaluate_predictions(preds, folder, fallbacks, time.perf_counter() - start)
    else:
        model_dir = model if model.is_dir() else model.parent
        bench = ev.predict_with_benchmark(model_dir, folder, imgsz, backend)
        result = ev.evaluate_predictions(bench.predictions, folder, bench.fallbacks, bench.seconds)
    if per_image is not None:
        result.per_image.to_csv(per_image, index_label="image_id")
    _render(result, as_json)
    return 0


@command.command("recover")
@click.argument("model", type=click.Path(exists=True, path_type=Path))
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yaml", "yaml_name", default="auto", show_default=True, help="Model config.")
@click.option(
    "--check",
    "check_dir",
    type=_paths,
    default=None,
    help="Labelled folder (or folder of images) to compare PyTorch and onnxruntime on.",
)
@click.option("--imgsz", type=int, default=None, help="Letterbox for --check [config.json].")
@click.option(
    "--calibrate",
    "calibrate_dir",
    type=_paths,
    default=None,
    help="Training images to measure BatchNorm statistics on (then BatchNorm can train).",
)
@click.option("--calibrate-n", default=64, show_default=True, help="Images used to calibrate.")
@click.option("--calibrate-imgsz", default=640, show_default=True, help="Their letterbox.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def recover_command(
    model: Path,
    out: Path,
    yaml_name: str,
    check_dir: Path | None,
    imgsz: int | None,
    calibrate_dir: Path | None,
    calibrate_n: int,
    calibrate_imgsz: int,
    as_json: bool,
) -> int:
    """Rebuild a trainable checkpoint OUT (.pt) from an exported MODEL (folder or .onnx).

    The Conv+BatchNorm pairs the export fused are split again exactly (see
    posebowl.train.recover): BatchNorm is an identity plus bias, to be fine-tuned with
    --freeze-bn (auto does it). With --calibrate, BatchNorm gets the statistics measured on
    those images instead (same outputs), so it may train normally.
    """
    from posebowl.datafolder import image_names
    from posebowl.train import recover as rc

    def images_in(folder: Path) -> list[Path]:
        images_dir = folder / "images" if (folder / "images").is_dir() else folder
        found = sorted(image_names(images_dir).values())
        if not found:
            raise InputError(
                f"{images_dir} holds no PNG or JPEG images.",
                "Give a folder of images, or a data folder with an images/ folder.",
            )
        return found

    rec = rc.recover(model, yaml_name, log=None if as_json else _log)
    report: dict[str, object] = {
        "yaml": rec.yaml,
        "names": rec.source.names,
        "conv_bn_blocks": rec.fused_convs,
        "plain_tensors": rec.plain,
    }
    if calibrate_dir is not None:
        chosen = images_in(calibrate_dir)
        step = max(1, len(chosen) // max(calibrate_n, 1))
        chosen = chosen[::step][:calibrate_n]
        if not as_json:
            _log(f"calibrating BatchNorm on {len(chosen)} images at {calibrate_imgsz}")
        cal = rc.calibrate_batchnorm(rec.model, chosen, calibrate_imgsz)
        report["calibration"] = cal.__dict__
    path = rc.save_checkpoint(rec, out)
    report["checkpoint"] = str(path)
    if check_dir is not None:
        report["check"] = rc.compare_with_onnx(
            rec.model, model, images_in(check_dir), imgsz
        ).to_dict()
    if as_json:
        print_json(report)
        return 0
    console.print(
        f"[green]✓[/] {path}: {rec.yaml}, {rec.fused_convs} Conv+BN blocks rebuilt, "
        f"{rec.plain} tensors as they are"
    )
    cal_report = report.get("calibration")
    if isinstance(cal_report, dict):
        console.print(
            f"BatchNorm calibrated on {cal_report['images']} images: top-score change with batch "
            f"statistics {cal_report['train_eval_gap_before']:.4f} -> "
            f"{cal_report['train_eval_gap_after']:.4f}"
        )
    check = report.get("check")
    if isinstance(check, dict):
        console.print(
            f"PyTorch vs onnxruntime on {check['images']} images at {check['imgsz']}: "
            f"max |output| diff {check['max_abs_output']:.2e}, max score diff "
            f"{check['max_abs_score']:.2e}, same best candidate {check['same_best_candidate']}"
            f"/{check['images']}, top box within {check['max_box_px']:.2e} px "
            f"(mean IoU {check['mean_box_iou']:.6f})"
        )
    return 0


@command.command("speed")
@click.argument("data", type=_paths)
@click.option("--model", default="yolo11n.yaml", show_default=True, help="yaml or local .pt.")
@click.option("--imgsz", default=640, show_default=True)
@click.option("--batch", default=16, show_default=True)
@click.option("--workers", default=1, show_default=True, help="Dataloader workers.")
@click.option("--threads", type=int, default=None, help="Torch threads [all].")
@click.option("--batches", default=8, show_default=True, help="Batches timed.")
@click.option("--skip", default=2, show_default=True, help="Warm-up batches not timed.")
@click.option("--freeze-bn", type=click.Choice(fit.FREEZE_BN), default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def speed_command(
    data: Path,
    model: str,
    imgsz: int,
    batch: int,
    workers: int,
    threads: int | None,
    batches: int,
    skip: int,
    freeze_bn: str,
    as_json: bool,
) -> int:
    """Measure CPU training throughput (images/hour) on DATA: a labelled folder or a dataset.

    DATA is a folder in the competition layout (converted to a temporary dataset) or one made
    by `posebowl train dataset` (with data.yaml). Times real batches: loading, augmentation,
    forward, backward and optimizer steps.
    """
    import tempfile

    cfg = fit.TrainConfig(
        model=model, imgsz=imgsz, batch=batch, workers=workers, threads=threads, freeze_bn=freeze_bn
    )
    with tempfile.TemporaryDirectory(prefix="posebowl-speed-") as tmp:
        data_yaml = data / ds.MARKER
        if not data_yaml.is_file():
            data_yaml = ds.build_yolo_dataset([data], Path(tmp) / "dataset").data_yaml
        result = fit.measure_speed(data_yaml, Path(tmp) / "runs", cfg, batches, skip)
    if as_json:
        print_json(result.to_dict())
        return 0
    console.print(
        f"imgsz {result.imgsz}, batch {result.batch}, {result.workers} workers, "
        f"{result.threads} threads: [bold]{result.seconds_per_batch:.2f} s/batch, "
        f"{result.images_per_hour:,.0f} images/hour[/] over {result.batches} batches "
        f"(CPU {result.cpu_seconds_per_image:.2f} s/image; load "
        f"{' '.join(map(str, result.loadavg_start))} -> {' '.join(map(str, result.loadavg_end))})"
    )
    return 0
