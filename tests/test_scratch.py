"""Scratch folders are removed whatever the submission left in them."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from posebowl import scratch


def _deep(root: Path, depth: int) -> None:
    """A chain of ``depth`` folders, built with relative paths (the full path is too long)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d" * 20, dir_fd=fd)
            new = os.open("d" * 20, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = new
        with open(os.open("leaf.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "w") as f:
            f.write("x")
    finally:
        os.close(fd)


@pytest.mark.slow
def test_a_tree_deeper_than_any_path_is_removed(tmp_path: Path) -> None:
    root = tmp_path / "work"
    root.mkdir()
    _deep(root, 3000)  # 63,000 characters of path: RecursionError and ENAMETOOLONG before
    scratch.remove_tree(root)
    assert not root.exists()


def test_stripped_permissions_links_and_special_files(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    root = tmp_path / "work"
    (root / "locked" / "inner").mkdir(parents=True)
    (root / "locked" / "inner" / "f").write_text("x")
    (root / "link-to-outside").symlink_to(outside)
    (root / "locked" / "file-link").symlink_to(outside / "keep.txt")
    os.mkfifo(root / "fifo")
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(root / "sock"))
    (root / "locked" / "inner").chmod(0)
    (root / "locked").chmod(0)
    scratch.remove_tree(root)
    assert not root.exists()
    assert (outside / "keep.txt").read_text() == "keep"  # links are never followed


def test_wide_folders_and_a_missing_path(tmp_path: Path) -> None:
    root = tmp_path / "work"
    for k in range(300):
        (root / f"d{k}").mkdir(parents=True)
        (root / f"d{k}" / "f").write_text("x")
    scratch.remove_tree(root)
    assert not root.exists()
    scratch.remove_tree(root)  # already gone: nothing to do


def test_folder_context_removes_on_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(scratch.TMPDIR_ENV, str(tmp_path))
    with pytest.raises(RuntimeError), scratch.folder() as d:
        (d / "x").write_text("x")
        raise RuntimeError
    assert list(tmp_path.iterdir()) == []
