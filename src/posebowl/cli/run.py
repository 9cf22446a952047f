"""``posebowl run [ZIP]``: run a submission.zip in the sandbox, like the platform."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from posebowl import datafolder, exitcodes, rules, run
from posebowl.cli._render import err, out, print_json
from posebowl.cli._sandbox import SandboxOptions, limit_options
from posebowl.cli.report import print_summary
from posebowl.engines.base import Status
from posebowl.errors import InputError, PoseBowlError
from posebowl.report import ReportResult, build_report
from posebowl.run.pipeline import SLIM_NOTICE

REPORT_DIR = "report"  # inside the output folder, unless --report-dir

_STYLE = {Status.SUCCESS: "bold green"}


@click.command("run", epilog=exitcodes.run_help())
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
@click.option(
    "--report",
    "with_report",
    is_flag=True,
    help="After a successful run, write the evaluation report (needs --labels).",
)
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help=f"Where the report goes (implies --report) [default: OUT/{REPORT_DIR}].",
)
@click.option(
    "--metadata",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The report's image_id,spacecraft_id,background_id table [default: the labels' "
    "X_metadata.csv or metadata.csv beside them, if there].",
)
@limit_options
@click.option("--json", "as_json", is_flag=True, help="Print result.json on stdout at the end.")
@click.option("-q", "--quiet", is_flag=True, help="Do not stream the output (log.txt has it).")
def command(
    zip_path: Path,
    data_dir: Path,
    output_dir: Path | None,
    labels: Path | None,
    smoke: int | None,
    with_report: bool,
    report_dir: Path | None,
    metadata: Path | None,
    sandbox: SandboxOptions,
    as_json: bool,
    quiet: bool,
) -> int:
    """Run ZIP (default submission/submission.zip) in a sandbox, as the platform would.

    No network, the data read-only at /code_execution/data, the limits of --profile; main.sh
    runs from the unzipped submission, then submission.csv gets the platform's checks. The
    output streams here and to log.txt (timestamped); the verdict goes to result.json.
    """
    with_report = with_report or report_dir is not None
    if with_report and labels is None:
        raise click.UsageError("--report needs --labels (the true boxes to compare with).")
    lim = sandbox.limits()
    eng, runtime = sandbox.engine_and_runtime()
    runtime_label = sandbox.runtime_label(eng)
    if runtime_label == "slim" and quiet:
        err.print(f"[yellow]Note:[/] {SLIM_NOTICE}.")  # otherwise the streamed log says it
    stream = sys.stderr if as_json else sys.stdout

    def echo(line: str) -> None:
        stream.write(line + "\n")
        stream.flush()

    output_dir = output_dir if output_dir is not None else zip_path.parent
    verdict = run.run_submission(
        zip_path,
        data_dir,
        output_dir,
        eng,
        lim,
        runtime,
        profile=sandbox.profile,
        labels=labels,
        smoke=smoke,
        echo=None if quiet else echo,
        runtime_name=runtime_label,
    )
    report: ReportResult | None = None
    report_error: str | None = None
    if with_report and labels is not None:
        try:
            report = _report(verdict, labels, metadata, report_dir or output_dir / REPORT_DIR)
        except PoseBowlError as exc:
            report_error = exc.message + (f" {exc.fix}" if exc.fix else "")
    if as_json:
        data = verdict.to_dict()
        if with_report:
            data["report"] = (
                {"path": str(report.path), "score": report.score, "scored": report.scored}
                if report is not None
                else {"error": report_error}
            )
        print_json(data)
        return verdict.process_exit_code
    style = _STYLE.get(verdict.status, "bold red")
    con = out if verdict.status is Status.SUCCESS else err
    con.print(f"[{style}]{verdict.status.value}[/] {verdict.message}")
    if verdict.result is not None:
        r = verdict.result
        peak = r.peak_memory_bytes
        con.print(
            f"  wall {r.wall_s:.1f} s, cpu {r.cpu_s or 0:.1f} s, peak memory "
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
    where = verdict.setup.output_dir
    con.print(f"  {where / run.LOG_NAME}, {where / run.RESULT_NAME}")
    if report is not None:
        print_summary(report)
    elif report_error:
        err.print(f"  [yellow]no report:[/] {report_error}")
    return verdict.process_exit_code


def _report(
    verdict: run.Verdict, labels: Path, metadata: Path | None, report_dir: Path
) -> ReportResult:
    """The evaluation report of a successful run (its submission.csv against ``labels``)."""
    if verdict.status is not Status.SUCCESS or verdict.submission is None:
        raise InputError(
            f"the run ended {verdict.status.value}, so there is no valid submission.csv to "
            "report on.",
            "Fix the run first.",
        )
    if verdict.labels_table is not None:
        truth = verdict.labels_table.reset_index()
    else:  # the labels could not be scored against: the report says why
        truth = rules.read_boxes_csv(labels, role="labels")
    if verdict.setup.smoke is not None:
        # only the images the run saw: the labels of the others are not "missed"
        key = rules.INDEX_COLUMN
        truth = truth[truth[key].isin(set(verdict.submission[key]))]
    if metadata is None:
        metadata = datafolder.metadata_beside(labels)
    sources = {
        "predictions": str(verdict.setup.output_dir / "submission.csv"),
        "labels": str(labels) + (f" (the {len(truth)} images run)" if verdict.setup.smoke else ""),
        "images": str(verdict.setup.data_dir / datafolder.IMAGES_DIR),
    }
    if metadata is not None:
        sources["metadata"] = str(metadata)
    with err.status("Writing the evaluation report ..."):
        return build_report(
            verdict.submission,
            truth,
            verdict.setup.data_dir / datafolder.IMAGES_DIR,
            report_dir,
            metadata=metadata,
            sources=sources,
        )
