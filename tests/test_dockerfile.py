"""runtime/Dockerfile is built from the same definition as the bwrap runtime (no daemon needed):
the same Python, the same hashed lock, the platform's layout, a non-root user, posebowl's
entrypoint; hadolint when installed; and the lock's compiled libraries need nothing that the
slim base image lacks."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from posebowl import runtimes, workspace
from posebowl import sandbox as base
from posebowl.cli.runtime import TESTS_IN_SANDBOX
from posebowl.engines import docker as docker_mod
from posebowl.runtimes.locate import STAMP
from posebowl.runtimes.locks import PYTHON_VERSION

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = runtimes.DEFINITION / "Dockerfile"
SLIM_VENV = workspace.find().runtime_venv("slim")
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


def args_of(name: str) -> list[str]:
    return [a for k, a in instructions() if k == name]


def test_the_base_image_is_pinned_to_the_runtimes_python():
    (image,) = args_of("FROM")
    m = BASE_IMAGE.match(image)
    assert m, f"FROM {image}: pin python:X.Y.Z-slim-<debian release>"
    assert f"{m[1]}.{m[2]}" == PYTHON_VERSION
    assert not any("latest" in a.lower() for _, a in instructions())


def test_the_bwrap_runtime_has_the_same_python_when_built():
    cfg = SLIM_VENV / "pyvenv.cfg"
    if not cfg.is_file():
        pytest.skip("the runtime venv is not built (make build)")
    version = re.search(r"^version(?:_info)?\s*=\s*(\d+\.\d+)", cfg.read_text(), re.M)
    (image,) = args_of("FROM")
    m = BASE_IMAGE.match(image)
    assert version and m and version[1] == f"{m[1]}.{m[2]}"


def test_it_installs_exactly_the_hashed_lock():
    copies = args_of("COPY")
    assert "runtime/requirements.txt /opt/posebowl/requirements.txt" in copies
    installs = [r for r in args_of("RUN") if " install " in r]
    assert len(installs) == 1
    cmd = installs[0]
    for flag in ("--require-hashes", "--no-deps", "--only-binary :all:"):
        assert flag in cmd
    assert "-r /opt/posebowl/requirements.txt" in cmd
    assert "venv --without-pip" in cmd  # nothing but the lock in the venv, as in bwrap's


def test_the_layout_user_entrypoint_and_labels():
    text = " ".join(a for _, a in instructions())
    for path in (base.DATA, base.SUBMISSION, base.WORKDIR):
        assert path in text
    assert args_of("WORKDIR") == [base.WORKDIR]
    users = args_of("USER")
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert json.loads(args_of("ENTRYPOINT")[-1]) == ["sh", base.ENTRYPOINT]
    copies = args_of("COPY")
    assert f"src/posebowl/run/entrypoint.sh {base.ENTRYPOINT}" in copies
    assert f"runtime/tests {TESTS_IN_SANDBOX}" in copies
    assert any(f'{docker_mod.LOCK_LABEL}="${{LOCK_SHA256}}"' in a for a in args_of("LABEL"))
    assert any(a.startswith("LOCK_SHA256") for a in args_of("ARG"))


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
