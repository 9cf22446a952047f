"""A stand-in for `posebowl data sample` until the synthetic data lands: blank frames.

Usage: python -m tests.standin_data [ROOT] [N]  -> ROOT/data/ and ROOT/data_labels/test_labels.csv
(`make demo DEMO_DATA="$(BIN)/python -m tests.standin_data . 8"`).
"""

import sys
from pathlib import Path

from .sandbox_helpers import make_data

if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    if (root / "data").exists():
        sys.exit(f"{root / 'data'} already exists; remove it first")
    data, labels = make_data(root, n=n, labels_dir="data_labels")
    print(f"wrote {n} blank frames to {data} and their labels to {labels}")
