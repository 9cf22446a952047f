"""A real Ray cluster on this machine (several nodes, loopback only) for the ``ray`` tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from posebowl.scale import ray_installed
from tests.synth.conftest import draw_sprite

# Nodes and driver talk over 127.0.0.1 only, never this machine's outward address. Ray reads
# this when it is imported, so it is set before any test imports it.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

NEEDS_SCALE = "needs the [scale] extra (Ray): pip install -e '.[scale]'"
NODE = {"num_cpus": 1, "object_store_memory": 80 * 2**20}
N_IMAGES = 64  # 4 chunks of 16: enough to interrupt or lose a worker mid-run


@pytest.fixture(scope="session")
def cluster() -> Iterator[object]:
    """A head (no CPUs: it only schedules) and two 1-CPU worker nodes; shut down at the end."""
    if not ray_installed():
        pytest.skip(NEEDS_SCALE)
    from ray.cluster_utils import Cluster

    c = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 0,
            "include_dashboard": False,
            "object_store_memory": 80 * 2**20,
        },
    )
    try:
        for _ in range(2):
            c.add_node(**NODE)
        c.wait_for_nodes()
        yield c
    finally:
        import ray

        ray.shutdown()
        c.shutdown()


@pytest.fixture
def executor(cluster: object) -> Iterator[object]:
    """A RayExecutor connected to the session cluster (disconnects after the test)."""
    from posebowl.scale import RayExecutor

    with RayExecutor(cluster.address) as ex:  # type: ignore[attr-defined]
        yield ex


@pytest.fixture(scope="session")
def small_sprites(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 designs x 1 view of tiny test sprites (fast to load on every worker)."""
    from posebowl.synth.sprites import write_index, write_sprite

    d = tmp_path_factory.mktemp("sprites")
    for design in range(6):
        write_sprite(d / f"sc{design:04d}_v00.png", draw_sprite(50 + 8 * design, 70, design))
    write_index(d)
    return d


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory, small_sprites: Path) -> Path:
    """What a local run writes (1 process): the bytes every Ray run must match."""
    from posebowl.synth import dataset

    out = tmp_path_factory.mktemp("local") / "set"
    dataset.generate(out, N_IMAGES, split="all", seed=7, workers=1, sprite_dir=small_sprites)
    return out


def files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def task_workers(cluster: object, name: str) -> list[int]:
    """Pids of Ray worker processes of ``cluster`` now executing the task ``name``."""
    raylets = {
        n.all_processes["raylet"][0].process.pid
        for n in cluster.list_all_nodes()  # type: ignore[attr-defined]
        if "raylet" in n.all_processes
    }
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            title = (proc / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        if ppid in raylets and title == f"ray::{name}":
            found.append(int(proc.name))
    return found


@contextlib.contextmanager
def killing(ready: Callable[[], bool], cluster: object, name: str) -> Iterator[list[int]]:
    """While the block runs, SIGKILL one Ray worker executing ``name`` once ``ready()``;
    yields the list the killed pid lands in."""
    killed: list[int] = []
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set() and not killed:
            if ready():
                for pid in task_workers(cluster, name)[:1]:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            time.sleep(0.05)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield killed
    finally:
        stop.set()
        thread.join()


def rmtree(p: Path) -> None:
    shutil.rmtree(p, ignore_errors=True)
