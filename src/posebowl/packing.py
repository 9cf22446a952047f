"""Pack a folder into a reproducible ``submission.zip``, and open submission zips safely.

Packing: ``main.sh`` must sit at the folder's root; caches and VCS folders are skipped; entries
are sorted with a fixed timestamp and fixed permissions, so packing the same folder twice gives
byte-identical zips. Opening (:func:`inspect_zip` / :func:`extract_zip`) rejects what would
escape or flood the sandbox: absolute paths, ``..``, symlinks, too many entries, zip bombs.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from posebowl.errors import InvalidSubmissionError, PackError, SetupError
from posebowl.findings import Violation

ENTRYPOINT = "main.sh"
SKIP_DIRS = frozenset({"__pycache__", ".git", ".ipynb_checkpoints", ".hg", ".svn"})
SKIP_FILES = frozenset({".DS_Store"})
SKIP_SUFFIXES = (".pyc", ".pyo")
FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip can hold
LARGE_ZIP_BYTES = 1 << 30
MAX_ENTRIES = 100_000
MAX_UNCOMPRESSED_BYTES = 20 << 30  # 20 GiB; configurable per call


@dataclass(frozen=True)
class PackResult:
    path: Path
    files: int
    bytes_in: int
    bytes_out: int
    #: top-level dotfiles and dot-folders left out (``.env``, ``.venv``...), as the official
    #: ``zip -r ../submission.zip ./*`` leaves them out
    left_out: tuple[str, ...] = ()

    @property
    def large(self) -> bool:
        return self.bytes_out > LARGE_ZIP_BYTES


def _skipped(rel: PurePosixPath) -> bool:
    if any(part in SKIP_DIRS for part in rel.parts[:-1]):
        return True
    return rel.name in SKIP_FILES or rel.name.endswith(SKIP_SUFFIXES) or rel.name in SKIP_DIRS


def _walk(src: Path) -> Iterator[tuple[PurePosixPath, Path]]:
    """Yield (archive name, real file) for every file to pack, sorted; symlinks resolved."""
    root = src.resolve()
    for dirpath, dirnames, filenames in os.walk(src, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        base = Path(dirpath)
        linked_dirs = [d for d in dirnames if (base / d).is_symlink()]
        for name in sorted([*filenames, *linked_dirs]):
            path = base / name
            rel = PurePosixPath(path.relative_to(src).as_posix())
            if _skipped(rel):
                continue
            if path.is_symlink():
                target = path.resolve()
                if not target.is_relative_to(root):
                    raise PackError(
                        f"{path} is a symlink to {target}, outside {src}.",
                        "Copy the file into the folder instead of linking to it.",
                    )
                if target.is_dir():
                    raise PackError(
                        f"{path} is a symlink to a folder.",
                        "Replace it with a real folder (zips cannot hold links safely).",
                    )
            yield rel, path


def _mode(path: Path) -> int:
    """0o755 for executables, else 0o644: stable across machines and umasks."""
    return 0o755 if os.access(path, os.X_OK) else 0o644


def pack(
    src: str | Path, out: str | Path, force: bool = False, dotfiles: bool = False
) -> PackResult:
    """Zip ``src`` into ``out`` reproducibly; refuse to overwrite unless ``force``.

    Top-level names starting with a dot (``.env``, ``.venv``, ``.cache``) are left out, as
    the official ``zip -r ../submission.zip ./*`` leaves them out (the shell's ``*`` skips
    them), unless ``dotfiles``; they are named in the result.
    """
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise PackError(f"{src} is not a folder.", "Pass the folder that holds main.sh.")
    if not (src / ENTRYPOINT).is_file():
        nested = sorted(str(p.relative_to(src)) for p in src.rglob(ENTRYPOINT))
        hint = f" (found {', '.join(nested[:3])}: move it to the top)" if nested else ""
        raise PackError(
            f"{src} has no {ENTRYPOINT} at its root{hint}.",
            f"The platform runs {ENTRYPOINT} from the top of the zip; put it there.",
        )
    if out.exists() and not force:
        raise PackError(
            f"{out} already exists.",
            "Delete it first (make clean) or pass --force to overwrite it.",
        )
    entries = list(_walk(src))
    out_abs = out.resolve()
    entries = [(rel, p) for rel, p in entries if p.resolve() != out_abs]
    left_out: list[str] = []
    if not dotfiles:
        left_out = sorted({rel.parts[0] for rel, _ in entries if rel.parts[0].startswith(".")})
        entries = [(rel, p) for rel, p in entries if not rel.parts[0].startswith(".")]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    bytes_in = 0
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
            for rel, path in entries:
                info = zipfile.ZipInfo(str(rel), date_time=FIXED_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.create_system = 3  # unix, so the mode below is honoured
                info.external_attr = (stat.S_IFREG | _mode(path)) << 16
                try:
                    data = path.read_bytes()
                except OSError as exc:
                    raise PackError(
                        f"Cannot read {path} ({exc.strerror}).",
                        "Fix its permissions or remove it from the folder.",
                    ) from exc
                bytes_in += len(data)
                zf.writestr(info, data)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return PackResult(out, len(entries), bytes_in, out.stat().st_size, tuple(left_out))


@dataclass(frozen=True)
class ZipEntry:
    name: str  # normalised: no "./" parts, "/" separators
    size: int


#: What the platform's ``unzip`` (Info-ZIP 6.0) can extract; anything else fails there.
SUPPORTED_COMPRESSION = {
    zipfile.ZIP_STORED: "stored",
    zipfile.ZIP_DEFLATED: "deflate",
    zipfile.ZIP_BZIP2: "bzip2",
}
MAX_NAME_BYTES = 4096  # PATH_MAX: a longer path cannot be created
MAX_PART_BYTES = 255  # NAME_MAX: nor a longer file or folder name
#: what opening or reading a hostile zip may raise (zipfile, zlib, bz2 and the OS underneath)
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
    RuntimeError,
    struct.error,
    UnicodeDecodeError,
    IndexError,
    KeyError,
)


def _refuse(rule: str, message: str) -> InvalidSubmissionError:
    return InvalidSubmissionError([Violation(rule, message)], what="submission zip")


def normalise(name: str) -> str:
    """The path an entry extracts to: backslashes as separators, no empty or "." parts."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    return "/".join(parts)


def _is_dir(info: zipfile.ZipInfo) -> bool:
    return info.filename.endswith("/")  # ZipInfo.is_dir() fails on an empty name


def _name_problem(info: zipfile.ZipInfo) -> Violation | None:
    name = info.filename
    pure = PurePosixPath(name.replace("\\", "/"))
    norm = normalise(name)
    if pure.is_absolute() or name.startswith(("/", "\\")) or (pure.parts and ":" in pure.parts[0]):
        return Violation("absolute_path", f"entry {name!r} has an absolute path")
    if ".." in pure.parts:
        return Violation("path_traversal", f"entry {name!r} contains '..'")
    if not norm and not _is_dir(info):
        return Violation("empty_name", f"an entry has no file name ({name!r})")
    if len(norm.encode()) > MAX_NAME_BYTES or any(
        len(p.encode()) > MAX_PART_BYTES for p in norm.split("/")
    ):
        return Violation(
            "name_too_long",
            f"entry {name[:60]!r}... has a name longer than a file system allows "
            f"({MAX_PART_BYTES} bytes a part, {MAX_NAME_BYTES} in all)",
        )
    if stat.S_ISLNK(info.external_attr >> 16):
        return Violation("symlink", f"entry {name!r} is a symbolic link")
    if info.flag_bits & 0x1:
        return Violation("encrypted", f"entry {name!r} is encrypted (the platform cannot unzip it)")
    if info.compress_type not in SUPPORTED_COMPRESSION:
        known = ", ".join(SUPPORTED_COMPRESSION.values())
        return Violation(
            "compression",
            f"entry {name!r} uses compression method {info.compress_type}, which the "
            f"platform's unzip cannot extract (use {known}; `posebowl pack` uses deflate)",
        )
    return None


def _clash_problems(names: list[tuple[str, bool]]) -> list[Violation]:
    """Entries that extract to the same path, or a file where a folder must be."""
    files: set[str] = set()
    dirs: set[str] = set()
    out: list[Violation] = []
    for norm, is_dir in names:
        if not norm:
            continue
        parents = norm.split("/")[:-1]
        for k in range(1, len(parents) + 1):
            dirs.add("/".join(parents[:k]))
        if is_dir:
            dirs.add(norm)
        elif norm in files:
            out.append(Violation("duplicate", f"two entries extract to {norm!r}"))
        else:
            files.add(norm)
    for both in sorted(files & dirs):
        out.append(Violation("name_clash", f"{both!r} is both a file and a folder in the zip"))
    return out


def inspect_zip(
    path: str | Path,
    max_entries: int = MAX_ENTRIES,
    max_bytes: int = MAX_UNCOMPRESSED_BYTES,
) -> list[ZipEntry]:
    """List a submission zip, raising InvalidSubmissionError for anything unsafe in it.

    Whatever the bytes, the outcome is the list of entries or InvalidSubmissionError (never
    another exception): names that escape, clash or cannot be created, links, encryption,
    compression the platform cannot extract, too many entries or bytes, a damaged archive.
    """
    p = Path(path)
    if not p.is_file():
        raise PackError(f"{p} does not exist.", "Pack one first: posebowl pack SRC_DIR.")
    try:
        with zipfile.ZipFile(p) as zf:
            infos = zf.infolist()
    except _ZIP_ERRORS as exc:
        raise _refuse("bad_zip", f"{p.name} is not a valid zip file ({exc})") from exc
    problems: list[Violation] = []
    if len(infos) > max_entries:
        raise _refuse("too_many_entries", f"{len(infos)} entries, more than {max_entries}")
    entries: list[ZipEntry] = []
    total = 0
    for info in infos:
        problem = _name_problem(info)
        if problem is not None:
            problems.append(problem)
            continue
        if _is_dir(info):
            continue
        total += info.file_size
        entries.append(ZipEntry(normalise(info.filename), info.file_size))
    problems += _clash_problems([(normalise(i.filename), _is_dir(i)) for i in infos])
    if total > max_bytes:
        problems.append(
            Violation(
                "too_large",
                f"uncompressed contents are {total:,} bytes, more than the cap of "
                f"{max_bytes:,} (zip bomb?)",
            )
        )
    if not problems and not any(e.name == ENTRYPOINT for e in entries):
        nested = [e.name for e in entries if PurePosixPath(e.name).name == ENTRYPOINT]
        where = f"; it is at {nested[0]}, move it to the top" if nested else ""
        problems.append(
            Violation("no_main_sh", f"{ENTRYPOINT} is not at the root of the zip{where}")
        )
    if problems:
        raise InvalidSubmissionError(problems, what="submission zip")
    return entries


def extract_zip(
    path: str | Path,
    dest: str | Path,
    max_entries: int = MAX_ENTRIES,
    max_bytes: int = MAX_UNCOMPRESSED_BYTES,
) -> list[ZipEntry]:
    """Check ``path`` with :func:`inspect_zip`, then extract it into ``dest``.

    Streams each member and stops if it inflates past its declared size (lying headers); a
    damaged member (bad CRC, corrupt data, a size that lies) is InvalidSubmissionError. Only
    a full disk is the host's problem (SetupError).
    """
    entries = inspect_zip(path, max_entries, max_bytes)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    name = ""
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                name = info.filename
                norm = normalise(name)
                target = dest / norm if norm else dest
                if _is_dir(info):
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                _extract_member(zf, info, target)
    except InvalidSubmissionError:
        raise
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise SetupError(
                f"The disk holding {dest} is full ({exc.strerror}) while unzipping.",
                "Free some space, or set POSEBOWL_TMPDIR to a folder on a larger disk.",
            ) from exc
        raise _refuse("corrupt", f"entry {name!r} cannot be extracted ({exc})") from exc
    except _ZIP_ERRORS as exc:
        raise _refuse("corrupt", f"entry {name!r} cannot be extracted ({exc})") from exc
    return entries


def _extract_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path) -> None:
    written = 0
    with zf.open(info) as src, open(target, "wb") as dst:
        while chunk := src.read(1 << 20):
            written += len(chunk)
            if written > info.file_size:
                raise _refuse(
                    "too_large", f"entry {info.filename!r} inflates past its declared size"
                )
            dst.write(chunk)
    mode = (info.external_attr >> 16) & 0o777
    target.chmod(mode | 0o600 if mode else 0o644)
