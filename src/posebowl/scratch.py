"""Scratch folders: made for one run, removed however the run ends, whatever is inside.

A submission writes what it likes into its working folder: trees thousands of folders deep
(longer than any path the OS accepts), folders it made unreadable, millions of files.
:func:`remove_tree` removes all of it without recursion and without long paths: it walks with
directory file descriptors (``openat``/``unlinkat``), holding one open at a time, and gives
itself back the permissions a folder was stripped of. It never follows a symbolic link.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

TMPDIR_ENV = "POSEBOWL_TMPDIR"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _open_dir(name: str, dir_fd: int | None) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except PermissionError:
        os.chmod(name, stat.S_IRWXU, dir_fd=dir_fd, follow_symlinks=False)
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)


def _clear(fd: int) -> list[str]:
    """Unlink every non-folder in the open folder ``fd``; return its sub-folders' names."""
    with contextlib.suppress(PermissionError):
        os.fchmod(fd, stat.S_IRWXU)  # unlinking needs write and search permission
    subdirs = []
    with os.scandir(fd) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                subdirs.append(entry.name)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.name, dir_fd=fd)
    return subdirs


def remove_tree(path: str | Path) -> None:
    """Remove ``path`` and everything under it (a file or link is just unlinked)."""
    path = Path(path)
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        path.unlink()
        return
    fd = _open_dir(str(path), None)
    # one frame per open level: (this folder's name in its parent, sub-folders still to do)
    stack: list[tuple[str, list[str]]] = [("", _clear(fd))]
    try:
        while stack:
            name, todo = stack[-1]
            if todo:
                child = todo.pop()
                try:
                    child_fd = _open_dir(child, fd)
                except FileNotFoundError:
                    continue
                os.close(fd)
                fd = child_fd
                stack.append((child, _clear(fd)))
                continue
            leftover = _clear(fd)  # anything that appeared meanwhile
            if leftover:
                stack[-1] = (name, leftover)
                continue
            stack.pop()
            if not stack:
                break
            parent = os.open("..", _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = parent
            with contextlib.suppress(FileNotFoundError):
                os.rmdir(name, dir_fd=fd)
    finally:
        os.close(fd)
    path.rmdir()


def make(prefix: str = "posebowl-run-") -> Path:
    """A new private folder under $POSEBOWL_TMPDIR (default: the system's temporary folder)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=os.environ.get(TMPDIR_ENV)))


@contextlib.contextmanager
def folder(prefix: str = "posebowl-run-") -> Iterator[Path]:
    """``with scratch.folder() as d:`` a new folder, removed with all its contents at the end."""
    d = make(prefix)
    try:
        yield d
    finally:
        remove_tree(d)
