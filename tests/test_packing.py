import hashlib
import os
import stat
import zipfile
from pathlib import Path

import pytest

from posebowl.errors import InvalidSubmissionError, PackError
from posebowl.packing import extract_zip, inspect_zip, pack


def make_src(root: Path) -> Path:
    src = root / "src"
    (src / "pkg" / "__pycache__").mkdir(parents=True)
    (src / "main.sh").write_text("python main.py\n")
    (src / "main.sh").chmod(0o755)
    (src / "main.py").write_text("print('hi')\n")
    (src / "pkg" / "model.bin").write_bytes(os.urandom(1000))
    (src / "pkg" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"x")
    (src / "pkg" / "y.pyc").write_bytes(b"x")
    (src / ".git").mkdir()
    (src / ".git" / "HEAD").write_text("ref")
    (src / ".DS_Store").write_bytes(b"x")
    (src / ".ipynb_checkpoints").mkdir()
    (src / ".ipynb_checkpoints" / "nb.ipynb").write_text("{}")
    return src


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_pack_is_byte_reproducible(tmp_path):
    src = make_src(tmp_path)
    a = pack(src, tmp_path / "a.zip")
    os.utime(src / "main.py", (1, 1))  # timestamps must not matter
    b = pack(src, tmp_path / "b.zip")
    assert sha(a.path) == sha(b.path)


def test_pack_skips_caches_and_keeps_modes(tmp_path):
    res = pack(make_src(tmp_path), tmp_path / "s.zip")
    with zipfile.ZipFile(res.path) as zf:
        names = zf.namelist()
        assert names == sorted(names) == ["main.py", "main.sh", "pkg/model.bin"]
        assert (zf.getinfo("main.sh").external_attr >> 16) & 0o777 == 0o755
        assert (zf.getinfo("main.py").external_attr >> 16) & 0o777 == 0o644
    assert res.files == 3


def test_pack_refuses_to_overwrite(tmp_path):
    src = make_src(tmp_path)
    out = tmp_path / "s.zip"
    out.write_bytes(b"precious")
    with pytest.raises(PackError, match="already exists.*--force"):
        pack(src, out)
    assert out.read_bytes() == b"precious"
    pack(src, out, force=True)
    assert zipfile.is_zipfile(out)


def test_main_sh_must_be_at_root(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "main.sh").write_text("echo")
    with pytest.raises(PackError, match=r"no main.sh at its root \(found sub/main.sh"):
        pack(src, tmp_path / "s.zip")


def test_empty_folder_and_missing_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(PackError, match="no main.sh"):
        pack(tmp_path / "empty", tmp_path / "s.zip")
    with pytest.raises(PackError, match="is not a folder"):
        pack(tmp_path / "nope", tmp_path / "s.zip")


def test_symlink_outside_is_refused_inside_is_followed(tmp_path):
    src = make_src(tmp_path)
    (tmp_path / "secret.txt").write_text("s")
    (src / "inner.txt").symlink_to(src / "main.py")
    res = pack(src, tmp_path / "ok.zip")
    with zipfile.ZipFile(res.path) as zf:
        assert zf.read("inner.txt") == b"print('hi')\n"
    (src / "leak.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(PackError, match="outside"):
        pack(src, tmp_path / "bad.zip")
    assert not (tmp_path / "bad.zip").exists()


def test_unreadable_file(tmp_path):
    # A socket cannot be read by anyone (root included), so this works for every user.
    import socket

    src = make_src(tmp_path)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(src / "agent.sock"))
    try:
        with pytest.raises(PackError, match="Cannot read .*agent.sock"):
            pack(src, tmp_path / "s.zip")
    finally:
        sock.close()
    assert not (tmp_path / "s.zip").exists()


def _zip(path: Path, entries: dict[str, bytes], link: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        if link:
            info = zipfile.ZipInfo(link)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return path


@pytest.mark.parametrize(
    ("entries", "link", "rule"),
    [
        ({"main.sh": b"", "../evil": b""}, None, "path_traversal"),
        ({"main.sh": b"", "/etc/evil": b""}, None, "absolute_path"),
        ({"main.sh": b""}, "link", "symlink"),
        ({"sub/main.sh": b""}, None, "no_main_sh"),
    ],
)
def test_unsafe_zips_are_rejected(tmp_path, entries, link, rule):
    z = _zip(tmp_path / "z.zip", entries, link)
    with pytest.raises(InvalidSubmissionError) as info:
        extract_zip(z, tmp_path / "out")
    assert rule in [v.rule for v in info.value.violations]
    assert not (tmp_path / "evil").exists()


def test_zip_bomb_and_entry_caps(tmp_path):
    z = _zip(tmp_path / "z.zip", {"main.sh": b"", "big": b"\0" * 10_000_000})
    with pytest.raises(InvalidSubmissionError, match="zip bomb"):
        inspect_zip(z, max_bytes=1_000_000)
    with pytest.raises(InvalidSubmissionError, match="entries"):
        inspect_zip(z, max_entries=1)
    assert len(inspect_zip(z)) == 2


def test_not_a_zip(tmp_path):
    (tmp_path / "z.zip").write_text("hello")
    with pytest.raises(InvalidSubmissionError, match="not a valid zip"):
        inspect_zip(tmp_path / "z.zip")


def test_roundtrip_extract(tmp_path):
    res = pack(make_src(tmp_path), tmp_path / "s.zip")
    extract_zip(res.path, tmp_path / "out")
    assert (tmp_path / "out" / "main.py").read_text() == "print('hi')\n"
    assert os.access(tmp_path / "out" / "main.sh", os.X_OK)


def test_top_level_dotfiles_are_left_out_as_the_official_zip_does(tmp_path):
    src = make_src(tmp_path)
    (src / ".env").write_text("HF_TOKEN=secret")
    (src / ".venv" / "bin").mkdir(parents=True)
    (src / ".venv" / "bin" / "python").write_text("x")
    (src / "pkg" / ".keep").write_text("")  # nested dotfiles are packed, as zip -r packs them
    res = pack(src, tmp_path / "s.zip")
    with zipfile.ZipFile(res.path) as zf:
        names = zf.namelist()
    assert ".env" not in names and not any(n.startswith(".venv") for n in names)
    assert "pkg/.keep" in names
    assert res.left_out == (".env", ".venv")
    kept = pack(src, tmp_path / "t.zip", dotfiles=True)
    with zipfile.ZipFile(kept.path) as zf:
        assert ".env" in zf.namelist() and kept.left_out == ()
