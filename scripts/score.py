"""The official CLI, kept working: ``python scripts/score.py predicted_path actual_path``.

A thin shim over posebowl.metric (the one implementation of the metric).
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from posebowl.errors import PoseBowlError
from posebowl.metric import score_files

parser = argparse.ArgumentParser(
    description="Calculates the Jaccard index score for the Pose Bowl: Spacecraft Detection "
    "and Pose Estimation Challenge."
)
parser.add_argument("predicted_path", help="Path to predictions CSV.")
parser.add_argument("actual_path", help="Path to ground truth CSV.")

if __name__ == "__main__":
    args = parser.parse_args()
    try:
        result = score_files(args.predicted_path, args.actual_path)
    except PoseBowlError as exc:
        sys.exit(f"Error: {exc}")
    print(json.dumps(result.to_dict(), indent=2))
