"""Evaluate a detector on a labelled folder: mean IoU overall, by size bucket, by background.

Two ways to get predictions, both ending in :func:`evaluate_predictions`:

- :func:`predict_with_ultralytics`: a ``.pt`` checkpoint through ultralytics (GPU or CPU), the
  same top-box rule and fallback as the benchmark;
- :func:`predict_with_benchmark`: the exported model through ``example_benchmark/main.py`` run
  as a subprocess on the folder, exactly as the platform runs it (and timed).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from posebowl import boxes, buckets, examples, rules
from posebowl import datafolder as layout
from posebowl.buckets import background_type
from posebowl.errors import InputError, SetupError
from posebowl.metric import score_frames
from posebowl.train.dataset import LabelledFolder
from posebowl.train.export import FALLBACK_BOX

BENCHMARK_MAIN = examples.path("benchmark") / "main.py"


@dataclass(frozen=True)
class DetectorScore:
    """Mean IoU and its breakdowns; ``per_image`` is indexed by image_id."""

    score: float
    per_image: pd.DataFrame  # iou, bucket, background (when known)
    by_bucket: pd.DataFrame
    by_background: pd.DataFrame | None
    fallbacks: int = 0
    seconds: float | None = None

    def to_dict(self) -> dict[str, object]:
        def table(df: pd.DataFrame | None) -> dict[str, dict[str, float]] | None:
            if df is None:
                return None
            return {str(k): {str(c): float(v) for c, v in row.items()} for k, row in df.iterrows()}

        return {
            "score": self.score,
            "images": len(self.per_image),
            "fallbacks": self.fallbacks,
            "seconds": self.seconds,
            "by_bucket": table(self.by_bucket),
            "by_background": table(self.by_background),
        }


def evaluate_predictions(
    predicted: pd.DataFrame,
    folder: LabelledFolder,
    fallbacks: int = 0,
    seconds: float | None = None,
) -> DetectorScore:
    """Score ``predicted`` (rules.COLUMNS) against the folder's labels, with breakdowns."""
    result = score_frames(predicted, folder.labels)
    per_image = result.per_image.to_frame("iou")
    per_image["bucket"] = buckets.size_bucket(rules.box_array(folder.labels))
    by_background = None
    meta = folder.metadata
    if meta is not None and "background_id" in meta.columns:
        per_image["background"] = [background_type(b) for b in meta["background_id"]]
        by_background = buckets.summarize(per_image["iou"], per_image["background"])
    by_bucket = buckets.summarize(per_image["iou"], per_image["bucket"])
    return DetectorScore(result.score, per_image, by_bucket, by_background, fallbacks, seconds)


def _frame(ids: list[str], rows: np.ndarray) -> pd.DataFrame:
    df = pd.DataFrame(rows.astype(np.int64), columns=list(rules.BOX_COLUMNS))
    df.insert(0, rules.INDEX_COLUMN, ids)
    return df


def predict_with_ultralytics(
    weights: str | Path,
    folder: LabelledFolder,
    imgsz: int = 640,
    device: str = "cpu",
    batch: int = 16,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[pd.DataFrame, int]:
    """Top box per image from a ``.pt`` checkpoint; returns (predictions, fallback count)."""
    import cv2

    from posebowl.train.fit import load_model

    model = load_model(weights)
    ids = folder.labels[rules.INDEX_COLUMN].tolist()
    out = np.zeros((len(ids), 4))
    fallbacks = 0
    for start in range(0, len(ids), batch):
        chunk = ids[start : start + batch]
        frames = [cv2.imread(str(folder.images[i]), cv2.IMREAD_COLOR) for i in chunk]
        results = model.predict(
            frames, imgsz=imgsz, conf=0.001, max_det=1, device=device, verbose=False
        )
        for k, (frame, res) in enumerate(zip(frames, results, strict=True)):
            h, w = frame.shape[:2]
            if len(res.boxes):
                box = res.boxes.xyxy[0].cpu().numpy().astype(np.float64)
            else:
                box = np.asarray(FALLBACK_BOX, dtype=np.float64)
                fallbacks += 1
            clipped = boxes.clip(box, min(w, rules.FRAME_WIDTH), min(h, rules.FRAME_HEIGHT))[0]
            out[start + k] = np.rint(clipped)
        if progress is not None:
            progress(min(start + batch, len(ids)), len(ids))
    return _frame(ids, out), fallbacks


@dataclass(frozen=True)
class BenchmarkRun:
    predictions: pd.DataFrame
    seconds: float  # wall time of the whole main.py process
    log: str
    fallbacks: int


def predict_with_benchmark(
    model_dir: str | Path,
    folder: LabelledFolder,
    imgsz: int | None = None,
    backend: str | None = None,
    threads: int | None = None,
    script: str | Path = BENCHMARK_MAIN,
    cpus: set[int] | None = None,
) -> BenchmarkRun:
    """Run ``example_benchmark/main.py`` on ``folder`` with the model in ``model_dir``."""
    script = Path(script)
    if not script.is_file():
        raise SetupError(
            f"The benchmark script {script} does not exist.",
            "Reinstall posebowl (the benchmark example ships with it) or pass its path.",
        )
    env = dict(os.environ, POSEBOWL_MODEL_DIR=str(Path(model_dir).resolve()))
    for key, value in (
        ("POSEBOWL_IMGSZ", imgsz),
        ("POSEBOWL_BACKEND", backend),
        ("POSEBOWL_THREADS", threads),
    ):
        if value is not None:
            env[key] = str(value)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        (data / "images").symlink_to((folder.root / "images").resolve())
        fmt = layout.zeroed_format(folder.labels[rules.INDEX_COLUMN])
        fmt.to_csv(data / layout.FORMAT_CSV, index=False)
        submission = Path(tmp) / "submission.csv"
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, str(script), str(data), str(submission)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
        )
        seconds = time.perf_counter() - start
        if proc.returncode != 0 or not submission.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise InputError(
                f"{script.name} failed with exit code {proc.returncode}: {' | '.join(tail)}",
                "Check the model folder (model.xml/model.onnx, config.json).",
            )
        predictions = pd.read_csv(submission, dtype={rules.INDEX_COLUMN: str})
    match = re.search(r"fallback box for (\d+)", proc.stderr)
    fallbacks = int(match.group(1)) if match else 0
    return BenchmarkRun(predictions, seconds, proc.stderr, fallbacks)
