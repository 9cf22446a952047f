"""Hostile and damaged zips: every one is refused with a reason (InvalidSubmissionError), never a
crash. Headers are patched byte by byte, as a broken or malicious tool would write them."""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posebowl.errors import InvalidSubmissionError
from posebowl.packing import extract_zip, inspect_zip

LOCAL = b"PK\x03\x04"
CENTRAL = b"PK\x01\x02"
# offsets inside each header (after the 4-byte signature) of the fields we patch
LOCAL_AT = {"flags": 2, "method": 4, "crc": 10, "csize": 14, "usize": 18}
CENTRAL_AT = {"flags": 4, "method": 6, "crc": 12, "csize": 16, "usize": 20}
WIDTH = {"flags": "<H", "method": "<H", "crc": "<I", "csize": "<I", "usize": "<I"}


def build(entries: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = method
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return buf.getvalue()


def patch(raw: bytes, field: str, value: int, entry: int = -1) -> bytes:
    """Set ``field`` of one entry (default: the last) in both its local and central header."""
    out = bytearray(raw)
    for sig, offsets in ((LOCAL, LOCAL_AT), (CENTRAL, CENTRAL_AT)):
        starts = [i for i in range(len(out) - 3) if out[i : i + 4] == sig]
        at = starts[entry] + 4 + offsets[field]
        struct.pack_into(WIDTH[field], out, at, value)
    return bytes(out)


MAIN = ("main.sh", b"echo hi\n")
PAYLOAD = ("model.bin", b"weights " * 500)


def _corrupt_data(raw: bytes) -> bytes:
    """Flip the bytes of the last entry's compressed data (headers left intact)."""
    out = bytearray(raw)
    header = raw.rfind(LOCAL)
    (csize,) = struct.unpack_from("<I", raw, header + 4 + LOCAL_AT["csize"])
    start = header + 30 + len(PAYLOAD[0])
    for k in range(start + 1, start + csize - 1):
        out[k] ^= 0x5A
    return bytes(out)


HOSTILE: dict[str, tuple[Callable[[], bytes], str]] = {
    "empty-name": (lambda: build([MAIN, ("", b"x")]), "empty_name"),
    "file-and-folder": (lambda: build([MAIN, ("a", b"x"), ("a/b", b"y")]), "name_clash"),
    "duplicate": (lambda: build([MAIN, ("x.py", b"1"), ("./x.py", b"2")]), "duplicate"),
    "long-part": (lambda: build([MAIN, ("d/" + "n" * 300, b"x")]), "name_too_long"),
    "long-path": (lambda: build([MAIN, ("/".join(["d" * 200] * 25), b"x")]), "name_too_long"),
    "encrypted": (lambda: patch(build([MAIN, PAYLOAD]), "flags", 0x1), "encrypted"),
    "lzma": (lambda: build([MAIN, PAYLOAD], method=zipfile.ZIP_LZMA), "compression"),
    "unknown-method": (lambda: patch(build([MAIN, PAYLOAD]), "method", 99), "compression"),
    "bad-crc": (lambda: patch(build([MAIN, PAYLOAD]), "crc", 0xDEADBEEF), "corrupt"),
    "corrupt-data": (lambda: _corrupt_data(build([MAIN, PAYLOAD])), "corrupt"),
    "size-smaller": (lambda: patch(build([MAIN, PAYLOAD]), "usize", 10), "corrupt"),
    "truncated": (lambda: build([MAIN, PAYLOAD])[:-30], "bad_zip"),
    "not-a-zip": (lambda: b"PK\x03\x04 surely not", "bad_zip"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_zip_is_a_verdict_not_a_crash(tmp_path: Path, case: str) -> None:
    make, rule = HOSTILE[case]
    z = tmp_path / "submission.zip"
    z.write_bytes(make())
    with pytest.raises(InvalidSubmissionError) as exc:
        extract_zip(z, tmp_path / "work")
    assert rule in [v.rule for v in exc.value.violations], exc.value.violations


@pytest.mark.parametrize(
    "names",
    [
        ["./", "./main.sh", "./src/./a.py"],  # what `cd src && zip -r ../s.zip .` writes
        ["main.sh", "src/", "src/a.py"],
    ],
)
def test_dot_slash_names_extract_as_unzip_does(tmp_path: Path, names: list[str]) -> None:
    z = tmp_path / "s.zip"
    entries = [(n, b"" if n.endswith("/") else b"x\n") for n in names]
    z.write_bytes(build(entries))
    got = extract_zip(z, tmp_path / "w")
    assert sorted(e.name for e in got) == ["main.sh", "src/a.py"]
    assert (tmp_path / "w" / "src" / "a.py").read_bytes() == b"x\n"


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@pytest.mark.slow
@given(flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), max_size=8))
def test_any_damage_is_refused_or_extracted(tmp_path: Path, flips: list[tuple[int, int]]) -> None:
    raw = bytearray(build([MAIN, PAYLOAD, ("src/x.py", b"print(1)\n")]))
    for at, xor in flips:
        raw[at % len(raw)] ^= xor
    z = tmp_path / "f.zip"
    z.write_bytes(bytes(raw))
    work = tmp_path / "w"
    try:
        entries = extract_zip(z, work)
    except InvalidSubmissionError:
        return
    for e in entries:  # whatever was accepted was extracted, inside the folder
        assert (work / e.name).resolve().is_relative_to(work.resolve())


def test_inspect_names_every_problem_at_once(tmp_path: Path) -> None:
    z = tmp_path / "s.zip"
    z.write_bytes(patch(build([MAIN, ("../x", b"1"), ("a", b"x"), ("a/b", b"y")]), "flags", 1))
    with pytest.raises(InvalidSubmissionError) as exc:
        inspect_zip(z)
    assert {"path_traversal", "name_clash", "encrypted"} <= {v.rule for v in exc.value.violations}
