"""``posebowl synth setup|sprites|images|preview``: synthetic spacecraft data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from posebowl.cli._render import err, out
from posebowl.scale import EXECUTORS, Executor, Tally, make_executor


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[note]}"),
        console=err,
        transient=False,
    )


class _Ticker:
    """A progress callback driving one bar (resumed, retried and failed in its note)."""

    def __init__(self, bar: Progress, description: str, total: int) -> None:
        self.bar = bar
        self.job = bar.add_task(description, total=total, note="")
        self.last = Tally(total=total)

    def __call__(self, t: Tally) -> None:
        self.last = t
        self.bar.update(self.job, completed=t.done, total=t.total, note=t.note)


def executor_options(f: Callable[..., object]) -> Callable[..., object]:
    """``--executor local|ray`` and ``--ray-address`` (shared with ``train run``)."""
    f = click.option(
        "--ray-address",
        default=None,
        metavar="HOST:PORT",
        help="The Ray head to use [default: $RAY_ADDRESS, else the cluster `ray start` "
        "started on this machine]; 'local' starts a one-machine instance for this run.",
    )(f)
    return click.option(
        "--executor",
        type=click.Choice(EXECUTORS),
        default="local",
        show_default=True,
        help="Where tasks run: processes on this machine, or Ray tasks on a cluster whose nodes "
        "all see --out at the same path (needs the [scale] extra).",
    )(f)


def open_executor(name: str, workers: int | None, address: str | None) -> Executor:
    """The executor for the options; for Ray, connect now and say where tasks will run."""
    ex = make_executor(name, workers=workers, address=address)
    if name == "ray":
        try:
            err.print(f"tasks run on the {ex.describe()}")
        except BaseException:
            ex.close()
            raise
    return ex


@click.group("synth")
def command() -> None:
    """Make synthetic spacecraft data: Blender sprites composited on procedural backgrounds."""


@command.command("setup")
@click.option(
    "--venv",
    type=click.Path(path_type=Path),
    default=None,
    help="Where to build it [default: $POSEBOWL_BLENDER_VENV or .cache/blender-venv].",
)
def setup(venv: Path | None) -> int:
    """Build the Blender venv (Python 3.11, pinned bpy, numpy < 2; about 1.6 GB)."""
    from posebowl.synth import sprites

    with err.status("Installing bpy into the Blender venv (a few minutes the first time)..."):
        py = sprites.setup_venv(venv)
    out.print(f"Blender venv ready: {py}")
    return 0


@command.command("sprites")
@click.option("--designs", default=48, show_default=True, help="Number of spacecraft designs.")
@click.option("--first", default=0, show_default=True, help="First design id.")
@click.option("--views", default=5, show_default=True, help="Views per design.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("sprites"),
    show_default=True,
    help="Sprite folder (resumable: finished sprites are kept).",
)
@click.option("--workers", default=1, show_default=True, help="Blender processes (local executor).")
@click.option("--threads", default=2, show_default=True, help="Render threads per process.")
@click.option("--resolution", default=448, show_default=True, help="Square render size (px).")
@click.option("--samples", default=16, show_default=True, help="Cycles samples per pixel.")
@click.option(
    "--color-bits",
    default=8,
    show_default=True,
    type=click.IntRange(1, 8),
    help="Colour bits kept per channel (6 makes PNGs ~25% smaller; alpha stays exact).",
)
@click.option(
    "--venv",
    type=click.Path(path_type=Path),
    default=None,
    help="The Blender venv [default: $POSEBOWL_BLENDER_VENV or .cache/blender-venv; with Ray, "
    "each worker's own $POSEBOWL_BLENDER_VENV, else this path].",
)
@executor_options
def sprites_cmd(
    designs: int,
    first: int,
    views: int,
    out_dir: Path,
    workers: int,
    threads: int,
    resolution: int,
    samples: int,
    color_bits: int,
    venv: Path | None,
    executor: str,
    ray_address: str | None,
) -> int:
    """Render DESIGNS x VIEWS sprites with Blender (cropped RGBA PNGs + index.csv)."""
    from posebowl.synth import sprites

    tasks = sprites.plan_tasks(range(first, first + designs), views)
    with open_executor(executor, workers, ray_address) as ex, _progress() as bar:
        report = sprites.render_sprites(
            tasks,
            out_dir,
            venv=venv,
            workers=workers,
            threads=threads,
            resolution=resolution,
            samples=samples,
            color_bits=color_bits,
            progress=_Ticker(bar, "rendering sprites", len(tasks)),
            executor=ex,
        )
    out.print(
        f"{report.rendered} rendered, {report.skipped} already there, in {report.seconds:.0f} s "
        f"({report.seconds_per_sprite:.2f} s per sprite per worker) -> {out_dir}"
    )
    return 0


def bucket_line(df: object) -> str:
    """'small 41% | medium 30% | ...' for the boxes of a labels frame."""
    import numpy as np

    from posebowl.buckets import BUCKETS, size_bucket
    from posebowl.rules import BOX_COLUMNS

    b = size_bucket(df[list(BOX_COLUMNS)].to_numpy())  # type: ignore[index]
    return " | ".join(f"{k} {np.mean(b == k):.0%}" for k in BUCKETS)


def background_line(df: object) -> str:
    """'space 22% | limb 33% | ...' for the background ids of a metadata frame."""
    from posebowl.synth.backgrounds import TYPES, background_type

    kinds = [background_type(b) for b in df["background_id"]]  # type: ignore[index]
    return " | ".join(f"{k} {kinds.count(k) / len(kinds):.0%}" for k in TYPES if k in kinds)


_SPRITES_OPT = click.option(
    "--sprites",
    "sprite_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Sprite folder with index.csv [default: the shipped pool].",
)
_SPLIT_OPT = click.option(
    "--split",
    type=click.Choice(["train", "heldout", "family", "all"]),
    default="train",
    show_default=True,
    help="Which designs: training ones; held-out designs of the training families; the "
    "held-out family (deep-space probes, over the validation backgrounds); or all.",
)
_BACKGROUNDS_OPT = click.option(
    "--backgrounds",
    type=click.Choice(["auto", "train", "val"]),
    default="auto",
    show_default=True,
    help="Background recipe: auto = val for --split family, train otherwise; val = Blue "
    "Marble longitudes and cloud settings training never uses.",
)


@command.command("images")
@click.option("--n", "n", default=1000, show_default=True, help="Number of images.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Output folder (images/, train_labels.csv, train_metadata.csv, submission_format.csv).",
)
@_SPLIT_OPT
@click.option("--seed", default=0, show_default=True, help="Run seed (image i depends on it).")
@click.option(
    "--workers",
    default=None,
    type=int,
    help="Processes [default: all cores]; 1 = in-process (local executor).",
)
@click.option(
    "--image-format",
    type=click.Choice(["png", "jpg"]),
    default="png",
    show_default=True,
    help="png like the competition, or jpg (quality 95, faster to write and to load).",
)
@_SPRITES_OPT
@_BACKGROUNDS_OPT
@click.option(
    "--force",
    is_flag=True,
    help="Replace what posebowl made in --out (an unfinished run with the same settings is "
    "resumed without it).",
)
@executor_options
def images(
    n: int,
    out_dir: Path,
    split: str,
    seed: int,
    workers: int | None,
    image_format: str,
    sprite_dir: Path | None,
    backgrounds: str,
    force: bool,
    executor: str,
    ray_address: str | None,
) -> int:
    """Composite N images of spacecraft over Earth and space, in the competition layout."""
    import time

    from posebowl.synth import dataset
    from posebowl.synth.pool import SHIPPED_SPRITES

    t0 = time.perf_counter()
    with open_executor(executor, workers, ray_address) as ex, _progress() as bar:
        tick = _Ticker(bar, "compositing images", n)
        df = dataset.generate(
            out_dir,
            n,
            split=split,
            seed=seed,
            workers=workers,
            image_format=image_format,
            sprite_dir=sprite_dir or SHIPPED_SPRITES,
            recipe=None if backgrounds == "auto" else backgrounds,
            force=force,
            progress=tick,
            executor=ex,
        )
    dt = time.perf_counter() - t0
    made = len(df) - tick.last.skipped
    resumed = f", {tick.last.skipped} resumed" if tick.last.skipped else ""
    retried = f", {tick.last.retries} task attempts retried" if tick.last.retries else ""
    out.print(
        f"{len(df)} images ({df['spacecraft_id'].nunique()} spacecraft{resumed}{retried}); "
        f"{made} made in {dt:.1f} s ({made / dt:.1f}/s) -> {out_dir}"
    )
    out.print(f"boxes: {bucket_line(df)}")
    out.print(f"backgrounds: {background_line(df)}")
    return 0


@command.command("preview")
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("synth-preview.png"),
    show_default=True,
    help="The contact sheet PNG.",
)
@click.option("--n", "n", default=12, show_default=True, help="Images on the sheet.")
@click.option("--cols", default=4, show_default=True, help="Columns of the grid.")
@click.option(
    "--from",
    "from_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Show images of an existing data set (with train_labels.csv, or data/ + its labels) "
    "instead of making new ones.",
)
@click.option(
    "--labels",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Labels CSV for --from [default: its train_labels.csv, or data_labels/test_labels.csv].",
)
@_SPLIT_OPT
@click.option("--seed", default=0, show_default=True, help="Run seed.")
@_SPRITES_OPT
@_BACKGROUNDS_OPT
@click.option("--thumb", default=480, show_default=True, help="Width of each thumbnail (px).")
@click.option(
    "--quality",
    default=None,
    type=click.IntRange(1, 100),
    help="Write a JPEG of this quality (for docs) instead of what --out's suffix says.",
)
@click.option(
    "--pool",
    "show_pool",
    is_flag=True,
    help="Show the sprites of the pool, one row of --cols per family, instead of frames.",
)
def preview(
    out_path: Path,
    n: int,
    cols: int,
    from_dir: Path | None,
    labels: Path | None,
    split: str,
    seed: int,
    sprite_dir: Path | None,
    backgrounds: str,
    thumb: int,
    quality: int | None,
    show_pool: bool,
) -> int:
    """Write a contact sheet: a grid of images with their boxes drawn."""
    from posebowl.synth import preview as pv
    from posebowl.synth.pool import SHIPPED_SPRITES

    if show_pool:
        sheet = pv.sheet_from_pool(
            sprite_dir or SHIPPED_SPRITES, per_family=cols, width=thumb, seed=seed
        )
    elif from_dir is not None:
        sheet = pv.sheet_from_folder(from_dir, labels, n=n, cols=cols, seed=seed, width=thumb)
    else:
        sheet = pv.sheet_from_synth(
            n=n,
            cols=cols,
            split=split,
            seed=seed,
            sprite_dir=sprite_dir or SHIPPED_SPRITES,
            recipe=None if backgrounds == "auto" else backgrounds,
            width=thumb,
        )
    pv.write_sheet(out_path, sheet, quality=quality)
    out.print(f"contact sheet -> {out_path}")
    return 0
