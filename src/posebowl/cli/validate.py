"""``posebowl validate SUBMISSION_CSV FORMAT_CSV``: the platform's checks after main.sh."""

from __future__ import annotations

import io
from pathlib import Path

import click

from posebowl import datafolder, metric, official, rules
from posebowl.cli._render import out, print_json, print_violations
from posebowl.errors import InputError


@click.command("validate")
@click.argument("submission", type=click.Path(path_type=Path))
@click.argument("format_csv", metavar="FORMAT_CSV", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the problems as JSON.")
def command(submission: Path, format_csv: Path, as_json: bool) -> int:
    """Check SUBMISSION against FORMAT_CSV (submission_format.csv) as the platform does.

    Reports every problem at once; exit code 0 when valid, 1 when not.
    """
    if not format_csv.is_file():
        raise InputError(f"The submission format {format_csv} does not exist.", "Check the path.")
    fmt, _ = datafolder.read_format(format_csv)
    data = metric.read_capped(submission, metric.size_cap(len(fmt)), "submission")
    try:
        sub = official.read(io.BytesIO(data))
    except Exception as exc:
        raise InputError(
            f"{submission} is not a readable CSV ({exc}).",
            "Write plain comma-separated text with one header line.",
        ) from exc
    problems = rules.check_submission(sub, fmt)
    if as_json:
        print_json(
            {"valid": not problems, "rows": len(sub), "problems": [v.to_dict() for v in problems]}
        )
    elif problems:
        print_violations(problems, f"{submission} is invalid")
    else:
        out.print(f"[green]✓[/] {submission} is valid: {len(sub)} rows match {format_csv}.")
    return 1 if problems else 0
