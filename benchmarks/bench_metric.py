"""Benchmark: `posebowl score` on 1,000,000 rows (read both CSVs, check, score).

Baseline in the same run: the bare pandas read of the two CSVs (the floor any CSV scorer pays).
Usage: python benchmarks/bench_metric.py [N_ROWS]
"""

from __future__ import annotations

import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from _timing import timed

from posebowl.metric import score_files


def make(n: int, folder: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    ids = [f"{v:032x}" for v in rng.integers(0, 2**63, n, dtype=np.int64)]
    x0, y0 = rng.integers(0, 1000, n), rng.integers(0, 800, n)
    w, h = rng.integers(1, 280, n), rng.integers(1, 224, n)
    truth = pd.DataFrame({"image_id": ids, "xmin": x0, "ymin": y0, "xmax": x0 + w, "ymax": y0 + h})
    pred = truth.copy()
    pred[["xmin", "ymin"]] = np.maximum(truth[["xmin", "ymin"]] - rng.integers(0, 5, (n, 2)), 0)
    truth.to_csv(folder / "truth.csv", index=False)
    pred.to_csv(folder / "pred.csv", index=False)
    return folder / "pred.csv", folder / "truth.csv"


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as d:
        pred, truth = make(n, Path(d))
        base = timed(
            lambda: (
                pd.read_csv(pred, dtype={"image_id": str}),
                pd.read_csv(truth, dtype={"image_id": str}),
            )
        )
        full = timed(lambda: score_files(pred, truth))
    print(f"machine: {platform.processor() or platform.machine()}, {platform.python_version()}")
    print(f"rows: {n:,}")
    print(f"baseline (pandas read of both CSVs): {base:.3f} s")
    print(f"posebowl score (read + checks + IoU): {full:.3f} s  ratio {full / base:.2f}x")


if __name__ == "__main__":
    main()
