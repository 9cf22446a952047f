"""posebowl: run, pack, score and inspect Pose Bowl spacecraft-detection submissions locally.

The public API is the names in ``__all__``; everything else is internal.
"""

from posebowl.errors import PoseBowlError
from posebowl.metric import ScoreResult, score_files, score_frames

__version__ = "0.1.0"

__all__ = [
    "PoseBowlError",
    "ScoreResult",
    "__version__",
    "score_files",
    "score_frames",
]
