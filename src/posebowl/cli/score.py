"""``posebowl score PREDICTED ACTUAL``: the official metric."""

from __future__ import annotations

from pathlib import Path

import click

from posebowl.cli._render import out, print_json
from posebowl.metric import score_files


@click.command("score")
@click.argument("predicted", type=click.Path(path_type=Path))
@click.argument("actual", type=click.Path(path_type=Path))
@click.option(
    "--per-image",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write image_id,iou for every image to this CSV.",
)
@click.option("--json", "as_json", is_flag=True, help="Print only JSON (the default output).")
@click.option("--pretty", is_flag=True, help="Print a human summary instead of JSON.")
def command(
    predicted: Path, actual: Path, per_image: Path | None, as_json: bool, pretty: bool
) -> int:
    """Score PREDICTED boxes against ACTUAL labels: mean per-image IoU (Jaccard index).

    Prints JSON {"score": ...} like the official scripts/score.py. Invalid predictions are
    rejected with the rule broken and the offending image ids (exit code 1).
    """
    result = score_files(predicted, actual)
    if per_image is not None:
        per_image.parent.mkdir(parents=True, exist_ok=True)
        result.per_image.rename("iou").to_frame().to_csv(per_image, index_label="image_id")
    if pretty and not as_json:
        ious = result.per_image
        out.print(
            f"score {result.score:.4f} over {len(ious)} images "
            f"(median {ious.median():.4f}, {(ious < 0.5).sum()} below 0.5)"
        )
    else:
        print_json(result.to_dict())
    return 0
