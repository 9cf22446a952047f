"""runtime/Dockerfile is built from the same definition as the bwrap runtime: the same Python,
the same hashed lock installed offline from a wheelhouse, the platform's layout, a non-root user,
posebowl's entrypoint; hadolint when installed; the lock's compiled libraries need nothing that
the slim base image lacks. Without a daemon: the Dockerfile's structure, the staged context and
the pip command lines. With a real daemon (marked docker): a small image really built offline on
the stand-in base, rebuilt as a no-op, and a tampered wheel refused by the in-build hash check."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from posebowl import runtimes, workspace
from posebowl import sandbox as base
from posebowl.cli.runtime import TESTS_IN_SANDBOX
from posebowl.engines.docker import image as di
from posebowl.runtimes.locate import STAMP

from .sandbox_helpers import stand_in_problem

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = runtimes.DEFINITION / "Dockerfile"
LOCK = runtimes.spec("slim").lock
TESTS = runtimes.DEFINITION / "tests"
WS = workspace.find()
SLIM_VENV = WS.runtime_venv("slim")
BASE_IMAGE = re.compile(r"^python:(\d+)\.(\d+)\.(\d+)-slim-([a-z]+)$")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending += " " + line.removesuffix("\\").strip() if pending else line.removesuffix("\\")
        if not line.endswith("\\"):
            word, _, rest = pending.strip().partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
            pending = ""
    return out


def stages() -> list[list[tuple[str, str]]]:
    """The instructions of each build stage (what comes before the first FROM is dropped)."""
    out: list[list[tuple[str, str]]] = []
    for k, a in instructions():
        if k == "FROM":
            out.append([])
        if out:
            out[-1].append((k, a))
    return out


def args_of(name: str, within: list[tuple[str, str]] | None = None) -> list[str]:
    return [a for k, a in (instructions() if within is None else within) if k == name]


def default_base() -> str:
    (first_k, first_a) = instructions()[0]
    assert first_k == "ARG" and first_a.startswith("BASE_IMAGE="), "ARG BASE_IMAGE=... first"
    return first_a.split("=", 1)[1]


def test_the_base_image_is_a_parameter_pinned_to_the_runtimes_python():
    image = default_base()
    assert image == di.DEFAULT_BASE_IMAGE
    m = BASE_IMAGE.match(image)
    assert m, f"ARG BASE_IMAGE={image}: pin python:X.Y.Z-slim-<debian release>"
    assert f"{m[1]}.{m[2]}" == runtimes.locks.PYTHON_VERSION == di.PYTHON_VERSION
    assert all(a.split()[0] == "${BASE_IMAGE}" for a in args_of("FROM"))
    assert not any("latest" in a.lower() for _, a in instructions())


def test_the_bwrap_runtime_has_the_same_python_when_built():
    cfg = SLIM_VENV / "pyvenv.cfg"
    if not cfg.is_file():
        pytest.skip("the runtime venv is not built (make build)")
    version = re.search(r"^version(?:_info)?\s*=\s*(\d+\.\d+)", cfg.read_text(), re.M)
    m = BASE_IMAGE.match(default_base())
    assert version and m and version[1] == f"{m[1]}.{m[2]}"


def test_it_installs_exactly_the_hashed_lock_offline_from_the_wheelhouse():
    install, final = stages()
    assert "requirements.txt /opt/posebowl/requirements.txt" in args_of("COPY", install)
    installs = [r for r in args_of("RUN") if " install " in r]
    assert len(installs) == 1 and installs[0] in args_of("RUN", install)
    cmd = installs[0]
    for flag in ("--require-hashes", "--no-deps", "--only-binary :all:", "--no-index"):
        assert flag in cmd
    assert "--find-links /tmp/wheels" in cmd and "-r /opt/posebowl/requirements.txt" in cmd
    assert "venv --without-pip" in cmd  # nothing but the lock in the venv, as in bwrap's
    # the base's pip is never used: the lock's pip wheel installs the lock
    assert "/tmp/wheels/pip-*.whl" in cmd and " -m pip" not in cmd
    # the wheels stay in the first stage: the image gets the venv only
    assert not any("wheels" in a for a in args_of("COPY", final))
    assert "--from=install /opt/posebowl/venv /opt/posebowl/venv" in args_of("COPY", final)


def test_the_layout_user_entrypoint_path_and_labels():
    _, final = stages()
    text = " ".join(a for _, a in final)
    for path in (base.DATA, base.SUBMISSION, base.WORKDIR):
        assert path in text
    assert args_of("WORKDIR", final) == [base.WORKDIR]
    users = args_of("USER", final)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert json.loads(args_of("ENTRYPOINT", final)[-1]) == ["sh", base.ENTRYPOINT]
    copies = args_of("COPY", final)
    # posebowl's scripts, beside each other (the entrypoint finds confine.py next to itself)
    assert f"entrypoint.sh confine.py {base.TOOLS}/" in copies
    assert f"{base.TOOLS}/entrypoint.sh" == base.ENTRYPOINT
    assert f"{base.TOOLS}/confine.py" == base.CONFINE
    assert f"runtime-tests {TESTS_IN_SANDBOX}" in copies
    labels = " ".join(args_of("LABEL", final))
    for label, arg in (
        (di.LOCK_LABEL, "LOCK_SHA256"),
        (di.RUNTIME_LABEL, "RUNTIME"),
        (di.CONTEXT_LABEL, "CONTEXT_SHA256"),
        (di.BASE_LABEL, "BASE_IMAGE"),
    ):
        assert f'{label}="${{{arg}}}"' in labels
    # useradd/groupadd live in /usr/sbin; the venv first on PATH, the system's sbin after it
    assert "/usr/sbin/groupadd" in text and "/usr/sbin/useradd" in text
    (env,) = args_of("ENV", final)
    path = re.search(r"PATH=(\S+)", env)[1].split(":")
    assert path[0] == "/opt/posebowl/venv/bin" and "/usr/sbin" in path and "/usr/bin" in path


def test_the_staged_context_holds_exactly_what_the_dockerfile_copies(tmp_path):
    wheels = tmp_path / "wheelhouse"
    wheels.mkdir()
    (wheels / "pip-26.3-py3-none-any.whl").write_bytes(b"wheel")
    ctx = di.stage_context(tmp_path / "ctx", LOCK, TESTS)
    di.add_wheels(ctx, wheels)
    # (every source of each COPY: all its words but the last, the destination)
    sources = {w for a in args_of("COPY") if not a.startswith("--from") for w in a.split()[:-1]}
    assert {p.name for p in ctx.iterdir()} == sources
    assert (ctx / "requirements.txt").read_bytes() == LOCK.read_bytes()
    staged = ctx / "wheels" / "pip-26.3-py3-none-any.whl"
    assert staged.stat().st_ino == (wheels / staged.name).stat().st_ino  # a hard link
    assert not list(ctx.rglob("__pycache__"))
    # the context hash covers the Dockerfile and the files, not the wheels (the lock pins them)
    h = di.context_sha256(DOCKERFILE, ctx)
    staged.unlink()
    assert di.context_sha256(DOCKERFILE, ctx) == h
    (ctx / "entrypoint.sh").write_text("changed")
    assert di.context_sha256(DOCKERFILE, ctx) != h


def test_every_lock_entry_has_hashes():
    entries = di.read_lock(LOCK)
    names = [e.name for e in entries]
    assert len(entries) > 30 and len(set(names)) == len(names)
    assert {"numpy", "onnxruntime", "openvino", "pip"} <= set(names)
    assert all(e.hashes for e in entries)


def test_pip_download_asks_for_every_manylinux_tag_the_image_can_load():
    argv = di.download_argv("python", LOCK, Path("/wh"))
    tags = [argv[i + 1] for i, a in enumerate(argv) if a == "--platform"]
    # onnxruntime and pillow ship manylinux_2_28 wheels only, numpy manylinux_2_17, openvino
    # and protobuf are tagged with the legacy alias manylinux2014 only: pip needs each literally
    for tag in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"):
        assert tag in tags
    assert tags[0] == "manylinux_2_28_x86_64" and "manylinux_2_29_x86_64" not in tags
    assert argv[argv.index("--python-version") + 1] == runtimes.locks.PYTHON_VERSION
    for flag in ("--require-hashes", "--no-deps", "--only-binary"):
        assert flag in argv
    assert argv[argv.index("--abi") + 1] == "cp311"


def test_the_wheelhouse_check_names_what_is_missing_extra_or_doubled(tmp_path):
    entries = [
        di.LockEntry("numpy", "1", frozenset()),
        di.LockEntry("typing-extensions", "4", frozenset()),
    ]
    (tmp_path / "typing_extensions-4-py3-none-any.whl").touch()
    assert di.wheelhouse_problem(entries, tmp_path) == "no wheel for numpy"
    (tmp_path / "numpy-1-cp311-cp311-manylinux_2_17_x86_64.whl").touch()
    assert di.wheelhouse_problem(entries, tmp_path) is None
    (tmp_path / "numpy-1-cp311-cp311-manylinux_2_28_x86_64.whl").touch()
    (tmp_path / "six-1-py3-none-any.whl").touch()
    problem = di.wheelhouse_problem(entries, tmp_path)
    assert "more than one wheel for numpy" in problem and "not in the lock: six" in problem


def test_the_build_command_is_offline_and_labelled():
    argv = di.build_argv(
        "docker", Path("/ctx"), DOCKERFILE, "img:1", "base:1", "slim", "a" * 64, "b" * 64
    )
    assert argv[:4] == ["docker", "build", "--network", "none"]
    assert argv[argv.index("--platform") + 1] == "linux/amd64"
    build_args = {argv[i + 1] for i, a in enumerate(argv) if a == "--build-arg"}
    assert {"BASE_IMAGE=base:1", "RUNTIME=slim", f"LOCK_SHA256={'a' * 64}"} <= build_args
    assert argv[-1] == "/ctx" and argv[argv.index("--file") + 1] == str(DOCKERFILE)


@pytest.mark.skipif(
    not (Path(sys.executable).parent / "hadolint").exists() and not shutil.which("hadolint"),
    reason="hadolint is not installed (dev extra, Linux x86_64 only)",
)
def test_hadolint_passes():
    exe = Path(sys.executable).parent / "hadolint"
    hadolint = str(exe) if exe.exists() else shutil.which("hadolint")
    proc = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- shared libraries ---------------------------------------------------------------------------
#: What python:3.11-slim-bookworm has in /lib and /usr/lib: libc6, libgcc-s1, libstdc++6 (apt
#: needs it), zlib1g.
SLIM_LIBS = {
    "ld-linux-x86-64.so.2",
    "libc.so.6",
    "libdl.so.2",
    "libm.so.6",
    "libpthread.so.0",
    "librt.so.1",
    "libutil.so.1",
    "libgcc_s.so.1",
    "libstdc++.so.6",
    "libz.so.1",
}
#: Needed only by OpenVINO's GPU and NPU plugins, which are never loaded on the CPU.
GPU_ONLY = {"libOpenCL.so.1", "libze_loader.so.1"}


def needed(path: Path) -> list[str]:
    """DT_NEEDED entries of a 64-bit little-endian ELF file ([] if it is not one)."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return []
    phoff, phentsize, phnum = (
        struct.unpack_from("<Q", data, 32)[0],
        *struct.unpack_from("<HH", data, 54),
    )
    loads, dynamic = [], None
    for i in range(phnum):
        p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize
        )
        if p_type == 1:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == 2:
            dynamic = (p_offset, p_filesz)
    if dynamic is None:
        return []
    entries, strtab = [], None
    for off in range(dynamic[0], dynamic[0] + dynamic[1], 16):
        tag, val = struct.unpack_from("<qQ", data, off)
        if tag == 0:
            break
        if tag == 1:
            entries.append(val)
        elif tag == 5:
            strtab = val
    if strtab is None:
        return []
    base_off = next(o + strtab - v for v, o, size in loads if v <= strtab < v + size)
    return [data[base_off + e : data.index(b"\0", base_off + e)].decode() for e in entries]


def test_the_locks_libraries_need_nothing_the_slim_image_lacks():
    site = SLIM_VENV / "lib"
    if not (SLIM_VENV / STAMP).is_file():
        pytest.skip("the runtime venv is not built (make build)")
    libs = [p for p in site.rglob("*.so*") if p.is_file()]
    bundled = {p.name for p in libs}
    missing: dict[str, str] = {}
    for p in libs:
        for name in needed(p):
            if name not in bundled and name not in SLIM_LIBS and name not in GPU_ONLY:
                missing.setdefault(name, str(p.relative_to(site)))
    assert len(libs) > 50  # numpy, opencv, onnxruntime, openvino, ... were read
    assert not missing, (
        "these libraries are needed by the runtime lock but not in the slim base image; "
        f"apt-get install them in runtime/Dockerfile: {missing}"
    )


# -- real builds (a Docker daemon and the stand-in base) -----------------------------------------
SMALL = ("pip", "click")  # a tiny lock: the lock's own pip (it installs the lock) and one package


def small_lock(tmp_path: Path) -> Path:
    """The slim lock cut down to SMALL (the same pins and hashes), as a runtime "small" of its
    own: the Dockerfile and a tests folder beside it, as the build expects."""
    blocks = re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text())
    keep = [b for b in blocks if "==" in b and di.normalize(b.split("==")[0]) in SMALL]
    assert len(keep) == len(SMALL)
    folder = tmp_path / "runtime"
    (folder / "tests").mkdir(parents=True)
    (folder / "tests" / "test_small.py").write_text("import click\n")
    (folder / "Dockerfile").write_bytes(DOCKERFILE.read_bytes())
    lock = folder / "small.txt"
    lock.write_text("\n".join(keep) + "\n")
    return lock


def small_spec(lock: Path) -> runtimes.Spec:
    return runtimes.Spec("small", lock.parent)


needs_stand_in = pytest.mark.skipif(
    stand_in_problem() is not None, reason=f"no real Docker build here: {stand_in_problem()}"
)


def _docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture
def small_image(tmp_path):
    name = f"posebowl-test-small:{os.getpid()}"
    yield name
    _docker("image", "rm", "--force", name)
    lock = tmp_path / "runtime" / "small.txt"
    sha = hashlib.sha256(lock.read_bytes()).hexdigest()
    di.prune_stages("docker", runtime="small", only_lock=sha)


@pytest.mark.docker
@pytest.mark.slow
@needs_stand_in
def test_a_small_image_builds_offline_on_the_stand_in_and_rebuilds_as_a_no_op(
    tmp_path, small_image
):
    lock = small_lock(tmp_path)
    lines: list[str] = []
    built = di.build(
        small_spec(lock), WS, small_image, "docker", base_image=di.STAND_IN_BASE_IMAGE,
        force=True, echo=lines.append,
    )  # fmt: skip
    assert built.changed, "\n".join(lines[-20:])
    labels = di.image_labels("docker", small_image)
    assert labels[di.LOCK_LABEL] == hashlib.sha256(lock.read_bytes()).hexdigest()
    assert labels[di.RUNTIME_LABEL] == "small"
    assert labels[di.BASE_LABEL] == di.STAND_IN_BASE_IMAGE
    probe = (
        "import click, importlib.metadata as m, sys;"
        "print(sys.prefix, click.__version__);"
        "print(sorted(d.metadata['Name'].lower() for d in m.distributions()))"
    )
    run = _docker(
        "run", "--rm", "--network", "none", "--entrypoint", "python", small_image, "-c", probe
    )
    assert run.returncode == 0, run.stderr
    click_pin = next(e.version for e in di.read_lock(lock) if e.name == "click")
    assert run.stdout.splitlines() == [f"/opt/posebowl/venv {click_pin}", str(sorted(SMALL))]
    # (exactly the lock: no setuptools, no base packages) and the wheelhouse stayed in the
    # build's first stage (the stand-in's Debian keeps its own in /usr/share/python-wheels)
    find = "ls -d /tmp/wheels; find / -xdev -name 'click-*.whl' -o -name 'pip-26*.whl'"
    found = _docker(
        "run", "--rm", "--network", "none", "--entrypoint", "sh", small_image, "-c", find
    )
    assert found.stdout == "", found.stdout
    who = _docker("run", "--rm", "--network", "none", "--entrypoint", "id", small_image, "-u")
    assert who.stdout.strip() == str(base.UID)
    again = di.build(small_spec(lock), WS, small_image, "docker", base_image=di.STAND_IN_BASE_IMAGE)
    assert not again.changed and again.build_s == 0.0
    # a change to anything but the lock rebuilds from the cached first stage (no reinstall)
    (lock.parent / "tests" / "test_small.py").write_text("import click  # changed\n")
    lines.clear()
    changed = di.build(
        small_spec(lock), WS, small_image, "docker", base_image=di.STAND_IN_BASE_IMAGE,
        echo=lines.append,
    )  # fmt: skip
    assert changed.changed
    installs = [i for i, ln in enumerate(lines) if "pip" in ln and "--require-hashes" in ln]
    assert installs and any(
        "Using cache" in ln or "CACHED" in ln for ln in lines[installs[0] : installs[0] + 3]
    ), "\n".join(lines)


@pytest.mark.docker
@pytest.mark.slow
@needs_stand_in
def test_a_tampered_wheel_is_refused_by_the_hash_check_inside_the_build(tmp_path, small_image):
    lock = small_lock(tmp_path)
    wheels = di.ensure_wheelhouse(lock, di.wheelhouse_cache(WS))
    ctx = di.stage_context(tmp_path / "ctx", lock, lock.parent / "tests")
    di.add_wheels(ctx, wheels.folder)
    (click,) = (ctx / "wheels").glob("click-*.whl")
    data = click.read_bytes()
    click.unlink()  # a new file: the cached wheel (hard-linked here) stays intact
    with zipfile.ZipFile(click, "w") as zf, zipfile.ZipFile(wheels.folder / click.name) as orig:
        for item in orig.infolist():
            body = orig.read(item)
            zf.writestr(item, body + b"\n# tampered\n" if item.filename.endswith(".py") else body)
    assert click.read_bytes() != data
    sha = hashlib.sha256(lock.read_bytes()).hexdigest()
    argv = di.build_argv(
        "docker", ctx, DOCKERFILE, small_image, di.STAND_IN_BASE_IMAGE, "small", sha, "y"
    )
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    assert "DO NOT MATCH THE HASHES" in proc.stdout + proc.stderr
    assert (wheels.folder / click.name).read_bytes() == data
