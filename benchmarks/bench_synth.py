"""Synthetic data speed: compositing vs the PNG encode of the same frames; Blender s/sprite.

    .venv/bin/python benchmarks/bench_synth.py [N_IMAGES] [--render N_SPRITES]

One process, one OpenCV thread (numbers are per core). For each of N frames it times
``make_image`` (background, sprite, effects; by background type) and the PNG encode
``posebowl synth images`` does (OpenCV, zlib level 1), plus the JPEG encode. The bound is a
writer that only encodes: ``images/s bound = 1 / mean(encode)``; the ratio is
``images/s / bound`` (= encode / (compose + encode)). Per-process set-up (decoding the Blue
Marble, making the cloud tiles) is done before timing. It also runs against an older posebowl
(``PYTHONPATH=OLD/src``) for before/after comparisons in one run.
With ``--render N`` it also renders N sprites (Cycles, 448 px, 16 samples, 1 worker x 2
threads) when the Blender venv exists, and reports seconds per sprite.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import cv2

from posebowl.synth.compose import make_image
from posebowl.synth.dataset import encode
from posebowl.synth.pool import SpritePool


def bench_compose(n: int, split: str) -> None:
    cv2.setNumThreads(1)
    pool = SpritePool(split=split)
    for i in range(len(pool)):  # load every sprite once: the steady state of a long run
        pool.premultiplied(i)
    warm_up()
    compose, png, jpg, kinds = [], [], [], []
    for i in range(n):
        t0 = time.perf_counter()
        img = make_image(pool, 12345, i)
        t1 = time.perf_counter()
        encode(img, "png")
        t2 = time.perf_counter()
        encode(img, "jpg")
        t3 = time.perf_counter()
        compose.append(t1 - t0)
        png.append(t2 - t1)
        jpg.append(t3 - t2)
        kinds.append(img.background_id.split("-")[0])
    c, p, j = (statistics.fmean(x) * 1000 for x in (compose, png, jpg))
    print(f"frames: {n} at 1280x1024, 1 core, split {split}")
    print(f"compose (make_image)      {c:7.1f} ms/frame")
    for kind in sorted(set(kinds)):
        ms = [t * 1000 for t, k in zip(compose, kinds, strict=True) if k == kind]
        print(f"  {kind:<10} {len(ms):4d} frames {statistics.fmean(ms):7.1f} ms/frame")
    print(f"PNG encode (level 1)      {p:7.1f} ms/frame   bound {1000 / p:5.2f} images/s")
    print(f"compose + PNG             {c + p:7.1f} ms/frame   {1000 / (c + p):5.2f} images/s")
    print(f"ratio to the PNG bound    {p / (c + p):7.2f}")
    print(f"JPEG encode (q95)         {j:7.1f} ms/frame; compose + JPEG {1000 / (c + j):5.2f}/s")


def warm_up() -> None:
    """Decode the Blue Marble and make every cloud tile once (per process, ~3 s), if present."""
    try:
        from posebowl.synth import clouds, earth, textures
    except ImportError:  # an older posebowl (procedural backgrounds only)
        return
    earth.blue_marble()
    for i in range(len(textures.PHOTOS)):
        textures.photo(i)
    for recipe in clouds.RECIPES:
        for t in range(clouds.N_TILES):
            for level in range(5):
                clouds.tile_level(recipe, t, level)


def bench_render(n: int) -> None:
    from posebowl.errors import SetupError
    from posebowl.synth import sprites

    try:
        sprites.blender_python()
    except SetupError as exc:
        print(f"render: skipped ({exc.message})")
        return
    tasks = sprites.plan_tasks(range(1000, 1000 + max(1, n // 2)), 2)[:n]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        report = sprites.render_sprites(tasks, Path(tmp), workers=1, threads=2)
        wall = time.perf_counter() - t0
    print(
        f"render: {report.rendered} sprites in {wall:.1f} s wall "
        f"({wall / max(1, report.rendered):.2f} s/sprite incl. Blender start; "
        f"{report.seconds_per_sprite:.2f} s/sprite inside Blender: scene build + Cycles)"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=60)
    ap.add_argument("--render", type=int, default=0, help="also render this many sprites")
    ap.add_argument("--split", default="all", help="sprite split to composite")
    args = ap.parse_args()
    bench_compose(args.n, args.split)
    if args.render:
        bench_render(args.render)


if __name__ == "__main__":
    main()
