"""``posebowl validate SUBMISSION_CSV FORMAT_CSV``: the platform's checks after main.sh."""

from __future__ import annotations

from pathlib import Path

import click

from posebowl import rules
from posebowl.cli._render import out, print_json, print_violations


@click.command("validate")
@click.argument("submission", type=click.Path(path_type=Path))
@click.argument("format_csv", metavar="FORMAT_CSV", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the problems as JSON.")
def command(submission: Path, format_csv: Path, as_json: bool) -> int:
    """Check SUBMISSION against FORMAT_CSV (submission_format.csv) as the platform does.

    Reports every problem at once; exit code 0 when valid, 1 when not.
    """
    fmt = rules.read_boxes_csv(format_csv, role="submission format")
    sub = rules.read_boxes_csv(submission, role="submission")
    problems = rules.submission_violations(sub, fmt)
    if as_json:
        print_json(
            {"valid": not problems, "rows": len(sub), "problems": [v.to_dict() for v in problems]}
        )
    elif problems:
        print_violations(problems, f"{submission} is invalid")
    else:
        out.print(f"[green]✓[/] {submission} is valid: {len(sub)} rows match {format_csv}.")
    return 1 if problems else 0
