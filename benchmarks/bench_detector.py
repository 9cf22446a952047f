"""Benchmark: the detector submission (example_benchmark/main.py) end to end, per input size.

For each letterbox size, in the same run and with the same CPUs and threads:

- end to end: main.py as a child process on DATA_DIR (decode + letterbox + infer + write);
  ms/image from its prediction loop (model load and warm-up excluded, reported apart), its
  peak RSS, and the mean IoU of its submission against DATA_DIR's labels;
- the bound: median PNG decode time (cv2.imread, one thread) + median model inference time
  (main.py's own Backend, same threads) per image; ``ratio = bound / end-to-end`` (target >= 0.8:
  the pipeline loses little to Python, letterboxing and writing; > 1 means overlap wins).

Usage: python benchmarks/bench_detector.py MODEL_DIR DATA_DIR [--sizes 640,1280] [--cpus 0,1]
       [--flip off,on] [--sandbox]
       [--threads N] [--backend openvino|onnxruntime] [--limit N] [--json OUT.json]
(POSEBOWL_DECODERS=0 in the environment makes main.py decode without overlap, for comparison.)
DATA_DIR is a labelled folder (images/*.png, train_labels.csv, optional train_metadata.csv).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from posebowl.train.dataset import LabelledFolder, read_labelled_folder
from posebowl.train.evaluate import evaluate_predictions

ROOT = Path(__file__).resolve().parents[1]
MAIN = ROOT / "example_benchmark" / "main.py"

# Runs main.py in this child and reports the child's own peak RSS on exit.
CHILD = """
import resource, runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    print(f"PEAK_RSS_KB {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}", file=sys.stderr)
"""


def load_main():
    spec = importlib.util.spec_from_file_location("benchmark_main", MAIN)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["benchmark_main"] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def subset(folder: LabelledFolder, limit: int | None, tmp: Path) -> LabelledFolder:
    """The first ``limit`` images as their own labelled folder (links, no copies)."""
    if not limit or limit >= len(folder):
        return folder
    root = tmp / "subset"
    (root / "images").mkdir(parents=True)
    labels = folder.labels.iloc[:limit].reset_index(drop=True)
    for image_id in labels["image_id"]:
        src = folder.images[image_id]
        os.symlink(src.resolve(), root / "images" / src.name)
    labels.to_csv(root / "train_labels.csv", index=False)
    if folder.metadata is not None:
        folder.metadata.iloc[:limit].to_csv(root / "train_metadata.csv", index=False)
    return read_labelled_folder(root)


def decode_ms(folder: LabelledFolder) -> float:
    times = []
    for path in folder.images.values():
        t = time.perf_counter()
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        times.append(time.perf_counter() - t)
        assert image is not None, path
    return 1000 * statistics.median(times)


def infer_ms(bm, model_dir: Path, folder: LabelledFolder, size: int, threads: int, backend: str):
    image = cv2.imread(str(next(iter(folder.images.values()))), cv2.IMREAD_COLOR)
    blob, _ = bm.preprocess(image, size)
    eng = bm.Backend(model_dir, threads, backend)
    for _ in range(10):  # OpenVINO compiles on first use and settles over a few calls
        eng(blob)
    times = []
    for _ in range(max(10, min(50, len(folder)))):
        t = time.perf_counter()
        eng(blob)
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times), eng.name


def data_view(folder: LabelledFolder, tmp: Path, tag: str) -> Path:
    """A data folder (images/ + submission_format.csv) over the labelled folder's images."""
    data = tmp / f"data{tag}"
    data.mkdir()
    (data / "images").symlink_to((folder.root / "images").resolve())
    fmt = folder.labels.copy()
    fmt[["xmin", "ymin", "xmax", "ymax"]] = 0
    fmt.to_csv(data / "submission_format.csv", index=False)
    return data


def in_sandbox(model_dir: Path, folder: LabelledFolder, size: int, tmp: Path, flip: bool):
    """example_benchmark packed with this size and flip mode, run by `posebowl run` (r5)."""
    import pandas as pd

    from posebowl.packing import pack

    tag = f"{size}{'flip' if flip else ''}"
    src = tmp / f"src{tag}"
    shutil.copytree(MAIN.parent, src, ignore=shutil.ignore_patterns("__pycache__", "model"))
    shutil.copytree(model_dir, src / "model")
    config = json.loads((src / "model" / "config.json").read_text())
    config.update(imgsz=size, flip_tta=flip)
    (src / "model" / "config.json").write_text(json.dumps(config))
    zip_path = pack(src, tmp / f"submission{tag}.zip").path
    out = tmp / f"out{tag}"
    data = data_view(folder, tmp, tag)
    t = time.perf_counter()
    cmd = [sys.executable, "-m", "posebowl.cli.main", "run", str(zip_path), "--data", str(data)]
    cmd += ["--out", str(out), "--profile", "r5", "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"posebowl run failed at {size}:\n{proc.stderr[-2000:]}")
    log = (out / "log.txt").read_text()
    result = json.loads((out / "result.json").read_text())
    loop = re.search(r"images in ([\d.]+) s \(([\d.]+) ms/image\); fallback box for (\d+)", log)
    peak = result.get("peak_memory_bytes")
    return {
        "wall_s": wall,
        "loop_ms_per_image": float(loop.group(2)) if loop else float("nan"),
        "fallbacks": int(loop.group(3)) if loop else -1,
        "peak_rss_mb": peak / 2**20 if peak else float("nan"),
        "predictions": pd.read_csv(out / "submission.csv", dtype={"image_id": str}),
    }


def end_to_end(
    model_dir: Path, folder: LabelledFolder, size: int, threads: int, backend, tmp, flip: bool
):
    data = data_view(folder, tmp, f"{size}{'flip' if flip else ''}")
    sub = tmp / f"submission{size}{'flip' if flip else ''}.csv"
    env = dict(
        os.environ,
        POSEBOWL_MODEL_DIR=str(model_dir),
        POSEBOWL_IMGSZ=str(size),
        POSEBOWL_THREADS=str(threads),
        POSEBOWL_FLIP_TTA="1" if flip else "0",
    )
    if backend:
        env["POSEBOWL_BACKEND"] = backend
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(MAIN), str(data), str(sub)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"main.py failed at {size}:\n{proc.stderr[-2000:]}")
    loop = re.search(
        r"images in ([\d.]+) s \(([\d.]+) ms/image\); fallback box for (\d+)", proc.stderr
    )
    rss = re.search(r"PEAK_RSS_KB (\d+)", proc.stderr)
    import pandas as pd

    predictions = pd.read_csv(sub, dtype={"image_id": str})
    return {
        "wall_s": wall,
        "loop_ms_per_image": float(loop.group(2)) if loop else float("nan"),
        "fallbacks": int(loop.group(3)) if loop else -1,
        "peak_rss_mb": int(rss.group(1)) / 1024 if rss else float("nan"),
        "predictions": predictions,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir", type=Path)
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--sizes", default="640,1280")
    ap.add_argument("--cpus", default=None, help="CPU ids to run on, e.g. 0,1")
    ap.add_argument("--threads", type=int, default=None, help="Default: main.py's own choice.")
    ap.add_argument("--backend", choices=["openvino", "onnxruntime"], default=None)
    ap.add_argument("--limit", type=int, default=None, help="Use the first N images only.")
    ap.add_argument(
        "--sandbox",
        action="store_true",
        help="Run main.py through `posebowl run` (bwrap, r5 limits) instead of a bare child.",
    )
    ap.add_argument(
        "--flip", default="off", help="Flip TTA modes to run: off, on or off,on (2 inferences)."
    )
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if args.cpus:
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})  # children inherit it
    bm = load_main()
    threads = args.threads or bm.cpu_budget()
    model_dir = args.model_dir.resolve()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        folder = subset(read_labelled_folder(args.data_dir), args.limit, tmp)
        cv2.setNumThreads(1)
        dec = decode_ms(folder)
        modes = [m.strip() == "on" for m in args.flip.split(",")]
        for size in (int(s) for s in args.sizes.split(",")):
            inf, backend = infer_ms(bm, model_dir, folder, size, threads, args.backend)
            for flip in modes:
                if args.sandbox:
                    e2e = in_sandbox(model_dir, folder, size, tmp, flip)
                else:
                    e2e = end_to_end(model_dir, folder, size, threads, args.backend, tmp, flip)
                ev = evaluate_predictions(e2e.pop("predictions"), folder, e2e["fallbacks"])
                bound = dec + inf * (2 if flip else 1)
                rows.append(row(size, flip, backend, threads, folder, dec, inf, bound, e2e, ev))
    _print(rows)
    if args.json:
        cpus = sorted(os.sched_getaffinity(0))
        args.json.write_text(json.dumps({"cpus": cpus, "rows": rows}, indent=2) + "\n")


def row(size, flip, backend_name, threads, folder, dec, inf, bound, e2e, ev) -> dict:
    return {
        "size": size,
        "flip_tta": flip,
        "backend": backend_name,
        "threads": threads,
        "images": len(folder),
        "decode_ms": round(dec, 1),
        "infer_ms": round(inf, 1),
        "bound_ms": round(bound, 1),
        "e2e_ms": round(e2e["loop_ms_per_image"], 1),
        "e2e_images_per_s": round(1000 / e2e["loop_ms_per_image"], 2),
        "ratio_bound_over_e2e": round(bound / e2e["loop_ms_per_image"], 3),
        "wall_s": round(e2e["wall_s"], 1),
        "peak_rss_mb": round(e2e["peak_rss_mb"], 0),
        "iou": round(ev.score, 4),
        "iou_by_bucket": {k: round(v, 4) for k, v in ev.by_bucket["mean"].items()},
        "fallbacks": e2e["fallbacks"],
    }


def _print(rows: list[dict]) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    machine = platform.processor() or platform.machine()
    print(f"machine: {machine}, CPUs {cpus}, Python {platform.python_version()}")
    print(
        f"{'size':>5} {'flip':>4} {'decode':>7} {'infer':>7} {'bound':>7} {'e2e':>7} {'img/s':>6} "
        f"{'ratio':>6} {'RSS MB':>7} {'IoU':>6}  by bucket"
    )
    for r in rows:
        print(
            f"{r['size']:>5} {'on' if r['flip_tta'] else 'off':>4} {r['decode_ms']:>7} "
            f"{r['infer_ms']:>7} {r['bound_ms']:>7} "
            f"{r['e2e_ms']:>7} {r['e2e_images_per_s']:>6} {r['ratio_bound_over_e2e']:>6} "
            f"{r['peak_rss_mb']:>7} {r['iou']:>6}  {r['iou_by_bucket']}"
        )
    print(
        f"(ms/image; {rows[0]['backend']}, {rows[0]['threads']} threads)" if rows else "(no rows)"
    )


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
