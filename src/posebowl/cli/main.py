"""Entry point: parse, dispatch to the command modules, turn PoseBowlError into a sentence
and its exit code (:mod:`posebowl.exitcodes` lists them all)."""

from __future__ import annotations

import click
from rich.markup import escape

from posebowl import __version__, exitcodes
from posebowl.cli import (
    data,
    examples,
    pack,
    report,
    run,
    runtime,
    score,
    shell,
    synth,
    train,
    validate,
)
from posebowl.cli._render import err
from posebowl.errors import InvalidSubmissionError, PoseBowlError


class _Group(click.Group):
    """Turns a command's int return into the exit code and PoseBowlError into one sentence."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            rv = super().invoke(ctx)
        except InvalidSubmissionError as exc:
            err.print(f"[bold red]Error:[/] {exc.message}")
            for v in exc.violations[1:]:
                err.print(f"  [red]✗[/] {v.message}")
            ctx.exit(exc.exit_code)
        except PoseBowlError as exc:
            # escaped: messages name extras like [scale] that rich would take for markup
            text = exc.message + (f" {exc.fix}" if exc.fix else "")
            err.print(f"[bold red]Error:[/] {escape(text)}")
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            err.print("Interrupted.")
            ctx.exit(exitcodes.INTERRUPTED)
        if isinstance(rv, int) and rv:
            ctx.exit(rv)
        return rv


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=exitcodes.common_help()
    + "\n\n`posebowl run` adds one code per verdict: see its --help.",
)
@click.version_option(__version__, "--version", prog_name="posebowl")
def cli() -> None:
    """Run, pack, score and inspect Pose Bowl spacecraft-detection submissions locally."""


for _module in (score, validate, pack, run, shell, runtime, report, synth, data, train, examples):
    cli.add_command(_module.command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="posebowl")


if __name__ == "__main__":
    main()
