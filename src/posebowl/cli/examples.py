"""``posebowl examples [copy NAME DEST]``: the example submissions that ship with posebowl."""

from __future__ import annotations

from pathlib import Path

import click

from posebowl import examples
from posebowl.cli._render import out


@click.group("examples", invoke_without_command=True)
@click.pass_context
def command(ctx: click.Context) -> None:
    """List the example submissions (or copy one out with `copy`)."""
    if ctx.invoked_subcommand is None:
        for name in examples.NAMES:
            out.print(f"{name:<11} {examples.path(name)}")


@command.command("copy")
@click.argument("name", type=click.Choice(examples.NAMES))
@click.argument("dest", type=click.Path(path_type=Path))
def copy_cmd(name: str, dest: Path) -> int:
    """Copy the example NAME into DEST (a new folder), to edit and pack."""
    examples.copy(name, dest)
    out.print(f"[green]✓[/] copied the {name} example into {dest}; pack it: posebowl pack {dest}")
    return 0
