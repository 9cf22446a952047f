"""``posebowl run [ZIP]``: run a submission.zip in the sandbox, like the platform."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from posebowl import engines, runner
from posebowl.cli._render import err, out, print_json
from posebowl.cli._sandbox import build_limits, limit_options, resolve_runtime
from posebowl.engines.base import EXIT_CODES, Status

_STYLE = {Status.SUCCESS: "bold green"}

_CODES = "\n".join(f"  {code:>3}  {status.value}" for status, code in EXIT_CODES.items())


@click.command(
    "run",
    epilog=(
        "\b\nExit codes (one per verdict):\n"
        + _CODES
        + "\n    3  a problem with our inputs (no zip, no data folder)\n"
        "    4  this machine cannot sandbox (the message says how to fix it)\n"
        "  130  interrupted"
    ),
)
@click.argument(
    "zip_path",
    metavar="[ZIP]",
    required=False,
    default=Path("submission/submission.zip"),
    type=click.Path(dir_okay=False, path_type=Path),
)
@click.option(
    "--data",
    "data_dir",
    default=Path("data"),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder with images/ and submission_format.csv, mounted read-only.",
)
@click.option(
    "--out",
    "output_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where submission.csv, log.txt and result.json go [default: the zip's folder].",
)
@click.option(
    "--labels",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Score the output against these labels (read on the host, after the run).",
)
@click.option("--smoke", type=click.IntRange(min=1), help="Run on the first N images only.")
@limit_options
@click.option("--json", "as_json", is_flag=True, help="Print result.json on stdout at the end.")
@click.option("-q", "--quiet", is_flag=True, help="Do not stream the output (log.txt has it).")
def command(
    zip_path: Path,
    data_dir: Path,
    output_dir: Path | None,
    labels: Path | None,
    smoke: int | None,
    profile: str,
    time_limit: str | None,
    memory: str | None,
    cpus: float | None,
    pids: int | None,
    engine: str,
    runtime_dir: Path | None,
    as_json: bool,
    quiet: bool,
) -> int:
    """Run ZIP (default submission/submission.zip) in a sandbox, as the platform would.

    No network, the data read-only at /code_execution/data, the limits of --profile; main.sh
    runs from the unzipped submission, then submission.csv gets the platform's checks. The
    output streams here and to log.txt (timestamped); the verdict goes to result.json.
    """
    lim = build_limits(profile, time_limit, memory, cpus, pids)
    eng = engines.select(engine)
    runtime = resolve_runtime(runtime_dir)
    stream = sys.stderr if as_json else sys.stdout

    def echo(line: str) -> None:
        stream.write(line + "\n")
        stream.flush()

    verdict = runner.run_submission(
        zip_path,
        data_dir,
        output_dir if output_dir is not None else zip_path.parent,
        eng,
        lim,
        runtime,
        profile=profile,
        labels=labels,
        smoke=smoke,
        echo=None if quiet else echo,
    )
    if as_json:
        print_json(verdict.to_dict())
        return verdict.process_exit_code
    style = _STYLE.get(verdict.status, "bold red")
    con = out if verdict.status is Status.SUCCESS else err
    con.print(f"[{style}]{verdict.status.value}[/] {verdict.message}")
    if verdict.wall_s is not None:
        peak = verdict.peak_memory_bytes
        con.print(
            f"  wall {verdict.wall_s:.1f} s, cpu {verdict.cpu_s or 0:.1f} s, peak memory "
            f"{'?' if peak is None else f'{peak / 2**20:,.0f} MiB'}"
        )
    for name, e in sorted(verdict.enforced.items()):
        if not e.enforced:
            err.print(f"  [yellow]not enforced:[/] {name} ({e.how})")
    for v in verdict.problems[1:]:
        con.print(f"  [red]✗[/] {v.rule}: {v.message}")
    if verdict.score is not None:
        con.print(f"  score (mean IoU): [bold]{verdict.score:.4f}[/]")
    if verdict.score_error:
        err.print(f"  [yellow]not scored:[/] {verdict.score_error}")
    where = verdict.output_dir
    con.print(f"  {where / runner.LOG_NAME}, {where / runner.RESULT_NAME}")
    return verdict.process_exit_code
