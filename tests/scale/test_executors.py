"""Executors without a cluster: the local default, resume, and the errors users meet."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from posebowl.cli.main import cli
from posebowl.errors import InputError, SetupError
from posebowl.scale import LocalExecutor, RayExecutor, Tally, make_executor, ray_installed
from posebowl.synth import dataset, sprites
from tests.scale.conftest import files


@pytest.mark.slow  # a new process, or many
def test_local_executor_is_the_default_and_the_same_bytes(tmp_path, small_sprites):
    a = dataset.generate(
        tmp_path / "a", 16, split="all", seed=3, workers=2, sprite_dir=small_sprites
    )
    b = dataset.generate(
        tmp_path / "b",
        16,
        split="all",
        seed=3,
        sprite_dir=small_sprites,
        executor=LocalExecutor(1),
    )
    assert a.equals(b)
    assert files(tmp_path / "a") == files(tmp_path / "b")
    assert not (tmp_path / "a" / dataset.WORK_NAME).exists()  # removed once finished


@pytest.mark.slow  # a new process, or many
def test_local_run_interrupted_then_resumed(tmp_path, small_sprites):
    def stop(t: Tally) -> None:
        if t.done >= 16:
            raise KeyboardInterrupt

    kw = {"split": "all", "seed": 4, "sprite_dir": small_sprites, "workers": 1}
    with pytest.raises(KeyboardInterrupt):
        dataset.generate(tmp_path / "run", 32, progress=stop, **kw)
    seen: list[Tally] = []
    dataset.generate(tmp_path / "run", 32, progress=seen.append, **kw)
    assert seen[-1].skipped == 16 and seen[-1].done == 32
    dataset.generate(tmp_path / "ref", 32, **kw)
    assert files(tmp_path / "run") == files(tmp_path / "ref")


@pytest.mark.slow  # a new process, or many
def test_unfinished_run_with_other_settings_is_refused(tmp_path, small_sprites):
    kw = {"split": "all", "sprite_dir": small_sprites, "workers": 1}

    def stop(t: Tally) -> None:
        if t.done >= 16:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        dataset.generate(tmp_path, 32, seed=1, progress=stop, **kw)
    with pytest.raises(InputError, match="unfinished run with other settings.*seed 1 then, 2 now"):
        dataset.generate(tmp_path, 32, seed=2, **kw)
    df = dataset.generate(tmp_path, 32, seed=2, force=True, **kw)  # --force starts over
    assert len(df) == 32 and len(list((tmp_path / "images").iterdir())) == 32
    assert not (tmp_path / dataset.WORK_NAME).exists()


def test_a_truncated_sprite_is_not_intact(tmp_path):
    p = tmp_path / "s.png"
    sprites.write_sprite(p, sprites.crop_sprite(_rgba()))
    assert sprites.intact(p)
    p.write_bytes(p.read_bytes()[:-1])
    assert not sprites.intact(p)
    assert not sprites.intact(tmp_path / "absent.png")


def _rgba():
    import numpy as np

    a = np.zeros((8, 8, 4), np.uint8)
    a[2:6, 2:6] = 200
    return a


def test_without_ray_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what a missing package looks like
    with pytest.raises(SetupError, match=r"pip install 'posebowl\[scale\]'"):
        RayExecutor("127.0.0.1:1").connect()


def test_cli_without_ray_exits_4_naming_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)
    res = CliRunner().invoke(
        cli, ["synth", "images", "--n", "2", "--out", str(tmp_path), "--executor", "ray"]
    )
    assert res.exit_code == 4
    assert "posebowl[scale]" in res.output


def test_ray_address_needs_the_ray_executor():
    with pytest.raises(InputError, match="--ray-address needs --executor ray"):
        make_executor("local", address="127.0.0.1:6379")


@pytest.mark.skipif(not ray_installed(), reason="needs the [scale] extra (Ray)")
def test_no_cluster_at_the_address_says_how_to_start_one(tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = CliRunner().invoke(
        cli,
        [
            "synth",
            "images",
            "--n",
            "2",
            "--out",
            str(tmp_path),
            "--executor",
            "ray",
            "--ray-address",
            f"127.0.0.1:{port}",
        ],
    )
    assert res.exit_code == 4
    assert f"No Ray cluster answers at 127.0.0.1:{port}" in res.output
    assert "ray start --head" in res.output


@pytest.mark.blender
def test_blender_dies_with_a_killed_parent(tmp_path):
    """A Ray worker killed mid-render must not leave Blender rendering on as an orphan."""
    try:
        python = sprites.blender_python()
    except SetupError:
        pytest.skip("no Blender venv: run `posebowl synth setup` (make test builds it)")
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from posebowl.synth import sprites; "
            "tasks = [{'design_id': 1, 'view_id': 0, 'out': sys.argv[2], 'resolution': 448, "
            "'samples': 512, 'threads': 1}]; "
            "p = sprites.run_worker(Path(sys.argv[1]), tasks, Path(sys.argv[3]), Path(sys.argv[4]),"
            " die_with_parent=True); print(p.pid, flush=True); time.sleep(600)",
            str(python),
            str(tmp_path / "x.raw.png"),
            str(tmp_path / "t.json"),
            str(tmp_path / "w.log"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    child = int(parent.stdout.readline())
    time.sleep(1)
    assert _running(child)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while _running(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(child), "Blender outlived its parent"


def _running(pid: int) -> bool:
    """Alive and not a zombie (a killed orphan stays a zombie until someone reaps it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.slow  # a new process, or many
def test_images_made_with_other_software_are_refused(tmp_path, small_sprites):
    """A node (or an earlier run) with another OpenCV would make other bytes: say so."""

    def stop(t: Tally) -> None:
        if t.done >= 16:
            raise KeyboardInterrupt

    kw = {"split": "all", "seed": 5, "sprite_dir": small_sprites, "workers": 1}
    with pytest.raises(KeyboardInterrupt):
        dataset.generate(tmp_path, 32, progress=stop, **kw)
    record = next((tmp_path / dataset.WORK_NAME / "chunks").glob("*.json"))
    rec = json.loads(record.read_text())
    rec["software"] = [[k, "0.0" if k == "opencv" else v] for k, v in rec["software"]]
    record.write_text(json.dumps(rec))
    with pytest.raises(
        SetupError, match="made with .*opencv 0.0, sprites .*, but this machine has .*opencv 4"
    ):
        dataset.generate(tmp_path, 32, **kw)


def test_the_public_api_is_sorted():
    from posebowl import scale

    assert scale.__all__ == sorted(scale.__all__)
    assert all(hasattr(scale, name) for name in scale.__all__)
