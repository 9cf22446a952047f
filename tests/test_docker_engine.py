"""The docker engine against a fake ``docker`` command (tests/fake_docker.py): the exact command
line, every status through the shared runner, stopping, cleanup, engine choice, build and pull.

No Docker daemon is needed or used; one test feeds the command line to the real docker CLI's
flag parser when a docker CLI is installed (pointed at a socket that does not exist)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from posebowl import engines, runtimes, sandbox
from posebowl.engines import cgroups
from posebowl.engines.base import Bind, RunRequest, Status
from posebowl.engines.docker import DaemonInfo, DockerEngine
from posebowl.engines.docker import argv as docker_argv
from posebowl.engines.docker import engine as docker_engine
from posebowl.engines.docker import image as docker_image
from posebowl.errors import SetupError
from posebowl.limits import GIB, MIB, Limits
from posebowl.run import run_submission
from posebowl.sandbox import DATA, ENTRYPOINT, HOME, SUBMISSION, WORKDIR

from . import fake_docker
from .sandbox_helpers import make_data, make_zip, posebowl

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[1]
LOCK_SHA = runtimes.spec("slim").lock_sha256()
NAME = re.compile(r"^posebowl-[0-9a-f]{12}$")


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
        # a complete wheelhouse of empty stand-ins: a fake build downloads nothing
        wheelhouse = tmp_path / "wheelhouse"
        stubs = wheelhouse / LOCK_SHA[:16]
        stubs.mkdir(parents=True)
        for e in docker_image.read_lock(runtimes.spec("slim").lock):
            (stubs / f"{e.name.replace('-', '_')}-{e.version}-py3-none-any.whl").touch()
        (stubs / docker_image.COMPLETE).touch()
        monkeypatch.setenv(docker_image.WHEELHOUSE_ENV, str(wheelhouse))
        self.mode("success")

    def mode(self, mode: str) -> None:
        self.monkeypatch.setenv("FAKE_DOCKER_MODE", mode)

    def calls(self, verb: str | None = None) -> list[list[str]]:
        return [c for c in fake_docker.calls(self.state) if verb is None or c[:1] == [verb]]

    def run_call(self) -> list[str]:
        (run,) = self.calls("run")
        return run

    def engine(self, **kw: object) -> DockerEngine:
        return DockerEngine(docker=str(self.exe), **kw)  # type: ignore[arg-type]


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Fake:
    return Fake(tmp_path, monkeypatch)


def quick(**changes: object) -> Limits:
    base = Limits(time_limit_s=30.0, kill_grace_s=1.0, memory_bytes=512 * MIB, pids=256, cpus=1.5)
    return base.with_overrides(**changes)


def run(tmp_path: Path, engine: DockerEngine, limits: Limits | None = None, **kw: object):
    data, labels = make_data(tmp_path)
    z = make_zip(tmp_path / "submission.zip", {"main.sh": "echo hi\n"})
    out = tmp_path / "out"
    verdict = run_submission(z, data, out, engine, limits or quick(), None, profile="test", **kw)
    result = json.loads((out / "result.json").read_text())
    return verdict, result, (out / "log.txt").read_text(), out


# -- the command line ---------------------------------------------------------------------------
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


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker CLI installed")
def test_the_real_docker_cli_accepts_every_flag(tmp_path):
    """The real CLI parses the flags before it needs a daemon: a syntax error would show here."""
    for d in ("view", "images", "work", "sub"):
        (tmp_path / d).mkdir()
    info = DaemonInfo("27.0", ncpu=2)
    argv = docker_argv.run_argv(
        shutil.which("docker") or "docker",
        "posebowl-runtime:local",
        request(tmp_path),
        "posebowl-abc",
        info,
        (1234, 1234),
        "host:1",
    )
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-daemon.sock"}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 125
    assert "invalid argument" not in proc.stderr and "unknown flag" not in proc.stderr
    assert "Cannot connect to the Docker daemon" in proc.stderr or "no-daemon.sock" in proc.stderr


# -- runs through the shared runner -------------------------------------------------------------
def test_success_writes_the_verdict_and_removes_the_container(tmp_path, fake):
    verdict, result, log, out = run(
        tmp_path, fake.engine(), labels=tmp_path / "labels/test_labels.csv"
    )
    assert verdict.status is Status.SUCCESS and result["engine"] == "docker"
    assert result["score"] is not None and result["score"] > 0.5
    assert (out / "submission.csv").is_file()
    assert "hello from the fake container" in log
    assert result["enforced"]["memory"]["enforced"] and result["enforced"]["network"]["enforced"]
    assert "--memory-swap" in result["enforced"]["memory"]["how"]
    verbs = [c[0] if c[0] != "image" else "image inspect" for c in fake.calls()]
    # (the first inspect may come before the fake run has written down its arguments)
    assert verbs[:2] == ["info", "image inspect"] and verbs.count("run") == 1
    assert verbs[-1] == "rm"
    args = fake.run_call()
    name = args[args.index("--name") + 1]
    assert NAME.match(name)
    assert fake.calls("rm") == [["rm", "--force", "--volumes", name]]
    assert ["inspect", "--type", "container", name] in fake.calls("inspect")
    m = fake_docker.mounts(args)
    assert m[DATA][1] and m[f"{DATA}/images"][1], "the data must be read-only"
    assert not m[WORKDIR][1] and not m[SUBMISSION][1]
    assert m[f"{DATA}/images"][0] == str((tmp_path / "data" / "images").resolve())
    assert m[ENTRYPOINT] == (str(sandbox.entrypoint_file()), True)
    assert args[args.index("--network") + 1] == "none"
    want_user = docker_argv.run_user(DaemonInfo("x"))
    assert args[args.index("--user") + 1] == f"{want_user[0]}:{want_user[1]}"
    assert (
        args[args.index("--memory") + 1] == args[args.index("--memory-swap") + 1] == str(512 * MIB)
    )
    assert args[args.index("--cpus") + 1] == "1.5"
    assert args[args.index("--pids-limit") + 1] == "256"
    assert args[args.index("--shm-size") + 1] == str(512 * MIB)
    assert "--rm" not in args  # removed explicitly, after inspect has read OOMKilled


def test_failure_is_the_containers_exit_code(tmp_path, fake):
    fake.mode("fail")
    verdict, result, log, _ = run(tmp_path, fake.engine())
    assert verdict.status is Status.FAILED and result["exit_code"] == 3
    assert "boom" in log
    assert fake.calls("rm")


def test_oom_killed_container(tmp_path, fake):
    fake.mode("oom")
    verdict, result, log, _ = run(tmp_path, fake.engine())
    assert verdict.status is Status.OUT_OF_MEMORY
    assert result["oom_kills"] == 1 and result["exit_code"] == 137
    assert "Killed" in log and Status.OUT_OF_MEMORY.exit_code == verdict.process_exit_code


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


def test_without_a_readable_cgroup_usage_is_unknown_and_said_so(tmp_path, fake):
    _, result, _, _ = run(tmp_path, fake.engine())
    assert result["peak_memory_bytes"] is None and result["cpu_seconds"] is None
    assert any("peak_memory_bytes unknown" in n for n in result["notes"])


def test_timeout_stops_the_container(tmp_path, fake):
    fake.mode("timeout")
    start = time.monotonic()
    verdict, result, _, _ = run(tmp_path, fake.engine(), quick(time_limit_s=1.0, kill_grace_s=2.0))
    assert time.monotonic() - start < 10
    assert verdict.status is Status.TIMEOUT and result["exit_code"] == 143
    (stop,) = fake.calls("stop")
    name = stop[-1]
    assert stop == ["stop", "--time", "2", name] and NAME.match(name)
    assert not fake.calls("kill")
    assert fake.calls("rm")[-1][-1] == name


def test_a_container_deaf_to_sigterm_is_killed(tmp_path, fake, monkeypatch):
    fake.mode("stubborn")
    monkeypatch.setattr(docker_engine, "STOP_SLACK_S", 0.5)
    verdict, result, _, _ = run(tmp_path, fake.engine(), quick(time_limit_s=1.0, kill_grace_s=0.5))
    assert verdict.status is Status.TIMEOUT and result["exit_code"] == 137
    assert [c[0] for c in fake.calls() if c[0] in ("stop", "kill", "rm")] == ["stop", "kill", "rm"]


def test_ctrl_c_kills_the_container_and_removes_it(tmp_path, fake):
    fake.mode("timeout")
    engine = fake.engine()
    data, _ = make_data(tmp_path)

    def interrupt(chunk: bytes) -> None:
        raise KeyboardInterrupt

    req = RunRequest(
        binds=(Bind(data, DATA),), command=("sh", ENTRYPOINT), cwd=WORKDIR, limits=quick()
    )
    with pytest.raises(KeyboardInterrupt):
        engine.execute(req, interrupt)
    (kill,) = fake.calls("kill")
    assert fake.calls("rm")[-1][-1] == kill[-1]
    pid = int((fake.state / f"{kill[-1]}.pid").read_text())
    assert (
        not Path(f"/proc/{pid}").exists()
        or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
    )


def test_a_container_that_never_starts_is_a_setup_error(tmp_path, fake):
    fake.mode("no-start")
    with pytest.raises(SetupError, match="could not start the container.*mount denied"):
        run(tmp_path, fake.engine())
    assert fake.calls("rm")


def test_a_missing_image_says_how_to_build_or_pull(tmp_path, fake):
    fake.mode("no-image")
    with pytest.raises(SetupError, match="not on this machine") as exc:
        run(tmp_path, fake.engine(image="nope:1"))
    assert "ENGINE=docker make build" in (exc.value.fix or "")
    assert not fake.calls("run")


def test_an_image_from_another_lock_is_refused(tmp_path, fake):
    with pytest.raises(SetupError, match="another runtime lock"):
        run(tmp_path, fake.engine(lock_sha256="0" * 64))
    assert not fake.calls("run")


def test_an_image_not_built_by_posebowl_runs_with_a_note(tmp_path, fake):
    fake.mode("foreign-image")
    verdict, result, _, _ = run(tmp_path, fake.engine())
    assert verdict.status is Status.INVALID_OUTPUT  # this fake writes no submission.csv
    assert any("not built by posebowl" in n for n in result["notes"])


# -- health and the choice of engine ------------------------------------------------------------
class Broken:
    name = "bwrap"
    needs_runtime_venv = True

    def health_check(self):
        return "bubblewrap is broken on purpose."

    def execute(self, request, on_output):  # pragma: no cover - never reached
        raise AssertionError


def test_daemon_down_is_the_reason(fake):
    fake.mode("daemon-down")
    reason = fake.engine().health_check()
    assert reason is not None and "Cannot connect to the Docker daemon" in reason
    assert "systemctl start docker" in reason


def test_no_docker_command(tmp_path):
    reason = DockerEngine(docker=str(tmp_path / "no-docker")).health_check()
    assert reason is not None and "not installed" in reason


def test_auto_takes_docker_when_bwrap_fails_and_the_daemon_answers(fake, monkeypatch):
    monkeypatch.setitem(engines.ENGINES, "bwrap", Broken)
    assert isinstance(engines.select("auto"), DockerEngine)


def test_auto_fails_closed_listing_every_engines_reason(fake, monkeypatch):
    fake.mode("daemon-down")
    monkeypatch.setitem(engines.ENGINES, "bwrap", Broken)
    with pytest.raises(SetupError) as exc:
        engines.select("auto")
    msg = exc.value.message
    assert "bwrap: bubblewrap is broken on purpose." in msg
    assert "docker: The Docker daemon does not answer" in msg


def test_docker_by_name_needs_a_daemon(fake):
    fake.mode("daemon-down")
    with pytest.raises(SetupError, match="does not answer"):
        engines.select("docker")


# -- the command line ---------------------------------------------------------------------------
def no_bwrap_env(fake: Fake, **extra: str) -> dict[str, str]:
    """PATH with the fake docker and this Python only: no bwrap, so auto must pick docker."""
    return {**os.environ, "PATH": f"{fake.bin}{os.pathsep}{Path(sys.executable).parent}", **extra}


@pytest.mark.parametrize("how", ["flag", "env", "auto"])
def test_cli_run_with_docker(tmp_path, fake, how):
    data, labels = make_data(tmp_path)
    z = make_zip(tmp_path / "submission.zip", {"main.sh": "echo hi\n"})
    args = ["run", z, "--data", data, "--labels", labels, "--json", "-q"]
    env = no_bwrap_env(fake) if how == "auto" else dict(os.environ)
    if how == "flag":
        args += ["--engine", "docker"]
    if how == "env":
        env["POSEBOWL_ENGINE"] = "docker"
    res = posebowl(*args, env=env, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    result = json.loads(res.stdout)
    assert result["status"] == "SUCCESS" and result["engine"] == "docker"
    assert len(fake.calls("run")) == 1 and len(fake.calls("rm")) == 1


def test_cli_run_status_exit_codes_with_docker(tmp_path, fake):
    data, _ = make_data(tmp_path)
    z = make_zip(tmp_path / "submission.zip", {"main.sh": "echo hi\n"})
    for mode, status in [("fail", Status.FAILED), ("oom", Status.OUT_OF_MEMORY)]:
        env = {**os.environ, "FAKE_DOCKER_MODE": mode}
        res = posebowl("run", z, "--data", data, "--engine", "docker", "-q", env=env, cwd=ROOT)
        assert res.returncode == status.exit_code, res.stderr
        assert json.loads((tmp_path / "result.json").read_text())["status"] == status.value


def test_cli_auto_without_any_engine_says_why_for_each(tmp_path, fake):
    data, _ = make_data(tmp_path)
    z = make_zip(tmp_path / "submission.zip", {"main.sh": "echo hi\n"})
    env = no_bwrap_env(fake, FAKE_DOCKER_MODE="daemon-down")
    res = posebowl("run", z, "--data", data, env=env, cwd=ROOT)
    assert res.returncode == 4
    text = " ".join(res.stderr.split())
    assert "bwrap: bubblewrap (bwrap) is not installed" in text
    assert "docker: The Docker daemon does not answer" in text
    assert not fake.calls("run")


def test_cli_sigterm_kills_the_container(tmp_path, fake):
    data, _ = make_data(tmp_path)
    z = make_zip(tmp_path / "submission.zip", {"main.sh": "echo hi\n"})
    env = {**os.environ, "FAKE_DOCKER_MODE": "timeout"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "posebowl.cli.main", "run", z, "--data", data, "--engine", "docker"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    deadline = time.monotonic() + 30
    while not list(fake.state.glob("*.pid")) and time.monotonic() < deadline:
        time.sleep(0.05)
    (pid_file,) = list(fake.state.glob("*.pid"))
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == Status.INTERRUPTED.exit_code
    name = pid_file.name.removesuffix(".pid")
    assert ["kill", name] in fake.calls("kill")
    assert fake.calls("rm")[-1][-1] == name


def test_cli_shell_with_docker(tmp_path, fake):
    res = posebowl("shell", "--engine", "docker", "--", "true", cwd=ROOT)
    assert res.returncode == 0, res.stderr
    args = fake.run_call()
    assert "--interactive" in args and "--network" not in args
    assert args[-3:] == [ENTRYPOINT, "--allow-network", "true"]
    fake.mode("fail")
    assert (
        posebowl("shell", "--engine", "docker", "--no-network", "--", "x", cwd=ROOT).returncode == 3
    )
    assert "--network" in fake.calls("run")[-1]


def test_cli_runtime_test_with_docker_mounts_the_tests(fake):
    res = posebowl("runtime", "test", "--engine", "docker", cwd=ROOT)
    assert res.returncode == 0, res.stderr
    m = fake_docker.mounts(fake.run_call())
    assert m["/opt/posebowl/runtime-tests"] == (str(runtimes.DEFINITION / "tests"), True)


def test_cli_build_image_from_the_lock(fake):
    # (a real build, offline on the stand-in base: tests/test_dockerfile.py)
    res = posebowl(
        "runtime", "build", "--engine", "docker", "--image", "pb:test", "--base-image", "base:1",
        cwd=ROOT,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    (build,) = fake.calls("build")
    assert build[:3] == ["build", "--network", "none"]
    assert build[build.index("--tag") + 1] == "pb:test"
    assert build[build.index("--file") + 1] == str(runtimes.DEFINITION / "Dockerfile")
    build_args = {build[i + 1] for i, a in enumerate(build) if a == "--build-arg"}
    assert {
        f"LOCK_SHA256={LOCK_SHA}",
        "BASE_IMAGE=base:1",
        "UID=1000",
        "RUNTIME=slim",
    } <= build_args
    assert build[-1] != str(ROOT) and Path(build[-1]).name == "context"  # a staged context


def test_cli_build_failure_says_what_to_do_offline(fake):
    fake.mode("build-fails")
    res = posebowl("runtime", "build", "--engine", "docker", cwd=ROOT)
    assert res.returncode == 4
    assert "failed to resolve source" in res.stderr and "scripts/docker-base.sh" in res.stderr


def test_make_build_with_engine_docker_builds_the_image(tmp_path, fake):
    stamp = tmp_path / "installed"  # newer than pyproject.toml: make installs nothing
    stamp.touch()
    res = subprocess.run(
        ["make", "-s", "build", "ENGINE=docker", "IMAGE=pb:make", f"STAMP={stamp}",
         f"BIN={Path(sys.executable).parent}"],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    (build,) = fake.calls("build")
    assert "pb:make" in build


def test_cli_pull(fake):
    res = posebowl("runtime", "pull", "--image", "registry.example/pb:1", cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert fake.calls("pull") == [["pull", "registry.example/pb:1"]]
    fake.mode("pull-offline")
    res = posebowl("runtime", "pull", "--image", "registry.example/pb:1", cwd=ROOT)
    assert res.returncode == 4
    assert "no such host" in res.stderr and "docker load" in res.stderr


def test_cli_pull_of_the_local_name_explains(fake):
    res = posebowl("runtime", "pull", cwd=ROOT)
    assert res.returncode == 4 and "publishes none" in res.stderr
    assert not fake.calls("pull")


def test_cli_report_after_a_docker_run(tmp_path, fake):
    data, labels = make_data(tmp_path, labels_dir="data_labels")
    (tmp_path / "sub").mkdir()
    z = make_zip(tmp_path / "sub" / "submission.zip", {"main.sh": "echo hi\n"})
    res = posebowl(
        "run", z, "--data", data, "--labels", labels, "--engine", "docker", "--report", "--json",
        "-q", cwd=ROOT,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)["report"]
    assert report["path"] == str(tmp_path / "sub" / "report" / "index.html")
    assert Path(report["path"]).is_file() and report["scored"] == 3
