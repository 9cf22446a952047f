"""``posebowl data sample|split``: local test sets in the runtime's layout."""

from __future__ import annotations

from pathlib import Path

import click

from posebowl.cli._render import out


@click.group("data")
def command() -> None:
    """Make a local test set: data/ (mounted in the sandbox) + data_labels/ (kept outside)."""


_OUT = click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("data"),
    show_default=True,
    help="The data folder the sandbox mounts (images/ + submission_format.csv).",
)
_LABELS = click.option(
    "--labels-out",
    "labels_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("data_labels"),
    show_default=True,
    help="Where test_labels.csv (and test_metadata.csv) go; never inside --out.",
)


@command.command("sample")
@click.option("--n", "n", default=24, show_default=True, help="Number of images.")
@_OUT
@_LABELS
@click.option(
    "--split",
    type=click.Choice(["heldout", "family", "train", "all"]),
    default="heldout",
    show_default=True,
    help="Which sprite designs; held-out ones are never in training sets.",
)
@click.option("--seed", default=2024, show_default=True, help="Run seed.")
@click.option("--workers", default=1, show_default=True, help="Processes.")
@click.option(
    "--sprites",
    "sprite_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Sprite folder with index.csv [default: the shipped pool].",
)
@click.option("--force", is_flag=True, help="Replace the images already in --out.")
def sample(
    n: int,
    out_dir: Path,
    labels_dir: Path,
    split: str,
    seed: int,
    workers: int,
    sprite_dir: Path | None,
    force: bool,
) -> int:
    """Make a synthetic test set from the shipped sprites (the data `make demo` uses)."""
    from posebowl.cli.synth import bucket_line
    from posebowl.synth.dataset import sample_test_set
    from posebowl.synth.pool import SHIPPED_SPRITES

    df = sample_test_set(
        out_dir,
        labels_dir,
        n,
        split=split,
        seed=seed,
        workers=workers,
        sprite_dir=sprite_dir or SHIPPED_SPRITES,
        force=force,
    )
    out.print(f"{len(df)} images -> {out_dir}/images, labels -> {labels_dir}/test_labels.csv")
    out.print(f"boxes: {bucket_line(df)}")
    return 0


@command.command("split")
@click.argument("data_dev", type=click.Path(path_type=Path))
@click.option("--n", "n", default=100, show_default=True, help="Number of images to sample.")
@_OUT
@_LABELS
@click.option("--seed", default=0, show_default=True, help="Sampling seed.")
@click.option("--force", is_flag=True, help="Replace the images already in --out.")
def split(data_dev: Path, n: int, out_dir: Path, labels_dir: Path, seed: int, force: bool) -> int:
    """Sample N images of DATA_DEV (downloaded data) into a local test set.

    Stratified by spacecraft_id x background_id when DATA_DEV has train_metadata.csv. Images are
    hard-linked when possible (copied otherwise).
    """
    from posebowl.sampling import split_dev

    df = split_dev(data_dev, n, out_dir=out_dir, labels_dir=labels_dir, seed=seed, force=force)
    strat = " (stratified by spacecraft_id x background_id)" if "spacecraft_id" in df else ""
    out.print(
        f"{len(df)} images{strat} -> {out_dir}/images, labels -> {labels_dir}/test_labels.csv"
    )
    return 0
