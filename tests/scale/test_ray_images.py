"""``synth images`` on a real multi-node Ray cluster: same bytes as local, resume, lost workers."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from posebowl.cli.main import cli
from posebowl.scale import Tally, ray_installed
from posebowl.synth import dataset
from tests.scale.conftest import N_IMAGES, NEEDS_SCALE, NODE, files, killing, task_workers

pytestmark = [pytest.mark.ray, pytest.mark.skipif(not ray_installed(), reason=NEEDS_SCALE)]


def _generate(out, sprites, executor, progress=None):
    return dataset.generate(
        out,
        N_IMAGES,
        split="all",
        seed=7,
        sprite_dir=sprites,
        executor=executor,
        progress=progress,
    )


def test_cli_on_ray_writes_exactly_the_local_files(cluster, reference, small_sprites, tmp_path):
    out = tmp_path / "ray"
    args = ["synth", "images", "--n", str(N_IMAGES), "--out", str(out), "--split", "all"]
    args += ["--seed", "7", "--sprites", str(small_sprites)]
    res = CliRunner().invoke(cli, [*args, "--executor", "ray", "--ray-address", cluster.address])
    assert res.exit_code == 0, res.output
    assert "3 nodes, 2 CPUs" in res.output
    assert files(out) == files(reference)


def test_interrupted_run_resumes_and_redoes_only_what_is_missing(
    cluster, executor, reference, small_sprites, tmp_path
):
    out = tmp_path / "ray"
    seen: list[Tally] = []

    def stop_after_two_chunks(t: Tally) -> None:
        seen.append(t)
        if t.done >= 32:
            raise KeyboardInterrupt  # as Ctrl-C would, mid-run

    with pytest.raises(KeyboardInterrupt):
        _generate(out, small_sprites, executor, stop_after_two_chunks)
    assert (out / dataset.WORK_NAME / "run.json").is_file()
    records = sorted((out / dataset.WORK_NAME / "chunks").glob("*.json"))
    assert 2 <= len(records) < N_IMAGES // 16
    assert not (out / "train_labels.csv").exists()
    # tasks that were running when the driver stopped are cancelled; wait until none runs
    deadline = time.monotonic() + 30
    while task_workers(cluster, "run_chunk") and time.monotonic() < deadline:
        time.sleep(0.1)
    records = sorted((out / dataset.WORK_NAME / "chunks").glob("*.json"))
    # damage one finished image: its chunk must be made again, not trusted by its name
    victim = out / "images" / json.loads(records[0].read_text())["files"][3][0]
    victim.write_bytes(victim.read_bytes()[:-100])

    again: list[Tally] = []
    _generate(out, small_sprites, executor, again.append)
    assert again[-1].skipped == 16 * (len(records) - 1)  # intact chunks resumed, one redone
    assert again[-1].done == N_IMAGES and again[-1].failed == 0
    assert files(out) == files(reference)


def test_a_worker_killed_mid_run_still_ends_complete_and_exact(
    cluster, executor, reference, small_sprites, tmp_path
):
    out = tmp_path / "ray"
    seen: list[Tally] = []
    with killing(lambda: bool(seen) and seen[-1].done >= 16, cluster, "run_chunk") as killed:
        _generate(out, small_sprites, executor, seen.append)
    assert killed, "no worker was running a chunk to kill"
    assert seen[-1].retries >= 1 and seen[-1].failed == 0
    assert files(out) == files(reference)


def test_a_node_lost_mid_run_still_ends_complete_and_exact(
    cluster, executor, reference, small_sprites, tmp_path
):
    extra = cluster.add_node(**NODE)
    cluster.wait_for_nodes()
    out = tmp_path / "ray"
    seen: list[Tally] = []
    removed = []

    def progress(t: Tally) -> None:
        seen.append(t)
        if t.done >= 16 and not removed:
            cluster.remove_node(extra, allow_graceful=False)  # its running task dies with it
            removed.append(extra)

    _generate(out, small_sprites, executor, progress)
    assert removed and seen[-1].failed == 0
    assert files(out) == files(reference)


def test_ray_address_local_runs_a_throwaway_instance(reference, small_sprites, tmp_path):
    """A real CLI process (Ray starts and stops its own one-machine instance in it)."""
    out = tmp_path / "local-ray"
    args = ["synth", "images", "--n", "16", "--out", str(out), "--split", "all", "--seed", "7"]
    args += ["--sprites", str(small_sprites), "--executor", "ray", "--ray-address", "local"]
    res = subprocess.run(
        [sys.executable, "-m", "posebowl.cli.main", *args], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert re.search(r"tasks run on the Ray cluster at .*: 1 nodes, \d+ CPUs", res.stderr)
    made = files(out / "images")
    assert len(made) == 16
    assert made.items() <= files(reference / "images").items()  # image i is image i
