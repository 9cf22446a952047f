"""``posebowl pack SRC_DIR``: a reproducible submission.zip."""

from __future__ import annotations

from pathlib import Path

import click

from posebowl.cli._render import err, out
from posebowl.packing import LARGE_ZIP_BYTES, pack


@click.command("pack")
@click.argument("src_dir", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("submission/submission.zip"),
    show_default=True,
    help="Where to write the zip.",
)
@click.option("--force", is_flag=True, help="Overwrite the zip if it exists.")
@click.option(
    "--dotfiles",
    is_flag=True,
    help="Also pack top-level names starting with a dot (.env, .venv): left out by default.",
)
def command(src_dir: Path, output: Path, force: bool, dotfiles: bool) -> int:
    """Pack SRC_DIR (with main.sh at its root) into a reproducible submission zip.

    Skips __pycache__, *.pyc, .git, .ipynb_checkpoints and .DS_Store, and, as the official
    `zip -r ../submission.zip ./*` does, top-level dotfiles (.env...) unless --dotfiles. The
    same folder always gives the same bytes. Refuses to overwrite an existing zip unless --force.
    """
    res = pack(src_dir, output, force=force, dotfiles=dotfiles)
    out.print(
        f"[green]✓[/] packed {res.files} files ({res.bytes_in / 1e6:.1f} MB) into "
        f"{res.path} ({res.bytes_out / 1e6:.1f} MB)"
    )
    if res.left_out:
        err.print(
            f"[yellow]Note:[/] left out {', '.join(res.left_out)} (top-level names starting "
            "with a dot, as the official `zip -r ... ./*` does); pass --dotfiles to keep them."
        )
    if res.large:
        err.print(
            f"[yellow]Warning:[/] the zip is over {LARGE_ZIP_BYTES / 2**30:.0f} GiB; "
            "uploads this large are slow and may be refused. Drop unused weights or data."
        )
    return 0
