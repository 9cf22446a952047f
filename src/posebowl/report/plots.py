"""The report's charts, drawn by matplotlib (no pyplot state) as SVG data URIs."""

from __future__ import annotations

import base64
import io

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

HIST_BINS = 50
LOG_ABOVE = 50  # images in the tallest bar before the counts go on a log scale
MAX_BARS = 30  # groups in one bar chart; the table beside it lists them all
RC = {
    "svg.fonttype": "none",  # text stays text: smaller files, the browser's font
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
BAR_COLOR = "#4c72b0"
MEAN_COLOR = "#c44e52"
MEDIAN_COLOR = "#dd8452"


def _svg_uri(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def iou_histogram(iou: pd.Series) -> str:
    """Histogram of per-image IoU with its mean and median.

    Counts go on a log scale once the tallest bar exceeds LOG_ABOVE, so that a few hundred
    failures stay visible beside tens of thousands of good boxes.
    """
    values = iou.to_numpy(dtype=float)
    bins = np.linspace(0, 1, HIST_BINS + 1)
    log = np.histogram(values, bins)[0].max() > LOG_ABOVE
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(12, 3.0), layout="constrained")
        ax = fig.add_subplot()
        ax.hist(values, bins=list(bins), color=BAR_COLOR, log=log)
        mean, median = float(values.mean()), float(np.median(values))
        ax.axvline(mean, color=MEAN_COLOR, lw=1.5, label=f"mean {mean:.3f}")
        ax.axvline(median, color=MEDIAN_COLOR, lw=1.5, ls="--", label=f"median {median:.3f}")
        ax.set_xlim(0, 1)
        ax.set_xticks(np.linspace(0, 1, 11))
        ax.set_xlabel("IoU of the predicted box with the true box")
        ax.set_ylabel("images (log scale)" if log else "images")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        if not log:
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(loc="upper left", frameon=False)
        return _svg_uri(fig)


def group_bars(table: pd.DataFrame, label: str) -> str:
    """Horizontal bars of mean IoU per group (``summarize``'s table), with the image counts.

    With more than MAX_BARS groups only the worst MAX_BARS are drawn (the title says so).
    """
    shown = table
    title = f"mean IoU by {label}"
    if len(table) > MAX_BARS:
        shown = table.sort_values("mean").head(MAX_BARS)
        title += f" (the {MAX_BARS} worst of {len(table)})"
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(7.2, 0.9 + 0.24 * len(shown)), layout="constrained")
        ax = fig.add_subplot()
        names = [str(i) for i in shown.index]
        y = np.arange(len(shown))[::-1]
        ax.barh(y, shown["mean"], color=BAR_COLOR, height=0.7)
        for yi, mean, count in zip(y, shown["mean"], shown["count"], strict=True):
            ax.text(
                min(mean, 1.0) + 0.01, yi, f"{mean:.3f}  (n={count:,})", va="center", fontsize=9
            )
        ax.set_yticks(y, names)
        ax.set_xlim(0, 1.25)
        ax.set_xticks(np.linspace(0, 1, 6))
        ax.set_xlabel("mean IoU")
        ax.set_ylabel(label)
        ax.set_title(title, loc="left", fontsize=10)
        return _svg_uri(fig)
