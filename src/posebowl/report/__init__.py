"""The visual evaluation report: score, IoU breakdowns and a gallery of the worst images.

``build_report(pred_csv, labels_csv, images_dir, out_dir, metadata=None)`` writes one
self-contained ``index.html`` (charts and thumbnails embedded) and ``per_image.csv``.
"""

from posebowl.datafolder import read_metadata
from posebowl.report.build import DEFAULT_BEST, DEFAULT_WORST, ReportResult, build_report
from posebowl.report.evaluate import Evaluation, evaluate, select_gallery

__all__ = [
    "DEFAULT_BEST",
    "DEFAULT_WORST",
    "Evaluation",
    "ReportResult",
    "build_report",
    "evaluate",
    "read_metadata",
    "select_gallery",
]
