"""The run, top-down: intake -> data view -> engine -> log -> checks -> verdict.

:func:`run_submission` does what the platform does with a ``submission.zip``; every step hands
the next a value. :func:`run_command` runs any command in the same sandbox layout
(``posebowl shell``, the runtime's import test).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd

from posebowl import datafolder, metric, packing, rules, sandbox, scratch, signals
from posebowl.engines.base import Bind, Enforcement, Engine, RunRequest, RunResult, Status
from posebowl.errors import InputError, PoseBowlError, SetupError
from posebowl.findings import Violation
from posebowl.limits import Limits
from posebowl.run import checks
from posebowl.run.dataview import DataView, prepare_data_view
from posebowl.run.intake import Intake, open_submission
from posebowl.run.log import RunLog
from posebowl.run.verdict import (
    LOG_NAME,
    RESULT_NAME,
    LogSummary,
    RunSetup,
    Verdict,
    classify,
    mib,
    now,
)
from posebowl.runtimes import Runtime
from posebowl.runtimes.locate import OFFICIAL_COST
from posebowl.runtimes.modules import official_modules

Echo = Callable[[str], None]


def _write_json(path: Path, data: dict[str, object]) -> None:
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def _check_inputs(setup: RunSetup) -> None:
    if not setup.zip_path.is_file():
        raise InputError(
            f"The submission zip {setup.zip_path} does not exist.",
            "Pack one first: posebowl pack SRC_DIR (or make pack-example).",
        )
    datafolder.check_data_dir(setup.data_dir)
    if setup.labels is not None and not setup.labels.is_file():
        raise InputError(
            f"The labels file {setup.labels} does not exist.", "Check the --labels path."
        )


def _limit_lines(limits: Limits) -> list[tuple[str, str]]:
    cpus = limits.effective_cpus()
    return [
        ("memory", mib(limits.memory_bytes) if limits.memory_bytes else "none"),
        ("cpus", f"{cpus:g}" if cpus else "none"),
        ("pids", str(limits.pids) if limits.pids else "none"),
        ("time", f"{limits.time_limit_s:g} s"),
    ]


def _log_view(log: RunLog, setup: RunSetup, view: DataView) -> None:
    what = f"the first {len(view.fmt)}" if setup.smoke is not None else f"all {len(view.fmt)}"
    log.note(f"data: {setup.data_dir} -> {sandbox.DATA} (read-only), {what} images")
    if view.missing_images:
        log.note(f"warning: {view.missing_images} images in {datafolder.FORMAT_CSV} are missing")
    if view.not_mounted:
        log.note(
            f"not mounted from {setup.data_dir} (the platform's data folder holds only "
            f"{datafolder.IMAGES_DIR}/ and {datafolder.FORMAT_CSV}): {', '.join(view.not_mounted)}"
        )


def _refused(setup: RunSetup, intake: Intake, images: int, log: RunLog) -> Verdict:
    for v in intake.refused:
        log.note(f"invalid submission: {v.message}")
    return Verdict(
        Status.INVALID_SUBMISSION,
        f"The zip was not run: {intake.refused[0].message}.",
        setup,
        images=images,
        problems=intake.refused,
    )


def _execute(
    setup: RunSetup,
    engine: Engine,
    runtime: Runtime | None,
    view: DataView,
    work: Path,
    log: RunLog,
) -> tuple[RunResult, Path]:
    """Run the entrypoint in the engine; the result and the sandbox's output folder."""
    out = work / "submission"
    out.mkdir()
    request = RunRequest(
        binds=(
            *view.binds,
            Bind(work / "workdir", sandbox.WORKDIR, True),
            Bind(out, sandbox.SUBMISSION, True),
        ),
        command=("sh", sandbox.ENTRYPOINT),
        cwd=sandbox.WORKDIR,
        limits=setup.limits,
        env={**sandbox.ENV, "POSEBOWL_RUN_ID": setup.run_id},
        runtime=runtime,
    )
    for k, v in _limit_lines(setup.limits):
        log.note(f"limit {k}: {v}")
    if setup.runtime is not None:
        log.note(f"runtime: {setup.runtime}")
    if setup.runtime == "slim":
        log.note(SLIM_NOTICE)
    result = engine.execute(request, log.feed)
    if log.fatal is not None:
        raise SetupError(
            f"The sandbox failed its own checks before main.sh started: {log.fatal}.",
            "This is a posebowl or host problem, not your submission's: report it.",
        )
    result = replace(
        result, enforced={**result.enforced, "process_isolation": _isolation(log.confinement)}
    )
    for k, e in sorted(result.enforced.items()):
        if not e.enforced:
            log.note(f"NOT enforced: {k} ({e.how})")
    return result, out


#: said on the terminal and in the log of every run in slim
SLIM_NOTICE = (
    "this run uses the slim runtime, a subset of the platform's packages (no torch, "
    "ultralytics, tensorflow...); build the official one for the platform's own set: "
    f"make build RUNTIME=official ({OFFICIAL_COST})"
)


def diagnose(module: str, runtime: str | None) -> str:
    """What to do about a submission that failed on ``No module named 'module'``."""
    dist = official_modules().get(module)
    if dist is not None and runtime != "official":
        return (
            f"It imports {module}, which the platform's runtime has but this one "
            f"({runtime or 'a venv of your own'}) lacks: build the official runtime, make build "
            f"RUNTIME=official ({OFFICIAL_COST}), and run with --runtime official."
        )
    if dist is not None:
        return (
            f"It imports {module}, which the official runtime should have: rebuild it "
            "(make build-full RUNTIME=official)."
        )
    return (
        f"It imports {module}, which the platform does not have either: bundle its wheel in the "
        "zip and install it from main.sh (pip install --no-index --find-links wheels/ NAME, as "
        "the 1st-place solution did), or propose it for the runtime (add it to "
        "runtimes/definition/official.in, then make lock)."
    )


def _isolation(reported: str | None) -> Enforcement:
    """Whether main.sh ran in its own Landlock domain (see run/confine.py)."""
    if reported is not None and reported.startswith("landlock"):
        return Enforcement(
            True,
            f"{reported}: main.sh's processes cannot ptrace, read the environment of, or "
            "signal processes they did not start",
        )
    why = reported or "the entrypoint did not report it"
    return Enforcement(False, f"main.sh could ptrace the sandbox's own processes: {why}")


def _judge(
    setup: RunSetup, result: RunResult, produced: Path, view: DataView, log: RunLog
) -> Verdict:
    """Copy submission.csv out, check it, score it: the verdict of a run that happened."""
    copied = setup.output_dir / checks.SUBMISSION_CSV
    # only a regular file is taken (a link would be followed on the host), and only one of a
    # size its rows can need is copied and read
    produced_size = (
        produced.lstat().st_size if produced.is_file() and not produced.is_symlink() else None
    )
    oversize = produced_size is not None and produced_size > metric.size_cap(len(view.fmt))
    if produced_size is not None and not oversize:
        shutil.copyfile(produced, copied, follow_symlinks=False)
    problems: list[Violation] = []
    submitted: pd.DataFrame | None = None
    if not (result.timed_out or result.oom_kills or result.exit_code != 0):
        if oversize:
            assert produced_size is not None
            problems = [checks.too_large(produced_size, len(view.fmt))]
        else:
            submitted, problems = checks.check_output(copied, view.fmt)
    status, message = classify(result, problems, setup.limits)
    if status is Status.FAILED and log.missing_module is not None:
        message = f"{message} {diagnose(log.missing_module, setup.runtime)}"
    for v in problems:
        log.note(f"check failed: {v.rule}: {v.message}")
    verdict = Verdict(
        status,
        message,
        setup,
        images=len(view.fmt),
        result=result,
        problems=tuple(problems),
        submission=submitted if status is Status.SUCCESS else None,
    )
    if setup.labels is None or submitted is None or status is not Status.SUCCESS:
        return verdict
    try:
        table = checks.read_labels(setup.labels)
    except PoseBowlError as exc:
        log.note(f"not scored: {exc.message}")
        return replace(verdict, score_error=exc.message)
    verdict = replace(verdict, labels_table=table)
    try:
        score = checks.score(submitted, checks.labels_of_run(view.fmt, table, setup.labels))
    except PoseBowlError as exc:
        log.note(f"not scored: {exc.message}")
        return replace(verdict, score_error=exc.message)
    log.note(f"score (mean IoU against {setup.labels}): {score:.4f}")
    return replace(verdict, score=score)


def run_submission(
    zip_path: Path,
    data_dir: Path,
    output_dir: Path,
    engine: Engine,
    limits: Limits,
    runtime: Runtime | None,
    profile: str = "custom",
    labels: Path | None = None,
    smoke: int | None = None,
    echo: Echo | None = None,
    runtime_name: str | None = None,
) -> Verdict:
    """Run ``zip_path`` like the platform; write submission.csv, log.txt and result.json.

    What the submission does is a status in the returned Verdict, and so is an interruption of
    posebowl itself (Ctrl-C, SIGTERM, SIGHUP: INTERRUPTED). Problems with our own inputs (no
    zip, no data folder, a broken sandbox) raise PoseBowlError. However it ends, the scratch
    folders are removed, and result.json is written whenever the run got past its inputs.
    """
    setup = RunSetup(
        zip_path=Path(zip_path),
        data_dir=Path(data_dir),
        output_dir=Path(output_dir),
        engine=engine.name,
        profile=profile,
        limits=limits,
        smoke=smoke,
        labels=None if labels is None else Path(labels),
        runtime=runtime_name,
    )
    _check_inputs(setup)
    setup.output_dir.mkdir(parents=True, exist_ok=True)
    for name in (checks.SUBMISSION_CSV, LOG_NAME, RESULT_NAME):
        (setup.output_dir / name).unlink(missing_ok=True)
    log = RunLog(setup.output_dir / LOG_NAME, limits.log_bytes, echo)
    work = scratch.make()
    verdict: Verdict | None = None
    images = 0
    try:
        with signals.raising():
            log.note(
                f"posebowl run {setup.zip_path} (engine {engine.name}, profile {profile}, "
                f"run {setup.run_id})"
            )
            view = prepare_data_view(setup.data_dir, work, smoke)
            images = len(view.fmt)
            _log_view(log, setup, view)
            verdict = _steps(setup, engine, runtime, view, work, log)
    except KeyboardInterrupt as exc:
        verdict = Verdict(
            Status.INTERRUPTED,
            f"posebowl was interrupted ({signals.name_of(exc)}) before the run ended; the "
            "sandbox was stopped and nothing of it is left.",
            setup,
            images=images,
        )
    finally:
        with signals.deferred():
            verdict = _finish(setup, verdict, log, work)
    assert verdict is not None  # _finish returns None only when an exception is on its way
    return verdict


def _steps(
    setup: RunSetup,
    engine: Engine,
    runtime: Runtime | None,
    view: DataView,
    work: Path,
    log: RunLog,
) -> Verdict:
    intake = open_submission(setup.zip_path, work / "workdir", setup.limits)
    if not intake.accepted:
        return _refused(setup, intake, len(view.fmt), log)
    log.note(
        f"unzipped {len(intake.entries)} files ({intake.bytes / 1e6:,.1f} MB) "
        f"into {sandbox.WORKDIR}"
    )
    result, produced = _execute(setup, engine, runtime, view, work, log)
    return _judge(setup, result, produced / checks.SUBMISSION_CSV, view, log)


def _finish(setup: RunSetup, verdict: Verdict | None, log: RunLog, work: Path) -> Verdict | None:
    """Log the verdict, close the log, remove the scratch folder, write result.json."""
    if verdict is not None:
        log.note(f"{verdict.status.value}: {verdict.message}", echo=False)
    log.close()
    notes: list[str] = []
    try:
        scratch.remove_tree(work)
    except OSError as exc:
        notes.append(f"the scratch folder {work} could not be removed completely ({exc})")
    if verdict is None:
        return None
    summary = LogSummary(log.truncated, log.dropped_bytes, log.background_processes)
    verdict = replace(verdict, log=summary, finished_at=now(), notes=tuple(notes))
    _write_json(setup.output_dir / RESULT_NAME, verdict.to_dict())
    return verdict


def run_command(
    command: Sequence[str],
    engine: Engine,
    limits: Limits,
    runtime: Runtime | None,
    data_dir: Path | None = None,
    zip_path: Path | None = None,
    network: bool = True,
    interactive: bool = True,
    extra_binds: Sequence[Bind] = (),
    on_output: Callable[[bytes], None] | None = None,
    env: dict[str, str] | None = None,
) -> RunResult:
    """Run ``command`` in the run's sandbox layout (``posebowl shell``, the runtime test).

    The data folder (if given) is mounted read-only as in a run, the zip (if given) unzipped into
    the working directory; the entrypoint's checks run first (the network one only if
    ``network`` is False).
    """
    work = scratch.make()
    try:
        workdir = work / "workdir"
        workdir.mkdir()
        binds: list[Bind] = []
        if data_dir is not None:
            binds += prepare_data_view(Path(data_dir), work).binds
        else:
            empty = work / "data"
            (empty / datafolder.IMAGES_DIR).mkdir(parents=True)
            (empty / datafolder.FORMAT_CSV).write_text(",".join(rules.COLUMNS) + "\n")
            binds.append(Bind(empty, sandbox.DATA))
        if zip_path is not None:
            packing.extract_zip(
                zip_path, workdir, limits.max_zip_entries, limits.max_unzipped_bytes
            )
        out = work / "submission"
        out.mkdir()
        binds += [Bind(workdir, sandbox.WORKDIR, True), Bind(out, sandbox.SUBMISSION, True)]
        binds += extra_binds
        flag = ("--allow-network",) if network else ()
        request = RunRequest(
            binds=tuple(binds),
            command=("sh", sandbox.ENTRYPOINT, *flag, *command),
            cwd=sandbox.WORKDIR,
            limits=limits,
            env={**sandbox.ENV, **(env or {})},
            runtime=runtime,
            network=network,
            interactive=interactive,
        )
        with signals.raising():
            return engine.execute(request, on_output)
    finally:
        with signals.deferred():
            scratch.remove_tree(work)
