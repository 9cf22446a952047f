"""Render the report page from ``template.html`` (jinja2, autoescaped)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import jinja2
import pandas as pd

from posebowl.findings import Violation
from posebowl.report.gallery import Card


@dataclass(frozen=True)
class GroupSection:
    """One breakdown of IoU: a chart and the full table (``summarize``'s output)."""

    title: str
    label: str
    plot_uri: str
    table: pd.DataFrame


@dataclass(frozen=True)
class Page:
    """Everything the template shows."""

    title: str
    sources: dict[str, str]
    generated: str
    score: float
    scored: int
    n_predictions: int
    n_labels: int
    median: float
    below_half: int
    zero: int
    official: list[Violation]
    left_out: list[Violation]
    histogram_uri: str
    groups: list[GroupSection]
    worst: list[Card]
    best: list[Card]
    per_image_csv: str
    bucket_rule: str


def _env() -> jinja2.Environment:
    return jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )


def _fmt_box(box: tuple[float, ...]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in box) + "]"


def _iou_class(iou: float) -> str:
    return "bad" if iou < 0.5 else "fair" if iou < 0.8 else "good"


def render(page: Page) -> str:
    """The HTML text of ``page``."""
    env = _env()
    env.filters["box"] = _fmt_box
    env.filters["iou_class"] = _iou_class
    text = resources.files("posebowl.report").joinpath("template.html").read_text("utf-8")
    return env.from_string(text).render(page=page)
