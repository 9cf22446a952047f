"""``posebowl shell``: an interactive shell in the run's sandbox, for debugging."""

from __future__ import annotations

from pathlib import Path

import click

from posebowl import run
from posebowl.cli._sandbox import SandboxOptions, limit_options


@click.command("shell", context_settings={"ignore_unknown_options": True})
@click.option(
    "--zip",
    "zip_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Unzip this submission into the working directory first.",
)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Mount this data folder read-only at /code_execution/data [default: an empty one].",
)
@click.option(
    "--network/--no-network",
    default=True,
    show_default=True,
    help="Share the host's network (runs never have one).",
)
@limit_options
@click.argument("cmd", nargs=-1, type=click.UNPROCESSED)
def command(
    zip_path: Path | None,
    data_dir: Path | None,
    network: bool,
    sandbox: SandboxOptions,
    cmd: tuple[str, ...],
) -> int:
    """Open bash (or run CMD) in the same sandbox as `posebowl run`, for debugging.

    Same layout, runtime and limits as a run (no time limit unless --time-limit), but with the
    host's network unless --no-network. Exits with the command's exit code.
    Example: posebowl shell --zip submission/submission.zip --data data -- sh main.sh
    """
    lim = sandbox.limits()
    if sandbox.time_limit is None:
        lim = lim.with_overrides(time_limit_s=30 * 24 * 3600.0)
    eng, runtime = sandbox.engine_and_runtime()
    result = run.run_command(
        cmd or ("bash", "-i"),
        eng,
        lim,
        runtime,
        data_dir=data_dir,
        zip_path=zip_path,
        network=network,
        interactive=True,
    )
    return result.exit_code
