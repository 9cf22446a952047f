"""Stands in for ``posebowl synth images`` in tests: same flags, a tiny labelled folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.labelled_data import make_labelled_folder


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--split", choices=["train", "heldout"], required=True)
    ap.add_argument("--workers", type=int, required=True)
    ap.add_argument("--image-format", choices=["jpg", "png"], required=True)
    args = ap.parse_args()
    seed = 1 if args.split == "train" else 2
    make_labelled_folder(args.out, n=args.n, seed=seed, suffix=f".{args.image_format}")
    (args.out / "args.txt").write_text(" ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
