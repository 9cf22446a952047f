"""The docker engine: its command line (pure functions), then the real thing: a real Docker
daemon, the slim runtime image and the posebowl CLI, as a user runs them (marked docker; they
skip only with the reason no daemon or image can be used here, see tests/sandbox_helpers.py).

The hostile suite, the runner's fault tests and the secrets tests run through this engine too
(parametrised over every healthy engine). A fake ``docker`` (tests/fake_docker.py) is used only
for what a real daemon cannot show on our machines: Docker Desktop (Windows containers, a daemon
in a VM whose cgroups cannot be read), an old daemon that does not flag OOMKilled, a daemon that
hangs or dies mid-run, and a registry to pull from."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from posebowl import engines, exitcodes, runtimes, sandbox
from posebowl.engines import cgroups
from posebowl.engines.base import Bind, RunRequest, Status
from posebowl.engines.docker import DaemonInfo, DockerEngine, daemon
from posebowl.engines.docker import argv as docker_argv
from posebowl.engines.docker import engine as docker_engine
from posebowl.engines.docker import image as docker_image
from posebowl.errors import SetupError
from posebowl.limits import GIB, MIB, Limits
from posebowl.run import run_submission
from posebowl.sandbox import DATA, ENTRYPOINT, HOME, SUBMISSION, WORKDIR

from . import fake_docker
from .sandbox_helpers import (
    WRITE_VALID,
    containers_of,
    daemon_problem,
    docker_problem,
    docker_test_image,
    make_data,
    make_engine,
    make_zip,
    posebowl,
    stand_in_problem,
)

ROOT = Path(__file__).resolve().parents[1]
LOCK_SHA = runtimes.spec("slim").lock_sha256()
NAME = re.compile(r"^posebowl-[0-9a-f]{12}$")

F = TypeVar("F", bound=Callable[..., Any])


def _needs(problem: str | None) -> Callable[[F], F]:
    def mark(fn: F) -> F:
        return pytest.mark.docker(pytest.mark.skipif(problem is not None, reason=f"{problem}")(fn))

    return mark


#: a real daemon and the runtime image from the current lock
real = _needs(docker_problem())
#: a real daemon (no image needed)
real_daemon = _needs(daemon_problem())
#: a real daemon and the stand-in base image (scripts/docker-base.sh)
real_stand_in = _needs(stand_in_problem())


def quick(**changes: object) -> Limits:
    base = Limits(time_limit_s=30.0, kill_grace_s=1.0, memory_bytes=512 * MIB, pids=256, cpus=1.5)
    return base.with_overrides(**changes)


def run(
    tmp_path: Path,
    engine: DockerEngine,
    limits: Limits | None = None,
    main: str = WRITE_VALID,
    **kw: object,
):
    data, labels = make_data(tmp_path)
    z = make_zip(tmp_path / "submission.zip", {"main.sh": main})
    out = tmp_path / "out"
    verdict = run_submission(z, data, out, engine, limits or quick(), None, profile="test", **kw)
    result = json.loads((out / "result.json").read_text())
    return verdict, result, (out / "log.txt").read_text(), out


def docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


def wait_for(check: Callable[[], object], wait_s: float = 15.0) -> object:
    """``check()``'s first true value within ``wait_s`` (else its last, false one)."""
    deadline = time.monotonic() + wait_s
    while not (got := check()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return got


def no_daemon_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The real docker CLI pointed at a socket where no daemon listens."""
    return {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-daemon.sock", **extra}


def no_bwrap_path(tmp_path: Path) -> str:
    """A PATH with the real docker and this Python only: no bwrap, so auto must pick docker."""
    bin_dir = tmp_path / "only-docker"
    bin_dir.mkdir(exist_ok=True)
    real_docker = shutil.which("docker")
    assert real_docker
    (bin_dir / "docker").symlink_to(real_docker)
    return f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}"


# -- the command line (pure) --------------------------------------------------------------------
def request(tmp_path: Path, **kw: object) -> RunRequest:
    binds = (
        Bind(tmp_path / "view", DATA),
        Bind(tmp_path / "images", f"{DATA}/images"),
        Bind(tmp_path / "work", WORKDIR, True),
        Bind(tmp_path / "sub", SUBMISSION, True),
    )
    fields: dict[str, object] = {
        "binds": binds,
        "command": ("sh", ENTRYPOINT),
        "cwd": WORKDIR,
        "limits": Limits(memory_bytes=4 * GIB, cpus=4.0, pids=1024, shm_bytes=GIB),
        "env": {"HOME": HOME, "LANG": "C.UTF-8"},
    }
    fields.update(kw)
    return RunRequest(**fields)  # type: ignore[arg-type]


def test_run_argv_is_exactly_the_platform_command(tmp_path):
    info = DaemonInfo("27.0", ncpu=2)
    argv = docker_argv.run_argv(
        "docker", "img:1", request(tmp_path), "posebowl-abc", info, (1234, 5678), "host:42"
    )
    entry = sandbox.entrypoint_file()
    assert argv == [
        "docker", "run", "--name", "posebowl-abc", "--label", "org.posebowl.owner=host:42",
        "--platform", "linux/amd64", "--pull", "never", "--log-driver", "none",
        "--init", "--hostname", "posebowl",
        "--network", "none",
        "--user", "1234:5678",
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--read-only",
        "--tmpfs", f"/tmp:rw,exec,nosuid,size={4 * GIB},mode=1777",
        "--tmpfs", f"{HOME}:rw,exec,nosuid,size={4 * GIB},uid=1234,gid=5678,mode=0755",
        "--shm-size", str(GIB),
        "--memory", str(4 * GIB), "--memory-swap", str(4 * GIB),
        "--cpus", "2",  # 4 asked, the daemon has 2
        "--pids-limit", "1024",
        "--mount", f"type=bind,source={entry},target={ENTRYPOINT},readonly",
        "--mount", f"type=bind,source={sandbox.confine_file()},target={sandbox.CONFINE},readonly",
        "--mount", f"type=bind,source={tmp_path / 'view'},target={DATA},readonly",
        "--mount", f"type=bind,source={tmp_path / 'images'},target={DATA}/images,readonly",
        "--mount", f"type=bind,source={tmp_path / 'work'},target={WORKDIR}",
        "--mount", f"type=bind,source={tmp_path / 'sub'},target={SUBMISSION}",
        "--env", f"HOME={HOME}", "--env", "LANG=C.UTF-8", "--env", "TINI_KILL_PROCESS_GROUP=1",
        "--env", "POSEBOWL_HOLD_STDIN=1",  # the entrypoint waits for our go: cgroup read first
        "--workdir", WORKDIR, "--interactive",
        "--entrypoint", "sh", "img:1", ENTRYPOINT,
    ]  # fmt: skip
    assert "PATH" not in " ".join(argv)  # the image's own PATH (and python) are used


def test_unlimited_and_shell_requests(tmp_path):
    info = DaemonInfo("27.0", ncpu=8)
    req = request(
        tmp_path,
        limits=Limits(memory_bytes=None, cpus=None, pids=None),
        network=True,
        interactive=True,
        command=("sh", ENTRYPOINT, "--allow-network", "bash", "-i"),
    )
    argv = docker_argv.run_argv("docker", "img", req, "n", info, (1000, 1000), "o", tty=True)
    for flag in ("--network", "--memory", "--memory-swap", "--cpus", "--pids-limit"):
        assert flag not in argv
    assert "POSEBOWL_HOLD_STDIN=1" not in argv  # the terminal is the shell's
    assert argv[-8:] == [
        "--interactive", "--tty", "--entrypoint", "sh", "img", ENTRYPOINT, "--allow-network",
        "bash", "-i",
    ][-8:]  # fmt: skip
    assert "--shm-size" in argv and argv[argv.index("--shm-size") + 1] == str(8 * GIB)


def test_mount_fields_with_commas_are_quoted():
    arg = docker_argv.mount_arg(Bind(Path("/data/a,b"), "/code_execution/data"))
    assert arg == 'type=bind,"source=/data/a,b",target=/code_execution/data,readonly'


@pytest.mark.parametrize(
    ("info", "uid", "want"),
    [
        (DaemonInfo("1"), 1234, (1234, 1234)),
        (DaemonInfo("1"), 0, (1000, 1000)),  # root on the host: the image's unprivileged user
        (DaemonInfo("1", rootless=True), 1234, (0, 0)),  # rootless: root inside is the user
    ],
)
def test_the_run_user(info, uid, want):
    assert docker_argv.run_user(info, uid, uid) == want


def test_what_the_daemon_cannot_limit_is_not_enforced(tmp_path):
    info = DaemonInfo("1", ncpu=2, memory_limit=False, cpu_quota=False, pids_limit=False)
    enforced = docker_argv.enforcement(request(tmp_path), info)
    assert [k for k, e in enforced.items() if not e.enforced] == ["memory", "cpus", "pids"]
    assert "MemoryLimit" in enforced["memory"].how and "PidsLimit" in enforced["pids"].how
    swap = docker_argv.enforcement(request(tmp_path), DaemonInfo("1", swap_limit=False))
    assert swap["memory"].enforced and "swap may stretch it" in swap["memory"].how


def test_root_hands_the_writable_folders_to_the_run_user(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(os, "chown", lambda p, u, g, **kw: seen.append((str(p), u, g)))
    (tmp_path / "work" / "sub").mkdir(parents=True)
    (tmp_path / "work" / "sub" / "main.sh").write_text("")
    (tmp_path / "ro").mkdir()
    docker_engine._hand_over(
        [Bind(tmp_path / "work", WORKDIR, True), Bind(tmp_path / "ro", DATA)], (1000, 1000)
    )
    paths = {p for p, *_ in seen}
    assert paths == {
        str(tmp_path / "work"),
        str(tmp_path / "work/sub"),
        str(tmp_path / "work/sub/main.sh"),
    }
    assert {(u, g) for _, u, g in seen} == {(1000, 1000)}


@pytest.mark.parametrize(
    ("image", "runtime", "base", "want"),
    [
        ("posebowl-runtime:slim", "slim", None, "posebowl runtime build --engine docker "
         "--runtime slim"),
        ("mine:2", "official", "posebowl-base:bookworm-py3.11", "posebowl runtime build --engine "
         "docker --runtime official --image mine:2 --base-image posebowl-base:bookworm-py3.11"),
        ("x:1", "slim", docker_image.DEFAULT_BASE_IMAGE, "posebowl runtime build --engine docker "
         "--runtime slim --image x:1"),
    ],
)  # fmt: skip
def test_the_rebuild_command_rebuilds_that_image_on_its_base(image, runtime, base, want):
    assert docker_image.rebuild_command(image, runtime, base) == want


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker CLI installed")
def test_the_real_docker_cli_accepts_every_flag(tmp_path):
    """The real CLI parses the flags before it needs a daemon: a syntax error would show here."""
    for d in ("view", "images", "work", "sub"):
        (tmp_path / d).mkdir()
    info = DaemonInfo("27.0", ncpu=2)
    argv = docker_argv.run_argv(
        shutil.which("docker") or "docker",
        "posebowl-runtime:slim",
        request(tmp_path),
        "posebowl-abc",
        info,
        (1234, 1234),
        "host:1",
    )
    proc = subprocess.run(argv, capture_output=True, text=True, env=no_daemon_env(tmp_path))
    assert proc.returncode == 125
    assert "invalid argument" not in proc.stderr and "unknown flag" not in proc.stderr
    assert "Cannot connect to the Docker daemon" in proc.stderr or "no-daemon.sock" in proc.stderr


# -- real runs through the shared runner --------------------------------------------------------
@pytest.fixture
def engine() -> DockerEngine:  # (this module's: docker only; conftest's gives every engine)
    eng = make_engine("docker")
    assert isinstance(eng, DockerEngine)
    return eng


@real
def test_success_scores_reads_the_cgroup_and_removes_the_container(tmp_path, engine):
    verdict, result, log, out = run(tmp_path, engine, labels=tmp_path / "labels/test_labels.csv")
    assert verdict.status is Status.SUCCESS, log
    assert result["engine"] == "docker" and result["score"] > 0.5
    assert result["runtime"] == {"name": f"image {engine.image}", "lock_sha256": LOCK_SHA}
    assert result["peak_memory_bytes"] > 1 << 20 and result["cpu_seconds"] > 0
    assert result["enforced"]["memory"]["enforced"]
    assert "--memory-swap" in result["enforced"]["memory"]["how"]
    assert result["notes"] == []
    assert (out / "submission.csv").is_file()
    assert containers_of(os.getpid()) == []  # removed once the run had read it


@real
def test_a_run_asks_the_daemon_once_and_removes_the_container_in_the_background(
    tmp_path, engine, monkeypatch
):
    # the image is checked once per engine; during the run one `docker inspect` finds the
    # cgroup; the end is read from the held container's cgroup (no second inspect) and the
    # guard removes it after the run returned
    assert engine.health_check() is None
    engine.check_image()
    calls: list[str] = []
    real_cli = daemon.cli

    def counting(docker, *args, **kw):
        calls.append(args[0] if args[0] != "image" else "image " + args[1])
        return real_cli(docker, *args, **kw)

    monkeypatch.setattr(daemon, "cli", counting)
    verdict, result, log, _ = run(tmp_path, engine)
    assert verdict.status is Status.SUCCESS, log
    assert calls == ["inspect"]
    assert result["cpu_seconds"] > 0 and result["peak_memory_bytes"] > 0
    assert containers_of(os.getpid()) == []


FORGED = "echo 'posebowl-entrypoint: exit-code 0'\n"


@real
@pytest.mark.parametrize(
    ("main", "status", "code"),
    [
        (FORGED + "sleep 1\nexit 3\n", Status.FAILED, 3),
        (FORGED + "python -c 'b = [bytearray(32 << 20) for _ in range(64)]' || true\n"
         + WRITE_VALID, Status.OUT_OF_MEMORY, 0),
    ],
    ids=["exit-code", "oom-after"],
)  # fmt: skip
def test_a_forged_last_line_changes_no_verdict(tmp_path, engine, main, status, code):
    verdict, result, log, _ = run(tmp_path, engine, quick(memory_bytes=256 * MIB), main=main)
    assert verdict.status is status, log
    assert result["exit_code"] == code
    assert result["cpu_seconds"] > 0


@real
def test_ctrl_c_kills_the_container_and_removes_it(tmp_path, engine):
    data, _ = make_data(tmp_path)
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "main.sh").write_text("echo started; sleep 1000\n")
    (tmp_path / "sub").mkdir()
    req = request(
        tmp_path,
        binds=(
            Bind(data, DATA),
            Bind(tmp_path / "work", WORKDIR, True),
            Bind(tmp_path / "sub", SUBMISSION, True),
        ),
        limits=quick(),
        env=sandbox.ENV,
    )
    seen: list[bytes] = []

    def interrupt(chunk: bytes) -> None:
        seen.append(chunk)
        if b"started" in b"".join(seen):
            raise KeyboardInterrupt

    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        engine.execute(req, interrupt)
    assert time.monotonic() - t0 < 30
    assert containers_of(os.getpid()) == []


@real
def test_a_container_that_never_starts_is_a_setup_error(tmp_path, engine):
    # Docker refuses a bind mount whose source does not exist before anything starts (as
    # Docker Desktop refuses a folder it does not share)
    data, _ = make_data(tmp_path)
    req = request(
        tmp_path,
        binds=(Bind(data, DATA), Bind(tmp_path / "no-such-folder", WORKDIR, True)),
        limits=quick(),
        env=sandbox.ENV,
    )
    with pytest.raises(SetupError, match="could not start the container") as exc:
        engine.execute(req, None)
    assert "no-such-folder" in exc.value.message  # Docker's own words
    assert "File sharing" in (exc.value.fix or "")
    assert containers_of(os.getpid()) == []


@real_daemon
def test_a_missing_image_says_how_to_build_or_pull(tmp_path):
    engine = DockerEngine(image=f"posebowl-test-no-such-image:{os.getpid()}")
    with pytest.raises(SetupError, match="not on this machine") as exc:
        run(tmp_path, engine)
    assert "ENGINE=docker make build" in (exc.value.fix or "")
    assert containers_of(os.getpid()) == []


# -- any image: one posebowl did not build, one it built from another lock ----------------------
@pytest.fixture
def foreign_image() -> Iterator[str]:
    """An image with a python but none of posebowl's lock labels (the stand-in base, tagged
    under a name of its own, as a user's image or the official one after make pull)."""
    name = f"posebowl-test-someone/else:{os.getpid()}"
    tagged = docker("tag", docker_image.STAND_IN_BASE_IMAGE, name)
    assert tagged.returncode == 0, tagged.stderr
    yield name
    docker("image", "rm", name)


@pytest.fixture
def other_lock_image() -> Iterator[str]:
    """An image labelled as posebowl's slim runtime built from another lock."""
    name = f"posebowl-test-stale:{os.getpid()}"
    dockerfile = (
        f"FROM {docker_image.STAND_IN_BASE_IMAGE}\n"
        f'LABEL {docker_image.LOCK_LABEL}="{"0" * 64}" {docker_image.RUNTIME_LABEL}="slim" '
        f'{docker_image.BASE_LABEL}="{docker_image.STAND_IN_BASE_IMAGE}"\n'
    )
    built = subprocess.run(
        ["docker", "build", "--network", "none", "--tag", name, "-"],
        input=dockerfile,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    yield name
    docker("image", "rm", name)


@real_stand_in
def test_an_image_posebowl_did_not_build_runs_with_its_lock_unknown(tmp_path, foreign_image):
    data, labels = make_data(tmp_path)
    z = make_zip(tmp_path / "submission.zip", {"main.sh": "command -v python\n" + WRITE_VALID})
    args = ["run", z, "--data", data, "--labels", labels, "--image", foreign_image, "--json", "-q"]
    res = posebowl(*args, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    result = json.loads(res.stdout)
    assert result["status"] == "SUCCESS" and result["engine"] == "docker"  # --image: docker
    assert result["runtime"] == {"name": f"image {foreign_image}", "lock_sha256": None}
    assert any("not built by posebowl" in n and "lock is unknown" in n for n in result["notes"])
    assert result["score"] > 0.5 and result["cpu_seconds"] > 0
    log = (tmp_path / "log.txt").read_text()
    assert f"runtime: image {foreign_image}, lock unknown (not built by posebowl)" in log
    assert "[sandbox] /usr/bin/python" in log  # the image's own python
    assert "posebowl-entrypoint: confinement landlock" in log  # posebowl's scripts, mounted
    assert "slim runtime" not in log  # (no slim notice: it is not posebowl's slim)


@real_stand_in
def test_make_test_submission_runs_a_foreign_image_named_with_image(tmp_path, foreign_image):
    data, _ = make_data(tmp_path)
    (tmp_path / "submission").mkdir()
    make_zip(tmp_path / "submission" / "submission.zip", {"main.sh": WRITE_VALID})
    stamp = tmp_path / "installed"  # newer than pyproject.toml: make installs nothing
    stamp.touch()
    res = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "test-submission", f"IMAGE={foreign_image}",
         f"SUBMISSION_ZIP={tmp_path / 'submission' / 'submission.zip'}", f"DATA_DIR={data}",
         f"STAMP={stamp}", f"BIN={Path(sys.executable).parent}"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"image {foreign_image} was not built by posebowl" in res.stdout + res.stderr
    result = json.loads((tmp_path / "submission" / "result.json").read_text())
    assert result["status"] == "SUCCESS" and result["runtime"]["lock_sha256"] is None


@real_stand_in
def test_a_posebowl_image_from_another_lock_is_refused_with_the_rebuild_command(
    tmp_path, other_lock_image
):
    data, _ = make_data(tmp_path)
    z = make_zip(tmp_path / "submission.zip", {"main.sh": WRITE_VALID})
    res = posebowl("run", z, "--data", data, "--image", other_lock_image, cwd=ROOT)
    assert res.returncode == 4, res.stdout + res.stderr
    text = " ".join(res.stderr.split())
    assert f"{other_lock_image} was built by posebowl from another lock of the slim runtime" in text
    want = (
        f"posebowl runtime build --engine docker --runtime slim --image {other_lock_image} "
        f"--base-image {docker_image.STAND_IN_BASE_IMAGE}"
    )
    assert want in text
    assert containers_of(os.getpid()) == [] and not (tmp_path / "result.json").exists()


@real
def test_a_runtime_image_for_another_runtime_is_refused(tmp_path):
    data, _ = make_data(tmp_path)
    z = make_zip(tmp_path / "submission.zip", {"main.sh": WRITE_VALID})
    args = ["run", z, "--data", data, "--image", docker_test_image(), "--runtime", "official"]
    res = posebowl(*args, cwd=ROOT)
    assert res.returncode == 4
    text = " ".join(res.stderr.split())
    assert "holds posebowl's slim runtime, not the official runtime" in text
    assert "--runtime slim" in text


@real_stand_in
def test_a_build_never_takes_the_name_of_an_image_posebowl_did_not_build(foreign_image):
    build = ["runtime", "build", "--engine", "docker", "--image", foreign_image]
    build += ["--base-image", docker_image.STAND_IN_BASE_IMAGE]
    res = posebowl(*build, cwd=ROOT)
    assert res.returncode == 0, res.stderr  # (make build IMAGE=... before a run: nothing to do)
    assert "was not built by posebowl: nothing to build" in " ".join(res.stdout.split())
    res = posebowl(*build, "--force", cwd=ROOT)
    assert res.returncode == 4
    assert "was not built by posebowl: a build would take its name" in " ".join(res.stderr.split())
    labels = docker_image.image_labels("docker", foreign_image)
    assert labels is not None and docker_image.LOCK_LABEL not in labels  # untouched


@real_stand_in
def test_runtime_test_runs_in_a_foreign_image_with_a_python(tmp_path, foreign_image):
    # the stand-in has no pytest: the runtime's tests cannot run, and the failure says so
    res = posebowl("runtime", "test", "--image", foreign_image, cwd=ROOT)
    assert res.returncode == 1
    assert "No module named pytest" in res.stdout


# -- health and the choice of engine ------------------------------------------------------------
class Broken:
    name = "bwrap"
    needs_runtime_venv = True

    def health_check(self):
        return "bubblewrap is broken on purpose."

    def select_runtime(self, name, lock_sha256):
        pass

    def execute(self, request, on_output):  # pragma: no cover - never reached
        raise AssertionError


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker CLI installed")
def test_no_daemon_is_the_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-daemon.sock")
    reason = DockerEngine().health_check()
    assert reason is not None and "Cannot connect to the Docker daemon" in reason
    assert "systemctl start docker" in reason
    with pytest.raises(SetupError, match="does not answer"):
        engines.select("docker")
    monkeypatch.setitem(engines.ENGINES, "bwrap", Broken)
    with pytest.raises(SetupError) as exc:
        engines.select("auto")
    msg = exc.value.message
    assert "bwrap: bubblewrap is broken on purpose." in msg
    assert "docker: The Docker daemon does not answer" in msg


def test_no_docker_command(tmp_path):
    reason = DockerEngine(docker=str(tmp_path / "no-docker")).health_check()
    assert reason is not None and "not installed" in reason


@real_daemon
def test_auto_takes_docker_when_bwrap_fails_and_the_daemon_answers(monkeypatch):
    monkeypatch.setitem(engines.ENGINES, "bwrap", Broken)
    chosen = engines.select("auto")
    assert isinstance(chosen, DockerEngine) and chosen.info is not None
    assert chosen.info.os_type == "linux" and (chosen.info.ncpu or 0) >= 1


# -- the command line, for real -----------------------------------------------------------------
@real
@pytest.mark.parametrize("how", ["flag", "env", "auto"])
def test_cli_run_with_docker(tmp_path, how):
    data, labels = make_data(tmp_path)
    z = make_zip(tmp_path / "submission.zip", {"main.sh": WRITE_VALID})
    args = ["run", z, "--data", data, "--labels", labels, "--json", "-q"]
    env = {**os.environ, "POSEBOWL_IMAGE": docker_test_image()}
    if how == "flag":
        args += ["--engine", "docker"]
    if how == "env":
        env["POSEBOWL_ENGINE"] = "docker"
    if how == "auto":
        env["PATH"] = no_bwrap_path(tmp_path)
    res = posebowl(*args, env=env, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    result = json.loads(res.stdout)
    assert result["status"] == "SUCCESS" and result["engine"] == "docker"
    assert result["runtime"]["lock_sha256"] == LOCK_SHA


@real
def test_cli_run_status_exit_codes_with_docker(tmp_path):
    data, _ = make_data(tmp_path)
    hog = "python -c 'b = [bytearray(32 << 20) for _ in range(64)]'\n"
    for main, status in [("exit 3\n", Status.FAILED), (hog, Status.OUT_OF_MEMORY)]:
        z = make_zip(tmp_path / "submission.zip", {"main.sh": main})
        args = ["run", z, "--data", data, "--engine", "docker", "--memory", "256m", "-q"]
        res = posebowl(*args, "--image", docker_test_image(), cwd=ROOT)
        assert res.returncode == status.exit_code, res.stderr
        assert json.loads((tmp_path / "result.json").read_text())["status"] == status.value


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker CLI installed")
def test_cli_auto_without_any_engine_says_why_for_each(tmp_path):
    data, _ = make_data(tmp_path)
    z = make_zip(tmp_path / "submission.zip", {"main.sh": "echo hi\n"})
    env = no_daemon_env(tmp_path, PATH=no_bwrap_path(tmp_path))
    res = posebowl("run", z, "--data", data, env=env, cwd=ROOT)
    assert res.returncode == 4
    text = " ".join(res.stderr.split())
    assert "bwrap: bubblewrap (bwrap) is not installed" in text
    assert "docker: The Docker daemon does not answer" in text
    assert "Cannot connect to the Docker daemon" in text


def test_cli_image_with_the_bwrap_engine_is_a_usage_error(tmp_path):
    data, _ = make_data(tmp_path)
    z = make_zip(tmp_path / "submission.zip", {"main.sh": "echo hi\n"})
    res = posebowl("run", z, "--data", data, "--engine", "bwrap", "--image", "x:1", cwd=ROOT)
    assert res.returncode == exitcodes.INPUT, res.stderr
    assert "--image names a Docker image" in " ".join(res.stderr.split())


@real
def test_cli_shell_with_docker(tmp_path):
    image = ["--image", docker_test_image()]
    res = posebowl("shell", *image, "--", "sh", "-c", "cat /proc/net/dev; exit 3", cwd=ROOT)
    assert res.returncode == 3, res.stderr
    assert "eth0" in res.stdout  # the shell has the network (Docker's default bridge)
    res = posebowl("shell", *image, "--no-network", "--", "cat", "/proc/net/dev", cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert re.findall(r"^\s*(\w+):\s+\d", res.stdout, re.M) == ["lo"]
    assert containers_of(os.getpid()) == []


@real
def test_cli_runtime_test_with_docker(tmp_path):
    res = posebowl("runtime", "test", "--engine", "docker", "--image", docker_test_image())
    assert res.returncode == 0, res.stdout + res.stderr
    assert re.search(r"\d+ passed", res.stdout)
    assert "every package of the slim runtime imports" in res.stdout


@real
def test_cli_build_of_a_current_image_does_nothing(tmp_path):
    labels = docker_image.image_labels("docker", docker_test_image()) or {}
    base = labels.get(docker_image.BASE_LABEL, docker_image.STAND_IN_BASE_IMAGE)
    stamp = tmp_path / "installed"  # newer than pyproject.toml: make installs nothing
    stamp.touch()
    t0 = time.monotonic()
    res = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "build", "ENGINE=docker", f"IMAGE={docker_test_image()}",
         f"STAMP={stamp}", f"BIN={Path(sys.executable).parent}"],
        capture_output=True, text=True, env={**os.environ, "POSEBOWL_BASE_IMAGE": base},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "up to date (same lock, base and Dockerfile)" in res.stdout
    assert time.monotonic() - t0 < 60  # nothing downloaded, nothing built


@real_daemon
def test_cli_build_failure_says_what_to_do_offline(tmp_path):
    image = f"posebowl-test-nobase:{os.getpid()}"
    res = posebowl(
        "runtime", "build", "--engine", "docker", "--image", image, "--base-image",
        "registry.example.invalid/python:3.11", cwd=ROOT, timeout=900,
    )  # fmt: skip
    docker("image", "rm", image)
    assert res.returncode == 4, res.stdout + res.stderr
    text = " ".join(res.stderr.split())
    assert "docker build of" in text and "failed" in text
    assert "scripts/docker-base.sh" in text


@real_daemon
def test_cli_pull_without_a_registry_says_what_to_do_offline():
    res = posebowl("runtime", "pull", "--image", "registry.example.invalid/pb:1", cwd=ROOT)
    assert res.returncode == 4
    text = " ".join(res.stderr.split())
    assert "docker pull registry.example.invalid/pb:1 failed" in text and "docker load" in text


def test_cli_pull_of_the_local_name_explains():
    res = posebowl("runtime", "pull", cwd=ROOT)
    assert res.returncode == 4 and "publishes none" in res.stderr


@real
def test_cli_report_after_a_docker_run(tmp_path):
    data, labels = make_data(tmp_path, labels_dir="data_labels")
    (tmp_path / "sub").mkdir()
    z = make_zip(tmp_path / "sub" / "submission.zip", {"main.sh": WRITE_VALID})
    res = posebowl(
        "run", z, "--data", data, "--labels", labels, "--engine", "docker", "--image",
        docker_test_image(), "--report", "--json", "-q", cwd=ROOT,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)["report"]
    assert report["path"] == str(tmp_path / "sub" / "report" / "index.html")
    assert Path(report["path"]).is_file() and report["scored"] == 3


# -- a fake docker: only what a real daemon cannot show here ------------------------------------
class Fake:
    """The fake docker on PATH, its state folder and what it was asked."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.bin = tmp_path / "fakebin"
        self.exe = fake_docker.install(self.bin)
        self.state = tmp_path / "fake-state"
        self.state.mkdir()
        self.monkeypatch = monkeypatch
        monkeypatch.setenv("FAKE_DOCKER_STATE", str(self.state))
        monkeypatch.setenv("FAKE_DOCKER_LOCK", LOCK_SHA)
        monkeypatch.setenv("PATH", f"{self.bin}{os.pathsep}{os.environ['PATH']}")
        self.mode("success")

    def mode(self, mode: str) -> None:
        self.monkeypatch.setenv("FAKE_DOCKER_MODE", mode)

    def calls(self, verb: str | None = None) -> list[list[str]]:
        return [c for c in fake_docker.calls(self.state) if verb is None or c[:1] == [verb]]

    def engine(self) -> DockerEngine:
        eng = DockerEngine(docker=str(self.exe))
        eng.select_runtime("slim", LOCK_SHA)
        return eng


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Fake:
    return Fake(tmp_path, monkeypatch)


def test_docker_desktop_with_windows_containers_says_how_to_switch(fake):
    fake.mode("windows-containers")
    reason = fake.engine().health_check()
    assert reason is not None and "Switch Docker Desktop to Linux containers" in reason


def test_a_daemon_whose_cgroups_cannot_be_read_reports_usage_unknown(tmp_path, fake):
    # (Docker Desktop: the daemon and its cgroups live in a VM)
    verdict, result, _, _ = run(tmp_path, fake.engine())
    assert verdict.status is Status.SUCCESS
    assert result["peak_memory_bytes"] is None and result["cpu_seconds"] is None
    assert any("peak_memory_bytes unknown" in n for n in result["notes"])
    assert wait_for(lambda: fake.calls("rm"))  # (removed in the background)


def fake_cgroup(tmp_path: Path, peak: int) -> cgroups.Cgroup:
    d = tmp_path / "cg"
    d.mkdir(exist_ok=True)
    (d / "memory.max_usage_in_bytes").write_text(f"{peak}\n")
    (d / "memory.oom_control").write_text("oom_kill 0\n")
    (d / "cpuacct.usage").write_text("2500000000\n")
    return cgroups.Cgroup(version=1, dirs={"memory": d, "cpuacct": d})


@pytest.mark.parametrize(("share", "status"), [(0.97, Status.OUT_OF_MEMORY), (0.3, Status.FAILED)])
def test_exit_137_counts_as_oom_only_with_memory_evidence(
    tmp_path, fake, monkeypatch, share, status
):
    # (an old daemon that does not set OOMKilled, and a cgroup without an oom_kill count)
    fake.mode("oom-unflagged")
    limit = 512 * MIB
    seen = []

    def of_process(pid, must_contain, *a, **kw):
        seen.append((pid, must_contain))
        return fake_cgroup(tmp_path, int(share * limit))

    monkeypatch.setattr(cgroups, "of_process", of_process)
    verdict, result, _, _ = run(tmp_path, fake.engine())
    assert seen and seen[0][1] == fake_docker.CONTAINER_ID
    assert verdict.status is status, result
    assert result["peak_memory_bytes"] == int(share * limit)
    assert result["cpu_seconds"] == 2.5
    assert any("inferred" in n for n in result["notes"]) == (status is Status.OUT_OF_MEMORY)


def test_a_hung_daemon_gets_stop_then_kill_then_the_client_is_let_go(tmp_path, fake, monkeypatch):
    fake.mode("hung")
    monkeypatch.setattr(docker_engine, "STOP_SLACK_S", 0.5)
    t0 = time.monotonic()
    verdict, result, _, _ = run(tmp_path, fake.engine(), quick(time_limit_s=1.0, kill_grace_s=0.5))
    assert time.monotonic() - t0 < 15
    assert verdict.status is Status.TIMEOUT
    assert wait_for(lambda: fake.calls("rm"))
    assert [c[0] for c in fake.calls() if c[0] in ("stop", "kill", "rm")] == ["stop", "kill", "rm"]
    (stop,) = fake.calls("stop")
    assert stop[:3] == ["stop", "--time", "1"] and NAME.match(stop[-1])


def test_a_daemon_that_dies_mid_run_is_said_so(tmp_path, fake):
    fake.mode("daemon-dies")
    with pytest.raises(SetupError, match="stopped answering during the run") as exc:
        run(tmp_path, fake.engine())
    assert "unexpected EOF" in exc.value.message
    assert "Cannot connect to the Docker daemon" in (exc.value.fix or "")
    log = (tmp_path / "out" / "log.txt").read_text()
    assert "hello from the fake container" in log  # what it printed is kept


def test_cli_pull_passes_the_name_to_docker_pull(fake):
    res = posebowl("runtime", "pull", "--image", "registry.example/pb:1", cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert fake.calls("pull") == [["pull", "registry.example/pb:1"]]
    assert "--image registry.example/pb:1" in res.stdout


# -- scripts/docker-daemon.sh: only what was started is stopped ----------------------------------
FAKE_DOCKERD = """#!/bin/sh
touch "$FAKE_DAEMON/up"
trap 'rm -f "$FAKE_DAEMON/up"; exit 0' TERM
while :; do sleep 0.1; done
"""
FAKE_DOCKER_CLI = """#!/bin/sh
case "$1" in
  info) [ -f "$FAKE_DAEMON/up" ] || { echo "Cannot connect to the Docker daemon" >&2; exit 1; } ;;
  ps) ;;
esac
"""


class DaemonScript:
    """scripts/docker-daemon.sh with a stand-in dockerd and docker (a second real daemon cannot
    be started beside the one the tests use) and holders that are live processes."""

    def __init__(self, tmp_path: Path) -> None:
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        for name, text in (("dockerd", FAKE_DOCKERD), ("docker", FAKE_DOCKER_CLI)):
            (self.bin / name).write_text(text)
            (self.bin / name).chmod(0o755)
        self.daemon = tmp_path / "daemon"
        self.daemon.mkdir()
        self.state = tmp_path / "state"
        self.holders: list[subprocess.Popen[bytes]] = []

    def holder(self) -> int:
        proc = subprocess.Popen(["sleep", "300"])
        self.holders.append(proc)
        return proc.pid

    def __call__(self, verb: str, holder: int) -> str:
        env = {
            **os.environ,
            "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
            "FAKE_DAEMON": str(self.daemon),
            "POSEBOWL_DOCKERD_STATE": str(self.state),
            "POSEBOWL_DOCKERD_HOLDER": str(holder),
            "POSEBOWL_DOCKERD_INSTALL": "0",
        }
        script = ROOT / "scripts" / "docker-daemon.sh"
        res = subprocess.run(
            ["bash", str(script), verb], capture_output=True, text=True, env=env, timeout=90
        )
        assert res.returncode == 0, res.stdout + res.stderr
        return res.stdout

    @property
    def up(self) -> bool:
        return (self.daemon / "up").exists()

    def close(self) -> None:
        for p in self.holders:
            p.kill()
            p.wait()
        pid_file = self.state / "dockerd.pid"
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)


@pytest.fixture
def daemon_script(tmp_path: Path) -> Iterator[DaemonScript]:
    script = DaemonScript(tmp_path)
    yield script
    script.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root may start dockerd (the script says so)")
def test_the_daemon_script_stops_only_what_it_started(daemon_script):
    run_ = daemon_script
    a, b = run_.holder(), run_.holder()
    assert "dockerd answers" in run_("start", a) and run_.up
    assert "running (started by this script" in run_("start", b)
    said = run_("stop", a)  # b still holds it: b owes the stop now
    assert "still held by" in said and run_.up
    assert "stopping dockerd" in run_("stop", b)
    deadline = time.monotonic() + 10
    while run_.up and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not run_.up


@pytest.mark.skipif(os.geteuid() != 0, reason="only root may start dockerd (the script says so)")
def test_the_daemon_script_never_stops_a_daemon_it_found_running(daemon_script):
    run_ = daemon_script
    a, c = run_.holder(), run_.holder()
    run_("start", a)  # started by a, which goes away without stopping it (a killed test run)
    run_.holders[0].kill()
    run_.holders[0].wait()
    assert "already answers" not in run_("start", c)  # (ours: "running (started by ...)")
    assert "left running" in run_("stop", c) and run_.up  # c did not start it
