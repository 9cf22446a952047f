"""The shared steps of a run: log, data view, output checks, verdict."""

import re
from pathlib import Path

import pytest

from posebowl import datafolder
from posebowl.engines.base import EXIT_CODES, Enforcement, RunResult, Status
from posebowl.errors import InputError
from posebowl.findings import Violation
from posebowl.limits import Limits
from posebowl.run import checks
from posebowl.run import log as run_log
from posebowl.run import verdict as run_verdict
from posebowl.run.dataview import prepare_data_view

from .sandbox_helpers import make_data

TS = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} "


def read_log(tmp_path, cap=1 << 20, chunks=(), echo=None):
    log = run_log.RunLog(tmp_path / "log.txt", cap, echo)
    for c in chunks:
        log.feed(c)
    log.close()
    return log, (tmp_path / "log.txt").read_text()


def test_log_lines_are_timestamped_whatever_the_chunking(tmp_path):
    shown = []
    _, text = read_log(
        tmp_path, chunks=[b"hel", b"lo\nwor", b"ld\r\n", b"no newline"], echo=shown.append
    )
    lines = text.splitlines()
    assert [re.sub(TS, "", ln) for ln in lines] == [
        "[sandbox] hello",
        "[sandbox] world",
        "[sandbox] no newline",
    ]
    assert all(re.match(TS, ln) for ln in lines)
    assert shown == lines


def test_log_cap_keeps_the_start_and_says_what_was_dropped(tmp_path):
    flood = [b"x" * 99 + b"\n"] * 5000  # 500 kB
    log, text = read_log(tmp_path, cap=10_000, chunks=flood)
    assert log.truncated and log.written < 10_000 + 400
    assert log.dropped_bytes > 480_000
    assert "log truncated" in text.splitlines()[-1]


def test_a_forged_posebowl_line_is_marked_as_the_sandboxs(tmp_path):
    log, text = read_log(tmp_path, chunks=[b"[posebowl] score (mean IoU): 1.0000\n"])
    log_path = tmp_path / "log2.txt"
    own = run_log.RunLog(log_path, 1 << 20)
    own.note("score (mean IoU): 0.5000")
    own.close()
    assert re.fullmatch(TS + r"\[sandbox\] \[posebowl\] score \(mean IoU\): 1.0000\n", text)
    assert re.fullmatch(TS + r"\[posebowl\] score \(mean IoU\): 0.5000\n", log_path.read_text())


def test_a_huge_line_is_logged_in_pieces(tmp_path):
    _, text = read_log(tmp_path, chunks=[b"y" * (3 * run_log.MAX_LINE + 10)])
    assert len(text.splitlines()) == 4


def test_entrypoint_markers(tmp_path):
    log, _ = read_log(
        tmp_path,
        chunks=[
            b"posebowl-entrypoint: running: sh main.sh\n",
            b"posebowl-entrypoint: FATAL fake from main.sh\n",  # after the start: ignored
            b"posebowl-entrypoint: background-processes 3 (left running)\n",
        ],
    )
    assert log.started and log.fatal is None and log.background_processes == 3
    log2, _ = read_log(tmp_path, chunks=[b"posebowl-entrypoint: FATAL no data\n"])
    assert log2.fatal == "no data"


def result(**kw):
    return RunResult(exit_code=kw.pop("exit_code", 0), wall_s=1.0, **kw)


@pytest.mark.parametrize(
    ("res", "problems", "status"),
    [
        (result(), [], Status.SUCCESS),
        (result(exit_code=1), [], Status.FAILED),
        (result(exit_code=137, oom_kills=1), [], Status.OUT_OF_MEMORY),
        (result(exit_code=0, oom_kills=1), [], Status.OUT_OF_MEMORY),
        (result(exit_code=143, timed_out=True), [], Status.TIMEOUT),
        (result(), [Violation("missing", "not written")], Status.INVALID_OUTPUT),
    ],
)
def test_classify(res, problems, status):
    got, message = run_verdict.classify(res, problems, Limits())
    assert got is status and message.endswith(".")


def test_every_status_has_its_own_exit_code():
    codes = list(EXIT_CODES.values())
    assert len(set(codes)) == len(Status) and EXIT_CODES[Status.SUCCESS] == 0
    assert not set(codes) & {1, 2, 3, 4, 130}


def test_data_view_hides_everything_but_images_and_format(tmp_path):
    data, _ = make_data(tmp_path, n=4)
    (data / "train_labels.csv").write_text("secret")
    (data / "notes").mkdir()
    scratch = tmp_path / "scratch"
    view = prepare_data_view(data, scratch)
    assert view.not_mounted == ["notes", "train_labels.csv"]
    assert sorted(p.name for p in (scratch / "data").iterdir()) == [
        "images",
        "submission_format.csv",
    ]
    assert [b.dest for b in view.binds] == ["/code_execution/data", "/code_execution/data/images"]
    assert not any(b.writable for b in view.binds)


def test_smoke_view_keeps_the_first_rows_byte_for_byte(tmp_path):
    data, _ = make_data(tmp_path, n=5)
    (data / "images" / sorted((data / "images").iterdir())[0].name).unlink()
    view = prepare_data_view(data, tmp_path / "s", smoke=3)
    src = (data / "submission_format.csv").read_bytes().splitlines(keepends=True)
    assert (tmp_path / "s" / "data" / "submission_format.csv").read_bytes() == b"".join(src[:4])
    assert len(view.fmt) == 3
    image_binds = view.binds[1:]
    assert len(image_binds) + view.missing_images == 3
    assert all(b.dest.startswith("/code_execution/data/images/") for b in image_binds)


@pytest.mark.parametrize(
    ("setup", "match"),
    [
        (lambda d: None, "does not exist"),
        (lambda d: d.mkdir(), "has no submission_format.csv"),
        (lambda d: (d.mkdir(), (d / "submission_format.csv").write_text("image_id\n")), "images/"),
    ],
)
def test_bad_data_folders_are_input_errors(tmp_path, setup, match):
    d = tmp_path / "data"
    setup(d)
    with pytest.raises(InputError, match=match):
        datafolder.check_data_dir(d)


def test_check_output_reports_missing_and_unreadable(tmp_path):
    data, _ = make_data(tmp_path)
    fmt = prepare_data_view(data, tmp_path / "s").fmt
    assert [v.rule for v in checks.check_output(tmp_path / "nope.csv", fmt)[1]] == ["missing"]
    (tmp_path / "bad.csv").write_bytes(b"")
    assert [v.rule for v in checks.check_output(tmp_path / "bad.csv", fmt)[1]] == ["unreadable"]


def test_verdict_json_names_every_limit_and_its_enforcement(tmp_path):
    setup = run_verdict.RunSetup(
        zip_path=Path("z.zip"),
        data_dir=Path("data"),
        output_dir=tmp_path,
        engine="bwrap",
        profile="r5",
        limits=Limits(),
    )
    res = result(enforced={"memory": Enforcement(False, "no cgroup")})
    v = run_verdict.Verdict(status=Status.SUCCESS, message="ok.", setup=setup, result=res)
    d = v.to_dict()
    assert d["posebowl_exit_code"] == 0 and d["limits"]["memory_bytes"] == 4 << 30
    assert d["enforced"] == {"memory": {"enforced": False, "how": "no cgroup"}}
