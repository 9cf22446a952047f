"""Shared rendering helpers for commands: the library never prints, the CLI does."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

from posebowl.findings import Violation

out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)


def print_json(data: Any) -> None:
    """Print JSON on stdout (plain, so it can be piped)."""
    sys.stdout.write(json.dumps(data, indent=2) + "\n")
    sys.stdout.flush()


def print_violations(violations: list[Violation], title: str) -> None:
    err.print(f"[bold red]{title}[/]: {len(violations)} problem(s)")
    for v in violations:
        err.print(f"  [red]✗[/] [bold]{v.rule}[/]: {v.message}", markup=True)
