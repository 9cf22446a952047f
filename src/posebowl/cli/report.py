"""``posebowl report --pred P --labels L --images DIR -o OUT``: the visual evaluation report."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from posebowl.cli._render import err, out
from posebowl.report import DEFAULT_BEST, DEFAULT_WORST, ReportResult, build_report


def print_summary(result: ReportResult) -> None:
    """The score, what the official scorer would say, what was left out, and where the page is."""
    if result.official:
        err.print("[yellow]The official scorer would reject these predictions:[/]")
        for v in result.official:
            err.print(f"  [yellow]![/] {v.rule}: {v.message}")
    if result.left_out:
        err.print("[yellow]Left out of the report or not shown (also listed on the page):[/]")
        for v in result.left_out:
            err.print(f"  [yellow]![/] {v.message}")
    out.print(
        f"[green]✓[/] report written to [bold]{result.path}[/] "
        f"(mean IoU {result.score:.4f} over {result.scored:,} images)"
    )


@click.command("report")
@click.option(
    "--pred",
    "pred",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Predicted boxes (a submission.csv).",
)
@click.option(
    "--labels",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="True boxes (image_id,xmin,ymin,xmax,ymax).",
)
@click.option(
    "--images",
    required=True,
    type=click.Path(path_type=Path),
    help="The folder of <image_id>.png frames.",
)
@click.option(
    "--metadata",
    type=click.Path(dir_okay=False, path_type=Path),
    help="train_metadata.csv (image_id,spacecraft_id,background_id): adds IoU by spacecraft "
    "and by background.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("report"),
    show_default=True,
    help="Folder for index.html and per_image.csv.",
)
@click.option(
    "--worst",
    type=click.IntRange(min=0),
    default=DEFAULT_WORST,
    show_default=True,
    help="How many of the worst images to show.",
)
@click.option(
    "--best",
    type=click.IntRange(min=0),
    default=DEFAULT_BEST,
    show_default=True,
    help="How many of the best images to show, for contrast.",
)
def command(
    pred: Path,
    labels: Path,
    images: Path,
    metadata: Path | None,
    output: Path,
    worst: int,
    best: int,
) -> int:
    """Write a self-contained HTML report of where the predictions miss.

    The page shows the score, a histogram of per-image IoU, IoU by box size (and by spacecraft
    and background with --metadata), and the worst and best images with the true box (green)
    and the predicted box (red). Only the gallery images are decoded. Rows that cannot be
    scored (ids missing from the labels, unusable values) and images missing on disk are
    listed on the page and here; the report shows everything else.
    """
    with Progress(
        TextColumn("drawing the gallery"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("gallery", total=worst + best)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = build_report(
            pred,
            labels,
            images,
            output,
            metadata=metadata,
            worst=worst,
            best=best,
            progress=progress,
        )
    print_summary(result)
    return 0
