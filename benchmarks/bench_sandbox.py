"""Benchmark: the sandbox's start-up overhead for a trivial main.sh.

Measured in one run, median of N each, on the same trivial main.sh (`echo ok`):
  baseline  a bare subprocess: `sh main.sh` from the unzipped folder
  engine    BwrapEngine.execute: cgroups + namespaces + mounts + the entrypoint's checks + main.sh
  run       run.run_submission: the above plus unzip, data view, log.txt, output checks,
            result.json (what `posebowl run` does after Python has started)
  --docker  also the docker engine and run_submission through it (a real daemon and the runtime
            image POSEBOWL_IMAGE, default posebowl-runtime:slim), in the same run
  --detector  also the benchmark detector (example_benchmark) on `posebowl data sample` data
            (24 images), run_submission through each engine in turn (--detector-runs times):
            wall, ms per image, CPU seconds, peak memory and score, as result.json gives them
Usage: python benchmarks/bench_sandbox.py [N] [--runtime VENV] [--docker] [--detector]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from posebowl import runtimes, sandbox, workspace
from posebowl.engines.base import Bind, RunRequest
from posebowl.engines.bwrap import BwrapEngine
from posebowl.engines.docker import DockerEngine
from posebowl.limits import Limits
from posebowl.packing import pack
from posebowl.run import run_submission
from posebowl.run.dataview import prepare_data_view
from posebowl.sandbox import ENTRYPOINT, WORKDIR
from tests.sandbox_helpers import make_data, make_zip

MAIN = "echo ok\n"


def median_ms(fn, n: int) -> tuple[float, float]:
    fn()  # warm up caches
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    q = statistics.quantiles(times, n=10)
    return statistics.median(times) * 1000, q[-1] * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int, nargs="?", default=50)
    ap.add_argument("--runtime", type=Path, help="venv to mount [default: the built runtime]")
    ap.add_argument("--docker", action="store_true", help="also through the docker engine")
    ap.add_argument("--detector", action="store_true", help="also the benchmark detector")
    ap.add_argument("--detector-runs", type=int, default=2, help="runs per engine [2]")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        data, _ = make_data(root, n=3)
        work = root / "work"
        work.mkdir()
        (work / "main.sh").write_text(MAIN)
        if args.runtime:
            runtime = runtimes.runtime_from_venv(args.runtime)
        else:
            runtime = runtimes.locate("slim", workspace.find())
        engine = BwrapEngine()
        assert engine.health_check() is None, engine.health_check()
        limits = Limits()
        view = prepare_data_view(data, root / "view")
        out = root / "out"
        out.mkdir()
        request = RunRequest(
            binds=(*view.binds, Bind(work, WORKDIR, True), Bind(out, sandbox.SUBMISSION, True)),
            command=("sh", ENTRYPOINT),
            cwd=WORKDIR,
            limits=limits,
            env=sandbox.ENV,
            runtime=runtime,
        )
        copy = "cd /code_execution && cp data/submission_format.csv submission/submission.csv\n"
        z = make_zip(root / "submission.zip", {"main.sh": MAIN + copy})

        def bare() -> None:
            subprocess.run(["sh", "main.sh"], cwd=work, capture_output=True, check=True)

        def sandboxed() -> None:
            res = engine.execute(request, lambda b: None)
            assert res.exit_code == 0

        def full() -> None:
            v = run_submission(z, data, root / "run", engine, limits, runtime, "r5")
            assert v.status.value == "SUCCESS", v.message

        base, base90 = median_ms(bare, args.n)
        eng, eng90 = median_ms(sandboxed, args.n)
        run, run90 = median_ms(full, args.n)
        if args.docker:
            docker = DockerEngine()
            docker.select_runtime("slim", runtimes.spec("slim").lock_sha256())
            docker.check_image()
            assert docker.health_check() is None, docker.health_check()

            def in_docker() -> None:
                res = docker.execute(request, lambda b: None)
                assert res.exit_code == 0

            def full_docker() -> None:
                v = run_submission(z, data, root / "run-d", docker, limits, None, "r5")
                assert v.status.value == "SUCCESS", v.message

            deng, deng90 = median_ms(in_docker, args.n)
            drun, drun90 = median_ms(full_docker, args.n)
        if args.detector:
            rows = detector(root, engine, runtime, docker if args.docker else None, args)
    print(
        f"machine: {platform.machine()}, {platform.processor() or '?'}, Python "
        f"{platform.python_version()}, runs: {args.n} each"
    )
    print(f"baseline bare `sh main.sh`:        median {base:6.1f} ms  (p90 {base90:.1f})")
    print(
        f"bwrap engine (sandbox + checks):   median {eng:6.1f} ms  (p90 {eng90:.1f})  "
        f"extra {eng - base:+.1f} ms"
    )
    print(
        f"run_submission (unzip..verdict):   median {run:6.1f} ms  (p90 {run90:.1f})  "
        f"extra {run - base:+.1f} ms"
    )
    if args.docker:
        print(
            f"docker engine (container + checks): median {deng:6.1f} ms  (p90 {deng90:.1f})  "
            f"extra {deng - base:+.1f} ms, x{deng / eng:.0f} bwrap's"
        )
        print(
            f"run_submission through docker:     median {drun:6.1f} ms  (p90 {drun90:.1f})  "
            f"extra {drun - base:+.1f} ms"
        )

    if args.detector:
        print("benchmark detector (example_benchmark), run_submission, profile r5:")
        for row in rows:
            print("  " + row)


def detector(root: Path, bwrap, runtime, docker, args) -> list[str]:  # type: ignore[no-untyped-def]
    """The benchmark detector through each engine, alternately (the load changes slowly)."""
    sample = root / "sample"
    subprocess.run(
        [sys.executable, "-m", "posebowl", "data", "sample", "--out", str(sample / "data"),
         "--labels-out", str(sample / "labels")],
        check=True, capture_output=True,
    )  # fmt: skip
    z = pack(Path(__file__).resolve().parents[1] / "example_benchmark", root / "bench.zip").path
    labels = sample / "labels" / "test_labels.csv"
    engines = [("bwrap", bwrap, runtime)] + ([("docker", docker, None)] if docker else [])
    seen: dict[str, list[tuple[float, float, int, float]]] = {name: [] for name, *_ in engines}
    for i in range(args.detector_runs):
        for name, eng, rt in engines:
            out = root / f"det-{name}-{i}"
            v = run_submission(z, sample / "data", out, eng, Limits(), rt, "r5", labels=labels)
            assert v.status.value == "SUCCESS", v.message
            r = v.result
            assert r is not None and v.score is not None
            seen[name].append((r.wall_s, r.cpu_s or 0.0, r.peak_memory_bytes or 0, v.score))
    rows = []
    for name, runs in seen.items():
        wall = statistics.median(w for w, *_ in runs)
        cpu = statistics.median(c for _, c, *_ in runs)
        peak = max(p for _, _, p, _ in runs)
        scores = sorted({round(s, 4) for *_, s in runs})
        rows.append(
            f"{name:6s} median wall {wall:5.1f} s ({1000 * wall / v.images:4.0f} ms/image of "
            f"{v.images}), cpu {cpu:5.1f} s, peak {peak / 2**20:4.0f} MiB, score {scores}, "
            f"walls {[round(w, 1) for w, *_ in runs]}"
        )
    return rows


if __name__ == "__main__":
    main()
