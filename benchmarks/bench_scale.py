"""Ray's overhead: compositing images/s and Blender sprites/min, local vs Ray, in one run.

    .venv/bin/python benchmarks/bench_scale.py [--images N] [--designs D --views V] [--nodes 16x8]

Needs the [scale] extra (and the Blender venv for sprites). Side by side, on this machine:

    local, 1 worker      posebowl's own path: 1 process (images) / 1 Blender process (sprites)
    local, 2 workers     2 processes / 2 Blender processes
    ray, 1 worker        a head (no CPUs) + 1 worker node with 1 CPU, on this machine
    ray, 2 workers       the same + a second 1-CPU worker node

Each Ray row is a fresh driver connection (what one CLI run pays: new worker processes that
import posebowl and load the sprites), on a cluster started before the clock starts; the
cluster start itself is printed apart. Sprites use the shipped pool's settings (448 px, 16
samples, 1 render thread per task here so that 2 tasks fill 2 cores). From the 1-worker Ray
row (one core, Ray's overhead included) it works out, on paper, how long 10k sprites and 100k
frames take on N nodes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback only

from posebowl.errors import SetupError
from posebowl.scale import LocalExecutor, RayExecutor
from posebowl.synth import dataset, sprites

NODE = {"num_cpus": 1, "object_store_memory": 80 * 2**20}
SPRITE_ARGS = {"resolution": 448, "samples": 16, "threads": 1}


def _images(root: Path, n: int, executor: object) -> float:
    out = root / "images-run"
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    dataset.generate(out, n, split="all", seed=1, executor=executor)  # type: ignore[arg-type]
    return time.perf_counter() - t


def _sprites(root: Path, tasks: list[sprites.SpriteTask], executor: object, workers: int) -> float:
    out = root / "sprites-run"
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    sprites.render_sprites(tasks, out, workers=workers, executor=executor, **SPRITE_ARGS)  # type: ignore[arg-type]
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=96, help="images per row (6 tasks of 16)")
    ap.add_argument("--designs", type=int, default=2, help="sprite designs (one task each)")
    ap.add_argument("--views", type=int, default=2, help="views per design")
    args = ap.parse_args()
    import ray
    from ray.cluster_utils import Cluster

    try:
        sprites.blender_python()
        tasks = sprites.plan_tasks(range(100, 100 + args.designs), args.views)
    except SetupError as exc:  # no Blender venv: images only
        print(f"sprites: skipped ({exc})")
        tasks = []
    rows: list[tuple[str, float, float | None]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for w in (1, 2):
            img = _images(root, args.images, LocalExecutor(w))
            spr = _sprites(root, tasks, LocalExecutor(w), w) if tasks else None
            rows.append((f"local, {w} worker{'s' * (w > 1)}", img, spr))
        t = time.perf_counter()
        cluster = Cluster(
            initialize_head=True,
            head_node_args={"num_cpus": 0, "include_dashboard": False, **NODE},
        )
        cluster.add_node(**NODE)
        cluster.wait_for_nodes()
        start = time.perf_counter() - t
        try:
            for w in (1, 2):
                if w == 2:
                    cluster.add_node(**NODE)
                    cluster.wait_for_nodes()
                with RayExecutor(cluster.address) as ex:
                    img = _images(root, args.images, ex)
                with RayExecutor(cluster.address) as ex:
                    spr = _sprites(root, tasks, ex, w) if tasks else None
                rows.append((f"ray, {w} worker{'s' * (w > 1)}", img, spr))
        finally:
            ray.shutdown()
            cluster.shutdown()
    n_spr = len(tasks)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")
    print(f"Ray cluster start (head + 1 node): {start:.1f} s\n")
    print(
        f"| executor | images/s ({args.images} frames) | vs local 1 "
        f"| sprites/min ({n_spr}) | vs local 1 |"
    )
    print("|---|---|---|---|---|")
    base_i, base_s = args.images / rows[0][1], (n_spr / rows[0][2] * 60) if rows[0][2] else None
    rates = {}
    for name, img, spr in rows:
        ri = args.images / img
        rs = n_spr / spr * 60 if spr else None
        rates[name] = (ri, rs)
        s_txt = f"{rs:.2f} | {rs / base_s:.2f}x" if rs and base_s else "- | -"
        print(f"| {name} | {ri:.2f} | {ri / base_i:.2f}x | {s_txt} |")
    # on paper: the 'ray, 1 worker' row is what one core of a cluster achieves, Ray included
    ri1, rs1 = rates["ray, 1 worker"]
    over_i = ri1 / rates["local, 1 worker"][0]
    over_s = rs1 / rates["local, 1 worker"][1] if rs1 else None
    print(
        f"\nRay's cost at 1 worker: images {over_i:.2f}x local"
        + (f", sprites {over_s:.2f}x local" if over_s else "")
    )
    print("On paper, per core from the 'ray, 1 worker' row, linear in cores (the shared file")
    print("system assumed fast enough; Blender tasks at 1 thread each):")
    for nodes, cores in ((1, 16), (4, 16), (16, 16), (64, 16)):
        c = nodes * cores
        line = (
            f"  {nodes:3d} nodes x {cores} cores: 100k frames {100_000 / (ri1 * c) / 60:7.1f} min"
        )
        if rs1:
            line += f" | 10k sprites {10_000 / (rs1 * c) / 60:6.2f} h"
        print(line)


if __name__ == "__main__":
    main()
