"""End-to-end helpers: build zips (hostile ones too), a small data folder, and run them through
a real engine: bwrap, or docker against a real daemon and the real runtime image. No mocks:
every run here is a real sandbox. :func:`engine_params` parametrises a test over every engine;
an engine that does not work here skips with the reason (for docker: why no daemon answers, as
``scripts/docker-daemon.sh status`` tells it, or why the runtime image cannot be used)."""

from __future__ import annotations

import functools
import hashlib
import os
import stat
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from posebowl import run, runtimes, sandbox, workspace
from posebowl.engines.base import Engine
from posebowl.engines.bwrap import BwrapEngine
from posebowl.engines.docker import DEFAULT_IMAGE, DockerEngine
from posebowl.engines.docker import image as docker_image
from posebowl.errors import SetupError
from posebowl.limits import Limits
from posebowl.runtimes import Runtime
from posebowl.runtimes.build import base_python

#: a string only processes started in a sandbox carry in their environment
SANDBOX_ENV_MARKER = f"PIP_TARGET={sandbox.PIP_TARGET}".encode()
LABEL_BOX = (500, 400, 760, 620)


@functools.cache
def sandbox_problem() -> str | None:
    return BwrapEngine().health_check()


def needs_sandbox() -> pytest.MarkDecorator:
    reason = sandbox_problem()
    return pytest.mark.skipif(reason is not None, reason=f"no working sandbox: {reason}")


ROOT = Path(__file__).resolve().parents[1]
DAEMON_SCRIPT = ROOT / "scripts" / "docker-daemon.sh"
#: the image the docker engine's real tests run (built from the lock: ENGINE=docker make build)
TEST_IMAGE_ENV = "POSEBOWL_TEST_IMAGE"
ENGINES = ("bwrap", "docker")


def docker_test_image() -> str:
    return os.environ.get(TEST_IMAGE_ENV) or DEFAULT_IMAGE


def _daemon_script_says() -> str:
    """What scripts/docker-daemon.sh status says (who started the daemon, why a start failed)."""
    try:
        proc = subprocess.run(
            ["bash", str(DAEMON_SCRIPT), "status"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"scripts/docker-daemon.sh status could not run ({exc})"
    said = " ".join((proc.stdout + proc.stderr).split())
    return f"scripts/docker-daemon.sh status: {said or f'exit code {proc.returncode}'}"


@functools.cache
def daemon_problem() -> str | None:
    """``None`` when a real Docker daemon answers, else why not (and why none could be started)."""
    reason = DockerEngine().health_check()
    if reason:
        return (
            f"no Docker daemon could be used: {reason} ({_daemon_script_says()}; as root, "
            "scripts/docker-daemon.sh start starts one)"
        )
    return None


@functools.cache
def docker_problem() -> str | None:
    """``None`` when a real daemon answers and the runtime image from the current lock is there."""
    reason = daemon_problem()
    if reason:
        return reason
    engine = make_engine("docker")
    engine.health_check()
    try:
        engine.check_image()
    except SetupError as exc:
        return (
            f"a Docker daemon answers but the runtime image cannot be used: {exc.message} "
            "Build it: scripts/docker-base.sh, then posebowl runtime build --engine docker "
            "--runtime slim --base-image posebowl-base:bookworm-py3.11"
        )
    return None


@functools.cache
def stand_in_problem() -> str | None:
    """``None`` when a real daemon answers and the stand-in base image is there."""
    reason = daemon_problem()
    if reason:
        return reason
    engine = DockerEngine()
    engine.health_check()
    if docker_image.image_labels(engine.docker, docker_image.STAND_IN_BASE_IMAGE) is None:
        return (
            f"a Docker daemon answers but the stand-in base {docker_image.STAND_IN_BASE_IMAGE} "
            "is not there: make it with scripts/docker-base.sh (Debian packages, no registry)"
        )
    return None


def engine_problem(name: str) -> str | None:
    return sandbox_problem() if name == "bwrap" else docker_problem()


def engine_params() -> list:
    """``pytest.param`` per engine, each marked (sandbox / docker) and skipped when unusable."""
    return [
        pytest.param(
            name,
            id=name,
            marks=[
                pytest.mark.sandbox if name == "bwrap" else pytest.mark.docker,
                pytest.mark.skipif(
                    engine_problem(name) is not None,
                    reason=f"the {name} engine does not work here: {engine_problem(name)}",
                ),
            ],
        )
        for name in ENGINES
    ]


def make_engine(name: str) -> Engine:
    """The engine ``name``, running the slim runtime (docker: its image, checked against the
    slim lock)."""
    if name == "bwrap":
        return BwrapEngine()
    engine = DockerEngine(image=docker_test_image())
    engine.select_runtime("slim", runtimes.spec("slim").lock_sha256())
    return engine


@functools.cache
def bare_runtime(root: Path) -> Runtime:
    """A venv with nothing installed: enough for shell + stdlib submissions, made in ~0.1 s."""
    venv = root / "bare-venv"
    if not (venv / "bin" / "python").exists():
        subprocess.run([str(base_python()), "-m", "venv", "--without-pip", str(venv)], check=True)
    return runtimes.runtime_from_venv(venv)


def real_runtime() -> Runtime:
    try:
        ws = workspace.find()
        return runtimes.locate(runtimes.default_name(ws), ws)
    except Exception as exc:
        pytest.skip(f"the runtime is not built ({exc}); run make build")


def make_data(
    root: Path, n: int = 3, seed: int = 0, labels_dir: str = "labels"
) -> tuple[Path, Path]:
    """A data folder in the competition layout and, OUTSIDE it, its labels file."""
    from .conftest import make_ids  # (here: conftest itself imports this module)

    data = root / "data"
    (data / "images").mkdir(parents=True)
    ids = make_ids(n, seed=seed)
    img = np.zeros((1024, 1280, 3), np.uint8)
    for i in ids:
        cv2.imwrite(str(data / "images" / f"{i}.png"), img)
    cols = ["xmin", "ymin", "xmax", "ymax"]
    fmt = pd.DataFrame({"image_id": ids, **{c: 0 for c in cols}})
    fmt.to_csv(data / "submission_format.csv", index=False)
    labels = root / labels_dir / "test_labels.csv"
    labels.parent.mkdir()
    lab = pd.DataFrame({"image_id": ids, **dict(zip(cols, LABEL_BOX, strict=True))})
    lab.to_csv(labels, index=False)
    return data, labels


def snapshot(folder: Path) -> dict[str, tuple[str, int, int]]:
    """Every file and folder under ``folder`` with its content hash, mode and mtime."""
    out = {}
    for p in sorted(folder.rglob("*")):
        st = p.lstat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        out[str(p.relative_to(folder))] = (digest, st.st_mode, st.st_mtime_ns)
    st = folder.lstat()
    out["."] = ("dir", st.st_mode, st.st_mtime_ns)
    return out


def sandbox_processes(run_id: str | None = None) -> list[int]:
    """Live processes started inside a sandbox (they carry its environment); with ``run_id``,
    only those of that run (other test runs on the machine may be going on at the same time)."""
    marker = SANDBOX_ENV_MARKER if run_id is None else f"POSEBOWL_RUN_ID={run_id}".encode()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as f:
                if marker in f.read():
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


# A main.sh that writes a valid submission with the stdlib only (the bare runtime has no pandas).
WRITE_VALID = """python - <<'EOF'
import csv
rows = list(csv.reader(open("/code_execution/data/submission_format.csv")))
with open("/code_execution/submission/submission.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(rows[0])
    for r in rows[1:]:
        w.writerow([r[0], 540, 412, 740, 612])
EOF
"""


def make_zip(path: Path, files: dict[str, str | bytes]) -> Path:
    """A zip with these entries (names taken literally: hostile names are allowed)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            zf.writestr(info, content)
    return path


def add_symlink(path: Path, name: str, target: str) -> None:
    with zipfile.ZipFile(path, "a") as zf:
        info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, target)


@dataclass
class Outcome:
    verdict: run.Verdict
    log: str
    result: dict
    out: Path


def fast_limits(**changes: object) -> Limits:
    """Small limits so the hostile tests end in seconds."""
    base = Limits(time_limit_s=30.0, kill_grace_s=1.0, memory_bytes=512 << 20, pids=256)
    return base.with_overrides(**changes)


def run_zip(
    root: Path,
    zip_path: Path,
    data: Path,
    limits: Limits | None = None,
    runtime: Runtime | None = None,
    labels: Path | None = None,
    smoke: int | None = None,
    engine: Engine | None = None,
) -> Outcome:
    """Run a zip through a real sandbox (default: bwrap) and check what must hold whatever the
    zip does."""
    import json

    before = snapshot(data)
    out = root / "out"
    verdict = run.run_submission(
        zip_path,
        data,
        out,
        engine or BwrapEngine(),
        limits or fast_limits(),
        runtime or bare_runtime(root.parent),
        profile="test",
        labels=labels,
        smoke=smoke,
    )
    assert (out / "log.txt").is_file(), "log.txt must always be written"
    assert (out / "result.json").is_file(), "result.json must always be written"
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == verdict.status.value
    assert snapshot(data) == before, "the data folder changed"
    assert sandbox_processes(result["run_id"]) == [], "a sandboxed process is still running"
    return Outcome(verdict, (out / "log.txt").read_text(), result, out)


def containers_of(pid: int, wait_s: float = 15.0) -> list[str]:
    """Containers (running or not) that the posebowl of process ``pid`` on this host started,
    once they are gone or ``wait_s`` has passed: a finished container is removed in the
    background (by the engine's guard), a moment after the run returned."""
    import socket

    from posebowl.engines.docker.argv import OWNER_LABEL

    owner = f"{OWNER_LABEL}={socket.gethostname()}:{pid}"
    ps = ["docker", "ps", "--all", "--quiet", "--filter", f"label={owner}"]
    deadline = time.monotonic() + wait_s
    while True:
        left = subprocess.run(ps, capture_output=True, text=True, timeout=60).stdout.split()
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def posebowl(*args, env=None, cwd=None, **kw) -> subprocess.CompletedProcess[str]:
    """Run the posebowl CLI as a user would: a new process, text output captured."""
    return subprocess.run(
        [sys.executable, "-m", "posebowl.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        **kw,
    )
