"""The runtime image: built offline and hash-checked, pulled, and checked before a run.

**Check** (:func:`check_image`, before every run): the image must be on this machine. An image
posebowl built carries labels with its runtime's name and the SHA-256 of the lock it was built
from: one built from another lock than the one the run expects is refused, with the command
that rebuilds it. Any other image (the official DrivenData one after ``make pull``, or a user's
own) is run as it is, with posebowl's entrypoint mounted and the image's own ``python``; the run
records its lock as unknown.

**Build** (:func:`build_image`). The build never lets the image reach a network:

1. **Wheelhouse** (host, needs PyPI or the user's index once): ``pip download --require-hashes
   --no-deps --only-binary :all:`` of every lock entry for the image's platform (CPython 3.11,
   manylinux up to the lock's glibc, see :func:`platform_args`) into
   ``.cache/wheelhouse/<lock hash>/``; a complete one is reused while the lock is unchanged.
   pip checks each file against the lock's hashes as it downloads it.
2. **Staging context**: a fresh folder holding only what ``runtime/Dockerfile`` copies (the lock,
   the wheels as hard links, the entrypoint, the runtime tests), so the daemon receives a few
   files instead of the checkout.
3. ``docker build --network none`` with ``BASE_IMAGE`` (the official
   ``python:3.11.7-slim-bookworm``, or a stand-in from ``scripts/docker-base.sh``); inside, pip
   installs from the wheels only (``--no-index --find-links``) and checks every hash again. The
   wheels stay in the build's first stage, never in the image. Labels record the runtime's name,
   the lock's hash, the base image and a hash of everything the build used: a build whose labels
   already match does nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from posebowl import sandbox
from posebowl.engines.docker import daemon
from posebowl.engines.docker.argv import PLATFORM
from posebowl.errors import SetupError
from posebowl.runtimes.locks import Spec
from posebowl.workspace import Workspace

IMAGE_REPO = "posebowl-runtime"
DEFAULT_IMAGE = f"{IMAGE_REPO}:slim"
IMAGE_ENV = "POSEBOWL_IMAGE"
DEFAULT_BASE_IMAGE = "python:3.11.7-slim-bookworm"
STAND_IN_BASE_IMAGE = "posebowl-base:bookworm-py3.11"  # what scripts/docker-base.sh makes
BASE_IMAGE_ENV = "POSEBOWL_BASE_IMAGE"
WHEELHOUSE_DIR = "wheelhouse"  # in the workspace's cache
WHEELHOUSE_ENV = "POSEBOWL_WHEELHOUSE"
COMPLETE = ".complete"  # in a wheelhouse: its wheels' names, written once all are there
LOCK_LABEL = "org.posebowl.lock-sha256"
RUNTIME_LABEL = "org.posebowl.runtime"
CONTEXT_LABEL = "org.posebowl.context-sha256"
BASE_LABEL = "org.opencontainers.image.base.name"
STAGE_LABEL = "org.posebowl.build-stage"  # on the build's first stage (pruned after a build)
PYTHON_VERSION = "3.11"
MAX_GLIBC_MINOR = 28  # the lock is resolved for x86_64-manylinux_2_28 (runtimes.locks.PLATFORM)
ARCH = "x86_64"  # the wheels' platform, also on arm64 machines (emulated: PLATFORM)
UNKNOWN = "unknown"  # the Dockerfile's default for a label no build argument set
BUILD_HINT = (
    "Build it with `ENGINE=docker make build` (posebowl runtime build --engine docker), or pull "
    "a published one with `make pull IMAGE=NAME` and run with --image NAME."
)
OFFLINE_HINT = (
    "Offline, move an image from a machine that has one: `docker save IMAGE | gzip > image.tgz` "
    "there, then `docker load < image.tgz` here (or build it where the base image and PyPI "
    "are reachable)."
)
_REQ = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")

Echo = Callable[[str], None]


def normalize(name: str) -> str:
    """A project name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class LockEntry:
    name: str  # normalized
    version: str
    hashes: frozenset[str]


def read_lock(lock: Path) -> list[LockEntry]:
    """Every ``name==version`` entry of a hashed lock with its hashes."""
    entries: list[LockEntry] = []
    current: tuple[str, str] | None = None
    hashes: set[str] = set()
    for line in lock.read_text().splitlines():
        m = _REQ.match(line)
        if m:
            if current:
                entries.append(LockEntry(*current, frozenset(hashes)))
            current, hashes = (normalize(m[1]), m[2]), set()
        if current:
            hashes.update(_HASH.findall(line))
    if current:
        entries.append(LockEntry(*current, frozenset(hashes)))
    return entries


def platform_args(max_glibc_minor: int = MAX_GLIBC_MINOR, arch: str = ARCH) -> list[str]:
    """``--platform`` flags for every manylinux tag the image can load, newest first.

    pip takes ``--platform`` literally: ``manylinux2014_x86_64`` alone misses onnxruntime and
    pillow (manylinux_2_27/2_28 only), ``manylinux_2_28_x86_64`` alone misses numpy
    (manylinux_2_17 only) and the legacy aliases (openvino and protobuf are tagged
    ``manylinux2014`` only). So: every ``manylinux_2_N`` from the lock's glibc down to 2.5, then
    the legacy names.
    """
    tags = [f"manylinux_2_{n}_{arch}" for n in range(max_glibc_minor, 4, -1)]
    tags += [f"manylinux2014_{arch}", f"manylinux2010_{arch}", f"manylinux1_{arch}"]
    return [a for t in tags for a in ("--platform", t)]


def download_argv(python: str, lock: Path, dest: Path) -> list[str]:
    """The ``pip download`` of the lock's wheels for the image (a pure function)."""
    return [
        python,
        "-m",
        "pip",
        "download",
        "--require-hashes",
        "--no-deps",
        "--only-binary",
        ":all:",
        *platform_args(),
        "--python-version",
        PYTHON_VERSION,
        "--implementation",
        "cp",
        "--abi",
        f"cp{PYTHON_VERSION.replace('.', '')}",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
        "-r",
        str(lock),
        "-d",
        str(dest),
    ]


def _wheel_project(filename: str) -> str:
    return normalize(filename.split("-", 1)[0])


def wheelhouse_problem(entries: Sequence[LockEntry], folder: Path) -> str | None:
    """``None`` when ``folder`` holds exactly one wheel per lock entry, else what is off."""
    wheels = sorted(p.name for p in folder.glob("*.whl"))
    by_name: dict[str, list[str]] = {}
    for w in wheels:
        by_name.setdefault(_wheel_project(w), []).append(w)
    missing = [e.name for e in entries if e.name not in by_name]
    extra = sorted(set(by_name) - {e.name for e in entries})
    doubled = sorted(n for n, ws in by_name.items() if len(ws) > 1)
    parts = []
    if missing:
        parts.append(f"no wheel for {', '.join(missing)}")
    if extra:
        parts.append(f"wheels not in the lock: {', '.join(extra)}")
    if doubled:
        parts.append(f"more than one wheel for {', '.join(doubled)}")
    return "; ".join(parts) or None


@dataclass(frozen=True)
class Wheelhouse:
    folder: Path
    downloaded: bool  # False: reused from the cache
    seconds: float


def ensure_wheelhouse(
    lock: Path, cache: Path, python: str | None = None, echo: Echo | None = None
) -> Wheelhouse:
    """The lock's wheels in ``cache/<lock hash>/``, downloaded unless a complete copy is there.

    A new lock starts from hard links to the wheels of the other wheelhouses that share its file
    names (pip re-checks their hashes and downloads only the rest).
    """
    t0 = time.monotonic()
    sha = hashlib.sha256(lock.read_bytes()).hexdigest()
    folder = cache / sha[:16]
    entries = read_lock(lock)
    if (folder / COMPLETE).is_file() and wheelhouse_problem(entries, folder) is None:
        return Wheelhouse(folder, False, time.monotonic() - t0)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / COMPLETE).unlink(missing_ok=True)
    for other in cache.glob("*/*.whl"):
        target = folder / other.name
        if other.parent != folder and not target.exists():
            with contextlib.suppress(OSError):
                os.link(other, target)
    argv = download_argv(python or sys.executable, lock, folder)
    if echo:
        echo(f"downloading the wheels of {lock.name} into {folder} (pip download)")
    proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
        raise SetupError(
            f"Downloading the runtime's wheels failed (pip download, exit code "
            f"{proc.returncode}):\n{tail}",
            "It needs PyPI (or your pip index: pip.conf and PIP_INDEX_URL are honoured) once; "
            "then builds run offline from .cache/wheelhouse.",
        )
    # files the seeding linked in but this lock does not pin
    keep = {e.name for e in entries}
    for w in folder.glob("*.whl"):
        if _wheel_project(w.name) not in keep:
            w.unlink()
    problem = wheelhouse_problem(entries, folder)
    if problem:
        raise SetupError(
            f"pip download left an incomplete wheelhouse in {folder}: {problem}.",
            "Every lock entry needs a wheel for CPython 3.11 on manylinux x86_64; "
            "re-lock (make lock) or delete the folder and build again.",
        )
    names = sorted(p.name for p in folder.glob("*.whl"))
    (folder / COMPLETE).write_text("\n".join(names) + "\n")
    return Wheelhouse(folder, True, time.monotonic() - t0)


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise
        shutil.copy2(src, dst)


def stage_context(dest: Path, lock: Path, tests: Path, entrypoint: Path | None = None) -> Path:
    """Fill ``dest`` (new) with the build context the Dockerfile expects, but the wheels
    (:func:`add_wheels`); returns it. posebowl's own scripts (the entrypoint and the launcher
    that confines main.sh) come with it, so the image works standalone too."""
    (dest / "wheels").mkdir(parents=True)
    shutil.copy2(lock, dest / "requirements.txt")
    shutil.copy2(entrypoint or sandbox.entrypoint_file(), dest / "entrypoint.sh")
    shutil.copy2(sandbox.confine_file(), dest / "confine.py")
    shutil.copytree(
        tests, dest / "runtime-tests", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    return dest


def add_wheels(context: Path, wheels: Path) -> None:
    """Hard-link (or, across file systems, copy) the wheelhouse into the staged context."""
    for w in sorted(wheels.glob("*.whl")):
        _link_or_copy(w, context / "wheels" / w.name)


def context_sha256(dockerfile: Path, context: Path) -> str:
    """A hash of the Dockerfile and every file of the staged context but the wheels (the lock's
    hashes stand for them): equal hashes, equal builds."""
    h = hashlib.sha256(b"Dockerfile\0" + dockerfile.read_bytes())
    for p in sorted(context.rglob("*")):
        rel = p.relative_to(context)
        if p.is_file() and rel.parts[0] != "wheels":
            h.update(str(rel).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def build_argv(
    docker: str,
    context: Path,
    dockerfile: Path,
    image: str,
    base_image: str,
    runtime: str,
    lock_sha256: str,
    context_sha: str,
    uid: int = sandbox.UID,
    gid: int = sandbox.GID,
) -> list[str]:
    """The ``docker build`` of the runtime image (a pure function)."""
    args = {
        "BASE_IMAGE": base_image,
        "RUNTIME": runtime,
        "LOCK_SHA256": lock_sha256,
        "CONTEXT_SHA256": context_sha,
        "UID": str(uid),
        "GID": str(gid),
    }
    argv = [docker, "build", "--network", "none", "--platform", PLATFORM, "--force-rm"]
    argv += ["--file", str(dockerfile), "--tag", image]
    for k, v in args.items():
        argv += ["--build-arg", f"{k}={v}"]
    return [*argv, str(context)]


def wanted_labels(base_image: str, runtime: str, lock_sha: str, context_sha: str) -> dict[str, str]:
    return {
        BASE_LABEL: base_image,
        RUNTIME_LABEL: runtime,
        LOCK_LABEL: lock_sha,
        CONTEXT_LABEL: context_sha,
    }


def image_labels(docker: str, image: str) -> dict[str, str] | None:
    """The labels of a local image; ``None`` when there is no such image."""
    proc = subprocess.run(
        [docker, "image", "inspect", "--format", "{{json .Config.Labels}}", image],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        return None
    try:
        return json.loads(proc.stdout or "null") or {}
    except ValueError:
        return {}


def _inspect(docker: str, image: str, template: str) -> str | None:
    proc = subprocess.run(
        [docker, "image", "inspect", "--format", template, image],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    return proc.stdout.strip() if proc.returncode == 0 else None


def image_size(docker: str, image: str) -> int | None:
    size = _inspect(docker, image, "{{.Size}}")
    return int(size) if size and size.isdigit() else None


@dataclass(frozen=True)
class ImageBuild:
    image: str
    changed: bool  # False: an image with the same labels was there, nothing was built
    base_image: str
    lock_sha256: str
    wheelhouse: Wheelhouse
    build_s: float
    size_bytes: int | None


def _stream(
    argv: list[str], echo: Echo | None, env: dict[str, str] | None = None
) -> tuple[int, str]:
    """Run a long docker command, echoing its lines; its exit code and its last lines."""
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            env=env,
        )
    except OSError as exc:
        return 127, str(exc)
    last: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip("\n")
        last = [*last[-14:], line]
        if echo:
            echo(line)
    return proc.wait(), "\n".join(last)


def prune_stages(
    docker: str,
    runtime: str | None = None,
    keep_lock: str | None = None,
    only_lock: str | None = None,
) -> None:
    """Remove the untagged first-stage images the classic builder leaves (wheels and venv, about
    the image's size) of ``runtime`` (None: every runtime's), but the one of ``keep_lock``: the
    cache that makes a rebuild after a change to anything but the lock take seconds
    (``only_lock``: only that lock's)."""
    argv = [docker, "image", "prune", "--force", "--filter", f"label={STAGE_LABEL}=install"]
    if runtime:
        argv += ["--filter", f"label={RUNTIME_LABEL}={runtime}"]
    if keep_lock:
        argv += ["--filter", f"label!={LOCK_LABEL}={keep_lock}"]
    if only_lock:
        argv += ["--filter", f"label={LOCK_LABEL}={only_lock}"]
    subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL)


def wheelhouse_cache(ws: Workspace) -> Path:
    """Where the wheelhouses live: $POSEBOWL_WHEELHOUSE, else the workspace's cache."""
    env = os.environ.get(WHEELHOUSE_ENV)
    return Path(env) if env else ws.cache / WHEELHOUSE_DIR


def build(
    definition: Spec,
    ws: Workspace,
    image: str,
    docker: str,
    base_image: str | None = None,
    force: bool = False,
    prune_stage: bool = True,
    echo: Echo | None = None,
    lock: Path | None = None,
) -> ImageBuild:
    """Build ``image`` of the runtime ``definition`` offline; see the module doc.

    When ``image`` exists with the labels this build would give it (same base, runtime, lock and
    context), nothing is downloaded or built (``changed`` False) unless ``force``. ``lock``
    replaces the definition's lock (tests build tiny images).
    """
    base_image = base_image or os.environ.get(BASE_IMAGE_ENV) or DEFAULT_BASE_IMAGE
    runtime = definition.name
    lock = lock or definition.lock
    dockerfile = definition.folder / "Dockerfile"
    tests = definition.folder / "tests"
    lock_sha = hashlib.sha256(lock.read_bytes()).hexdigest()
    scratch = ws.cache
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="docker-context-", dir=scratch) as d:
        context = stage_context(Path(d) / "context", lock, tests)
        ctx_sha = context_sha256(dockerfile, context)
        want = wanted_labels(base_image, runtime, lock_sha, ctx_sha)
        have = image_labels(docker, image)
        if have is not None and not built_by_posebowl(have):
            raise SetupError(
                f"The Docker image {image} exists and was not built by posebowl: a build would "
                "take its name.",
                f"Run it as it is (posebowl run --image {image}), or build under another name "
                f"(--image NAME), or remove it first (docker image rm {image}).",
            )
        nothing = Wheelhouse(Path(), False, 0.0)
        if not force and have is not None and all(have.get(k) == v for k, v in want.items()):
            size = image_size(docker, image)
            return ImageBuild(image, False, base_image, lock_sha, nothing, 0.0, size)
        old_id = _inspect(docker, image, "{{.Id}}") if have is not None else None
        wheels = ensure_wheelhouse(lock, wheelhouse_cache(ws), echo=echo)
        add_wheels(context, wheels.folder)
        if echo:
            echo(f"docker build --network none of {image} on {base_image}")
        t0 = time.monotonic()
        argv = build_argv(
            docker, context, dockerfile, image, base_image, runtime, lock_sha, ctx_sha
        )
        rc, last = _stream(argv, echo)
        build_s = time.monotonic() - t0
    if prune_stage:  # the first stages of this runtime's other locks (wheels and all)
        prune_stages(docker, runtime=runtime, keep_lock=lock_sha)
    if rc != 0:
        hint = (
            f"The base image {base_image} must be on this machine or pullable; where no registry "
            "can be reached, make a stand-in: scripts/docker-base.sh, then --base-image "
            f"{STAND_IN_BASE_IMAGE}."
        )
        raise SetupError(f"docker build of {image} failed (exit code {rc}):\n{last}", hint)
    if old_id and old_id != _inspect(docker, image, "{{.Id}}"):
        # the image this build replaced under the same name (untagged now); kept if in use
        rm = [docker, "image", "rm", old_id]
        subprocess.run(rm, capture_output=True, stdin=subprocess.DEVNULL)
    return ImageBuild(image, True, base_image, lock_sha, wheels, build_s, image_size(docker, image))


def built_by_posebowl(labels: dict[str, str]) -> bool:
    """Whether an image's labels say posebowl built it from a lock."""
    return labels.get(LOCK_LABEL, UNKNOWN) not in ("", UNKNOWN)


def rebuild_command(image: str, runtime: str | None, base_image: str | None = None) -> str:
    """The command that builds ``image`` again from ``runtime``'s current lock."""
    cmd = "posebowl runtime build --engine docker"
    if runtime:
        cmd += f" --runtime {runtime}"
    if image != f"{IMAGE_REPO}:{runtime}":
        cmd += f" --image {image}"
    if base_image and base_image != DEFAULT_BASE_IMAGE:
        cmd += f" --base-image {base_image}"
    return cmd


@dataclass(frozen=True)
class ImageCheck:
    """What a run needs to know about its image, from its labels."""

    image: str
    runtime: str | None  # the runtime posebowl built it for (None: not built by posebowl)
    lock_sha256: str | None  # the SHA-256 of the lock it was built from (None: unknown)
    base_image: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def foreign(self) -> bool:
        """True for an image posebowl did not build (the official one, a user's own)."""
        return self.lock_sha256 is None

    def describe(self) -> str:
        """The runtime as a run's log names it: the runtime's name, or the image's."""
        if self.foreign:
            return f"image {self.image}, lock unknown (not built by posebowl)"
        return self.runtime or f"image {self.image}"


def read_image(docker: str, image: str) -> ImageCheck:
    """What ``image``'s labels say; SetupError when there is no such image here."""
    labels = image_labels(docker, image)
    if labels is None:
        raise SetupError(f"The Docker image {image} is not on this machine.", BUILD_HINT)
    runtime = labels.get(RUNTIME_LABEL)
    runtime = None if runtime in (None, "", UNKNOWN) else runtime
    base = labels.get(BASE_LABEL) or None
    if not built_by_posebowl(labels):
        return ImageCheck(
            image,
            None,
            None,
            base,
            notes=(
                f"image {image} was not built by posebowl (no {LOCK_LABEL} label): the lock "
                "is unknown, and its packages may differ from the platform's; posebowl mounts "
                "its entrypoint and runs the image's own python",
            ),
        )
    return ImageCheck(image, runtime, labels[LOCK_LABEL], base)


def judge(check: ImageCheck, expected_lock: str | None) -> ImageCheck:
    """``check`` if the image may be run by a run expecting ``expected_lock`` (None: no lock to
    compare with, said in a note); SetupError for an image posebowl built from another lock."""
    if check.foreign:
        return check
    assert check.lock_sha256 is not None
    lock, image = check.lock_sha256, check.image
    if expected_lock is None:
        note = f"image {image}: no runtime lock to compare it with (it says {lock[:12]}...)"
        return dataclasses.replace(check, notes=(*check.notes, note))
    if lock != expected_lock:
        what = f"the {check.runtime} runtime" if check.runtime else "its runtime"
        raise SetupError(
            f"The Docker image {image} was built by posebowl from another lock of {what} "
            f"({lock[:12]}...) than the one this run expects ({expected_lock[:12]}...).",
            f"Rebuild it: {rebuild_command(image, check.runtime, check.base_image)}.",
        )
    return check


def check_image(docker: str, image: str, expected_lock: str | None) -> ImageCheck:
    """Check ``image`` before a run (:func:`read_image`, then :func:`judge`): SetupError when
    it is missing, or when posebowl built it from another lock than ``expected_lock``."""
    return judge(read_image(docker, image), expected_lock)


def build_image(
    definition: Spec,
    image: str,
    docker: str | None = None,
    echo: Echo | None = None,
    base_image: str | None = None,
    force: bool = False,
) -> ImageBuild:
    """Build the image of the runtime ``definition`` offline from its lock (:func:`build`) in
    the current workspace, once a daemon answers; nothing happens when an image with the same
    lock, base and context is there."""
    from posebowl import workspace

    problem = definition.problem()
    if problem:
        raise SetupError(f"The runtime lock is not usable: {problem}.", "Run make lock.")
    exe = daemon.answering(docker)
    return build(
        definition, workspace.find(), image, exe, base_image=base_image, force=force, echo=echo
    )


def pull_image(image: str, docker: str | None = None, echo: Echo | None = None) -> None:
    """``docker pull`` a published runtime image; SetupError saying what to do offline."""
    if image.startswith(f"{IMAGE_REPO}:"):
        raise SetupError(
            f"{image} is the name of a locally built image; posebowl publishes none by default.",
            "Pass the published name: make pull IMAGE=registry/name:tag (then run with --image "
            "registry/name:tag), or build it: ENGINE=docker make build.",
        )
    exe = daemon.answering(docker)
    rc, last = _stream([exe, "pull", image], echo)
    if rc != 0:
        raise SetupError(
            f"docker pull {image} failed (exit code {rc}): {daemon.tail(last, 2)}",
            "Check the name and your network. " + OFFLINE_HINT,
        )
