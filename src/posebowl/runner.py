"""What every engine's run has in common, written once: intake, data view, log, checks, verdict.

:func:`run_submission` does what the platform does with a ``submission.zip``: opens it safely
(:func:`posebowl.packing.extract_zip`), shows the data read-only (only ``images/`` and
``submission_format.csv``, never labels; ``smoke`` cuts both to the first N images), runs the
in-sandbox entrypoint through an :class:`~posebowl.engines.base.Engine`, streams the output to
``log.txt`` with timestamps (capped, with a note), checks ``submission.csv`` with the platform's
rules (:func:`posebowl.rules.submission_violations`), scores it when labels are given (read on
the host only, after the run) and writes the verdict to ``result.json``.

:func:`run_command` runs any command in the same sandbox layout (``posebowl shell``, the
runtime's import test).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

from posebowl import metric, packing, rules
from posebowl.engines.base import (
    DATA,
    ENTRYPOINT,
    HOME,
    SANDBOX_USER,
    SUBMISSION,
    WORKDIR,
    Bind,
    Enforcement,
    Engine,
    RunRequest,
    RunResult,
    Status,
)
from posebowl.errors import InputError, InvalidSubmissionError, PoseBowlError, SetupError
from posebowl.findings import Violation
from posebowl.limits import Limits
from posebowl.runtime_env import Runtime

MARKER = "posebowl-entrypoint: "
FORMAT_NAME = "submission_format.csv"
IMAGES_NAME = "images"
SUBMISSION_CSV = "submission.csv"
LOG_NAME = "log.txt"
RESULT_NAME = "result.json"
MAX_LINE = 1 << 16  # a longer line without a newline is logged in pieces
HOST_PREFIX = "[posebowl]"
PIP_TARGET = f"{HOME}/.local/posebowl-site-packages"

#: The environment inside the sandbox (engines add PATH for their runtime).
SANDBOX_ENV: dict[str, str] = {
    "HOME": HOME,
    "USER": SANDBOX_USER,
    "LOGNAME": SANDBOX_USER,
    "LANG": "C.UTF-8",
    "TMPDIR": "/tmp",
    # Stream the output as it is printed, so log.txt's timestamps say when things happened.
    "PYTHONUNBUFFERED": "1",
    # The runtime venv is read-only: `pip install` (e.g. of a wheel bundled in the zip, offline)
    # goes to a writable folder that is first on the import path, as if installed in the venv.
    "PIP_TARGET": PIP_TARGET,
    "PYTHONPATH": PIP_TARGET,
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
}


# -- the log ------------------------------------------------------------------------------------
class RunLog:
    """``log.txt``: every line timestamped, cut at ``cap_bytes`` with a note; echoed as written.

    Also reads the entrypoint's own lines (``posebowl-entrypoint: ...``): a FATAL before main.sh
    started (the sandbox is broken), the count of background processes left running.
    """

    def __init__(
        self, path: Path, cap_bytes: int, echo: Callable[[str], None] | None = None
    ) -> None:
        self.path = path
        self.cap = cap_bytes
        self.echo = echo
        self._f = open(path, "wb")  # noqa: SIM115 - closed by close()
        self._buf = b""
        self.written = 0
        self.truncated = False
        self.dropped_bytes = 0
        self.fatal: str | None = None
        self.started = False
        self.background_processes = 0
        self._sec = -1
        self._stamp = ""

    def _ts(self) -> str:
        now = time.time()
        sec = int(now)
        if sec != self._sec:
            self._sec = sec
            self._stamp = datetime.fromtimestamp(sec).strftime("%Y-%m-%d %H:%M:%S")
        return f"{self._stamp}.{int((now - sec) * 1000):03d}"

    def _emit(self, text: str) -> None:
        data = f"{self._ts()} {text}\n".encode("utf-8", "replace")
        if self.truncated or self.written + len(data) > self.cap:
            if not self.truncated:
                self.truncated = True
                if self.echo is not None:
                    self.echo(
                        f"{self._ts()} {HOST_PREFIX} log.txt reached its cap of "
                        f"{self.cap:,} bytes: the rest of the output is neither kept nor shown"
                    )
            self.dropped_bytes += len(data)
            return
        self._f.write(data)
        self.written += len(data)
        if self.echo is not None:
            self.echo(data[:-1].decode("utf-8", "replace"))

    def _markers(self, text: str) -> None:
        rest = text[len(MARKER) :]
        if rest.startswith("FATAL ") and not self.started and self.fatal is None:
            self.fatal = rest[len("FATAL ") :]
        elif rest.startswith("running: "):
            self.started = True
        elif rest.startswith("background-processes "):
            with contextlib.suppress(ValueError, IndexError):
                self.background_processes = int(rest.split()[1])

    def _line(self, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace").rstrip("\r")
        if text.startswith(MARKER):
            self._markers(text)
        self._emit(text)

    def feed(self, chunk: bytes) -> None:
        """Output from the sandbox, in arbitrary pieces."""
        if self.truncated and MARKER.encode() not in chunk and b"\n" not in self._buf:
            self.dropped_bytes += len(chunk)  # fast path for a flood past the cap
            return
        self._buf += chunk
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                if len(self._buf) > MAX_LINE:
                    self._line(self._buf[:MAX_LINE])
                    self._buf = self._buf[MAX_LINE:]
                    continue
                break
            self._line(self._buf[:nl])
            self._buf = self._buf[nl + 1 :]

    def note(self, text: str) -> None:
        """A line from posebowl itself (always kept: notes bypass the cap)."""
        for line in text.splitlines() or [""]:
            data = f"{self._ts()} {HOST_PREFIX} {line}\n".encode()
            self._f.write(data)
            self.written += len(data)
            if self.echo is not None:
                self.echo(data[:-1].decode())

    def close(self) -> None:
        if self._buf:
            self._line(self._buf)
            self._buf = b""
        if self.truncated:
            self.note(
                f"log truncated: {self.dropped_bytes:,} more bytes of output were not kept "
                f"(the cap is {self.cap:,} bytes; write less to the log)"
            )
        self._f.close()


# -- the data view ------------------------------------------------------------------------------
@dataclass
class DataView:
    """What the sandbox sees at /code_execution/data (built in a scratch folder)."""

    binds: list[Bind]
    format_csv: Path
    fmt: pd.DataFrame
    not_mounted: list[str] = field(default_factory=list)
    missing_images: int = 0


def check_data_dir(data_dir: Path) -> None:
    if not data_dir.is_dir():
        raise InputError(
            f"The data folder {data_dir} does not exist.",
            "Pass --data DIR holding images/ and submission_format.csv "
            "(make a small one with: posebowl data sample --out data).",
        )
    if not (data_dir / FORMAT_NAME).is_file():
        raise InputError(
            f"The data folder {data_dir} has no {FORMAT_NAME}.",
            "Put the competition's submission_format.csv there (one row per image).",
        )
    if not (data_dir / IMAGES_NAME).is_dir():
        raise InputError(
            f"The data folder {data_dir} has no {IMAGES_NAME}/ folder.",
            "Put the test images in DATA/images/<image_id>.png.",
        )


def prepare_data_view(data_dir: Path, scratch: Path, smoke: int | None = None) -> DataView:
    """Build the read-only data view: submission_format.csv and images/, nothing else.

    With ``smoke``, only the first ``smoke`` rows of the format file and their images.
    """
    check_data_dir(data_dir)
    if smoke is not None and smoke < 1:
        raise InputError(f"--smoke {smoke} is not a positive number of images.", "Use 1 or more.")
    view = scratch / "data"
    (view / IMAGES_NAME).mkdir(parents=True)
    src_fmt, dst_fmt = data_dir / FORMAT_NAME, view / FORMAT_NAME
    if smoke is None:
        shutil.copyfile(src_fmt, dst_fmt)
    else:
        with open(src_fmt, "rb") as f, open(dst_fmt, "wb") as out:
            out.write(f.readline())
            for _ in range(smoke):
                line = f.readline()
                if not line:
                    break
                out.write(line)
    fmt = rules.read_boxes_csv(dst_fmt, role="submission format")
    if list(fmt.columns[:1]) != [rules.INDEX_COLUMN]:
        raise InputError(
            f"{src_fmt} does not start with an {rules.INDEX_COLUMN} column.",
            f"Use the competition's file: {','.join(rules.COLUMNS)}.",
        )
    binds = [Bind(view, DATA)]
    images = data_dir / IMAGES_NAME
    ids = [str(i) for i in fmt[rules.INDEX_COLUMN]]
    present = set(os.listdir(images))
    missing = sum(1 for i in ids if f"{i}.png" not in present)
    if smoke is None:
        binds.append(Bind(images.resolve(), f"{DATA}/{IMAGES_NAME}"))
    else:
        for i in ids:
            name = f"{i}.png"
            if name in present:
                (view / IMAGES_NAME / name).touch()
                binds.append(Bind((images / name).resolve(), f"{DATA}/{IMAGES_NAME}/{name}"))
    hidden = sorted(p.name for p in data_dir.iterdir() if p.name not in (FORMAT_NAME, IMAGES_NAME))
    return DataView(binds, dst_fmt, fmt, hidden, missing)


# -- the verdict --------------------------------------------------------------------------------
@dataclass
class Verdict:
    """The outcome of one run; written as result.json."""

    status: Status
    message: str
    engine: str
    zip_path: Path
    data_dir: Path
    output_dir: Path
    profile: str
    limits: Limits
    smoke: int | None = None
    images: int = 0
    exit_code: int | None = None
    wall_s: float | None = None
    cpu_s: float | None = None
    peak_memory_bytes: int | None = None
    oom_kills: int = 0
    pids_limit_hit: bool = False
    background_processes: int = 0
    enforced: dict[str, Enforcement] = field(default_factory=dict)
    problems: list[Violation] = field(default_factory=list)
    score: float | None = None
    score_error: str | None = None
    labels: Path | None = None
    log_truncated: bool = False
    log_dropped_bytes: int = 0
    started_at: str = ""
    finished_at: str = ""
    notes: list[str] = field(default_factory=list)
    # Set in the sandbox's environment as POSEBOWL_RUN_ID: ties processes and logs to one run.
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def process_exit_code(self) -> int:
        """The exit code ``posebowl run`` returns for this verdict."""
        return self.status.exit_code

    def to_dict(self) -> dict[str, object]:
        return {
            "status": self.status.value,
            "message": self.message,
            "run_id": self.run_id,
            "posebowl_exit_code": self.process_exit_code,
            "exit_code": self.exit_code,
            "score": self.score,
            "score_error": self.score_error,
            "problems": [v.to_dict() for v in self.problems],
            "wall_seconds": None if self.wall_s is None else round(self.wall_s, 3),
            "cpu_seconds": None if self.cpu_s is None else round(self.cpu_s, 3),
            "peak_memory_bytes": self.peak_memory_bytes,
            "oom_kills": self.oom_kills,
            "pids_limit_hit": self.pids_limit_hit,
            "background_processes": self.background_processes,
            "profile": self.profile,
            "limits": self.limits.to_dict(),
            "enforced": {k: v.to_dict() for k, v in sorted(self.enforced.items())},
            "engine": self.engine,
            "zip": str(self.zip_path),
            "data": str(self.data_dir),
            "labels": None if self.labels is None else str(self.labels),
            "smoke": self.smoke,
            "images": self.images,
            "log": LOG_NAME,
            "log_truncated": self.log_truncated,
            "log_dropped_bytes": self.log_dropped_bytes,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "notes": self.notes,
        }


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def _mb(n: int | None) -> str:
    return "?" if n is None else f"{n / (1 << 20):,.0f} MiB"


def classify(result: RunResult, problems: list[Violation], limits: Limits) -> tuple[Status, str]:
    """The status and its one-sentence explanation, from what the engine saw and the checks."""
    if result.timed_out:
        return Status.TIMEOUT, (
            f"main.sh was still running at the time limit of {limits.time_limit_s:g} s and was "
            "stopped (SIGTERM, then SIGKILL)."
        )
    if result.oom_kills:
        return Status.OUT_OF_MEMORY, (
            f"{result.oom_kills} process(es) were killed for using more than the memory limit "
            f"of {_mb(limits.memory_bytes)}."
        )
    if result.exit_code != 0:
        why = ""
        if result.pids_limit_hit:
            why = f" (the limit of {limits.pids} processes and threads was reached)"
        return Status.FAILED, f"main.sh exited with code {result.exit_code}{why}."
    if problems:
        return Status.INVALID_OUTPUT, (
            f"main.sh succeeded but submission.csv fails {len(problems)} check(s): "
            f"{problems[0].message}."
        )
    return Status.SUCCESS, (
        f"main.sh finished in {result.wall_s:.1f} s and submission.csv passed every check."
    )


def check_output(csv: Path, fmt: pd.DataFrame) -> tuple[pd.DataFrame | None, list[Violation]]:
    """Read submission.csv and run the platform's checks on it: (the table, the problems).

    A missing or unreadable file is a violation (and no table).
    """
    if not csv.is_file():
        return None, [Violation("missing", f"{SUBMISSION}/{SUBMISSION_CSV} was not written")]
    try:
        sub = rules.read_boxes_csv(csv, role="submission")
    except InputError as exc:
        return None, [Violation("unreadable", exc.message.rstrip("."))]
    return sub, rules.submission_violations(sub, fmt)


def _score(predicted: pd.DataFrame, fmt: pd.DataFrame, labels: Path) -> float:
    """Score submission.csv against the labels of the images the run saw (in their order)."""
    key = rules.INDEX_COLUMN
    actual = rules.read_boxes_csv(labels, role="labels").drop_duplicates(key)
    merged = fmt[[key]].merge(actual, on=key, how="left", indicator=True)
    lacking = merged.loc[merged["_merge"] == "left_only", key]
    if len(lacking):
        raise InputError(
            f"The labels file {labels} has no row for {len(lacking)} of the images "
            f"(e.g. {lacking.iloc[0]}).",
            "Pass the labels of this data folder.",
        )
    subset = merged.drop(columns="_merge")
    return metric.score_frames(predicted, subset).score


def _write_json(path: Path, data: dict[str, object]) -> None:
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def _scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="posebowl-run-", dir=os.environ.get("POSEBOWL_TMPDIR")))


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
    echo: Callable[[str], None] | None = None,
) -> Verdict:
    """Run ``zip_path`` like the platform; write submission.csv, log.txt and result.json.

    What the submission does is a status in the returned Verdict; problems with our own inputs
    (no zip, no data folder, a broken sandbox) raise PoseBowlError.
    """
    zip_path, data_dir, output_dir = Path(zip_path), Path(data_dir), Path(output_dir)
    if not zip_path.is_file():
        raise InputError(
            f"The submission zip {zip_path} does not exist.",
            "Pack one first: posebowl pack SRC_DIR (or make pack-example).",
        )
    check_data_dir(data_dir)
    if labels is not None and not Path(labels).is_file():
        raise InputError(f"The labels file {labels} does not exist.", "Check the --labels path.")
    output_dir.mkdir(parents=True, exist_ok=True)
    for name in (SUBMISSION_CSV, LOG_NAME, RESULT_NAME):
        (output_dir / name).unlink(missing_ok=True)
    verdict = Verdict(
        status=Status.SUCCESS,
        message="",
        engine=engine.name,
        zip_path=zip_path,
        data_dir=data_dir,
        output_dir=output_dir,
        profile=profile,
        limits=limits,
        smoke=smoke,
        labels=labels,
        started_at=_now(),
    )
    log = RunLog(output_dir / LOG_NAME, limits.log_bytes, echo)
    scratch = _scratch()
    try:
        log.note(f"posebowl run {zip_path} (engine {engine.name}, profile {profile})")
        view = prepare_data_view(data_dir, scratch, smoke)
        verdict.images = len(view.fmt)
        what = f"the first {len(view.fmt)}" if smoke is not None else f"all {len(view.fmt)}"
        log.note(f"data: {data_dir} -> {DATA} (read-only), {what} images")
        if view.missing_images:
            log.note(f"warning: {view.missing_images} images in {FORMAT_NAME} are missing")
        if view.not_mounted:
            log.note(
                f"not mounted from {data_dir} (the platform's data folder holds only "
                f"{IMAGES_NAME}/ and {FORMAT_NAME}): {', '.join(view.not_mounted)}"
            )
        workdir = scratch / "workdir"
        try:
            entries = packing.extract_zip(
                zip_path, workdir, limits.max_zip_entries, limits.max_unzipped_bytes
            )
        except InvalidSubmissionError as exc:
            verdict.status = Status.INVALID_SUBMISSION
            verdict.problems = exc.violations
            verdict.message = f"The zip was not run: {exc.violations[0].message}."
            for v in exc.violations:
                log.note(f"invalid submission: {v.message}")
            return verdict
        size = sum(e.size for e in entries)
        log.note(f"unzipped {len(entries)} files ({size / 1e6:,.1f} MB) into {WORKDIR}")
        out = scratch / "submission"
        out.mkdir()
        request = RunRequest(
            binds=(*view.binds, Bind(workdir, WORKDIR, True), Bind(out, SUBMISSION, True)),
            command=("sh", ENTRYPOINT),
            cwd=WORKDIR,
            limits=limits,
            env={**SANDBOX_ENV, "POSEBOWL_RUN_ID": verdict.run_id},
            runtime=runtime,
        )
        for k, v in _limit_lines(limits):
            log.note(f"limit {k}: {v}")
        result = engine.execute(request, log.feed)
        if log.fatal is not None:
            raise SetupError(
                f"The sandbox failed its own checks before main.sh started: {log.fatal}.",
                "This is a posebowl or host problem, not your submission's: report it.",
            )
        verdict.exit_code = result.exit_code
        verdict.wall_s, verdict.cpu_s = result.wall_s, result.cpu_s
        verdict.peak_memory_bytes = result.peak_memory_bytes
        verdict.oom_kills, verdict.pids_limit_hit = result.oom_kills, result.pids_limit_hit
        verdict.enforced = dict(result.enforced)
        verdict.background_processes = log.background_processes
        verdict.notes = list(result.notes)
        for k, e in sorted(result.enforced.items()):
            if not e.enforced:
                log.note(f"NOT enforced: {k} ({e.how})")
        produced = out / SUBMISSION_CSV
        if produced.is_file() and not produced.is_symlink():
            shutil.copyfile(produced, output_dir / SUBMISSION_CSV)
        problems: list[Violation] = []
        submitted: pd.DataFrame | None = None
        if not (result.timed_out or result.oom_kills or result.exit_code != 0):
            submitted, problems = check_output(output_dir / SUBMISSION_CSV, view.fmt)
        verdict.problems = problems
        verdict.status, verdict.message = classify(result, problems, limits)
        for v in problems:
            log.note(f"check failed: {v.rule}: {v.message}")
        if labels is not None and verdict.status is Status.SUCCESS and submitted is not None:
            try:
                verdict.score = _score(submitted, view.fmt, Path(labels))
                log.note(f"score (mean IoU against {labels}): {verdict.score:.4f}")
            except PoseBowlError as exc:
                verdict.score_error = exc.message
                log.note(f"not scored: {exc.message}")
        return verdict
    finally:
        verdict.finished_at = _now()
        if verdict.message:
            log.note(f"{verdict.status.value}: {verdict.message}")
        log.close()
        verdict.log_truncated, verdict.log_dropped_bytes = log.truncated, log.dropped_bytes
        if verdict.message:
            _write_json(output_dir / RESULT_NAME, verdict.to_dict())
        shutil.rmtree(scratch, ignore_errors=True)


def _limit_lines(limits: Limits) -> list[tuple[str, str]]:
    cpus = limits.effective_cpus()
    return [
        ("memory", _mb(limits.memory_bytes) if limits.memory_bytes else "none"),
        ("cpus", f"{cpus:g}" if cpus else "none"),
        ("pids", str(limits.pids) if limits.pids else "none"),
        ("time", f"{limits.time_limit_s:g} s"),
    ]


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
) -> RunResult:
    """Run ``command`` in the run's sandbox layout (``posebowl shell``, the runtime test).

    The data folder (if given) is mounted read-only as in a run, the zip (if given) unzipped into
    the working directory; the entrypoint's checks run first (the network one only if
    ``network`` is False).
    """
    scratch = _scratch()
    try:
        workdir = scratch / "workdir"
        workdir.mkdir()
        binds: list[Bind] = []
        if data_dir is not None:
            binds += prepare_data_view(Path(data_dir), scratch).binds
        else:
            empty = scratch / "data"
            (empty / IMAGES_NAME).mkdir(parents=True)
            (empty / FORMAT_NAME).write_text(",".join(rules.COLUMNS) + "\n")
            binds.append(Bind(empty, DATA))
        if zip_path is not None:
            packing.extract_zip(
                zip_path, workdir, limits.max_zip_entries, limits.max_unzipped_bytes
            )
        out = scratch / "submission"
        out.mkdir()
        binds += [Bind(workdir, WORKDIR, True), Bind(out, SUBMISSION, True), *extra_binds]
        flag = ("--allow-network",) if network else ()
        request = RunRequest(
            binds=tuple(binds),
            command=("sh", ENTRYPOINT, *flag, *command),
            cwd=WORKDIR,
            limits=limits,
            env=SANDBOX_ENV,
            runtime=runtime,
            network=network,
            interactive=interactive,
        )
        return engine.execute(request, on_output)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
