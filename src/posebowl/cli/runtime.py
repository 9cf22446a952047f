"""``posebowl runtime lock|build|pull|test``: the environments submissions run in."""

from __future__ import annotations

import sys

import click

from posebowl import engines, limits, run, runtimes, workspace
from posebowl.cli._render import err, out
from posebowl.cli._sandbox import engine_for_image, engine_option, image_option, prepare_docker
from posebowl.engines import docker
from posebowl.engines.base import Bind
from posebowl.engines.docker import daemon
from posebowl.engines.docker import image as docker_image
from posebowl.errors import InputError
from posebowl.runtimes import build, locks
from posebowl.runtimes.locate import OFFICIAL_COST

TESTS_IN_SANDBOX = "/opt/posebowl/runtime-tests"

_runtime_option = click.option(
    "--runtime",
    "name",
    type=click.Choice(runtimes.NAMES),
    default="slim",
    show_default=True,
    help="official: the platform's packages at its versions (~7 GB); slim: the subset "
    "posebowl's examples need, at the same pins.",
)

_image_option = click.option(
    "--image",
    default=None,
    envvar=docker.IMAGE_ENV,
    help=f"The name of the image to build [default: {docker.IMAGE_REPO}:RUNTIME] (or set "
    f"{docker.IMAGE_ENV}).",
)


def _echo(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


@click.group("runtime")
def command() -> None:
    """Lock, build, pull and test the runtimes (what a submission may import)."""


@command.command("lock")
@click.option("--check", is_flag=True, help="Only check every lock matches its sources (offline).")
def lock_cmd(check: bool) -> int:
    """Re-resolve official.in into its hashed lock (needs PyPI), then select slim from it."""
    if check:
        bad = [p for name in runtimes.NAMES if (p := runtimes.spec(name).problem())]
        for p in bad:
            err.print(f"[bold red]Stale lock:[/] {p}.")
        if not bad:
            out.print("[green]✓[/] every runtime lock matches its sources")
        return 1 if bad else 0
    if workspace.checkout() is None:
        raise InputError(
            "posebowl runtime lock rewrites the locks that ship inside posebowl.",
            "Run it in a posebowl checkout (make lock), then reinstall.",
        )
    for name in ("official", "slim"):  # the base first: slim is selected from it
        s = runtimes.spec(name)
        with err.status(f"Locking {s.source.name} ..."):
            path = locks.resolve(s)
        out.print(f"[green]✓[/] wrote {path}")
    return 0


@command.command("build")
@_runtime_option
@click.option("--force", is_flag=True, help="Build it again from scratch.")
@engine_option("docker: build the runtime image instead of the venv (auto and bwrap: the venv).")
@_image_option
@click.option(
    "--base-image",
    envvar=docker_image.BASE_IMAGE_ENV,
    help=f"docker: the image to build on [default: {docker_image.DEFAULT_BASE_IMAGE}; offline, "
    f"a stand-in from scripts/docker-base.sh: {docker_image.STAND_IN_BASE_IMAGE}].",
)
def build_cmd(
    name: str, force: bool, engine: str, image: str | None, base_image: str | None
) -> int:
    """Build a runtime from its lock (does nothing when the lock has not changed).

    The venv goes to the workspace (.runtime/NAME in a checkout); a failed build leaves the
    previous one usable. With --engine docker, build the runtime's image instead.
    """
    s = runtimes.spec(name)
    if engine == "docker":
        image = image or f"{docker.IMAGE_REPO}:{name}"
        labels = docker_image.image_labels(daemon.answering(), image)
        if labels is not None and not docker_image.built_by_posebowl(labels) and not force:
            # (a foreign image named with IMAGE=: `make build` before a run has nothing to do)
            out.print(
                f"[green]✓[/] image {image} was not built by posebowl: nothing to build; runs "
                f"use it as it is (--image {image})"
            )
            return 0
        err.print(f"Building the Docker image {image} of the {name} runtime ...")
        built = docker_image.build_image(s, image, echo=_echo, base_image=base_image, force=force)
        what = "built" if built.changed else "up to date (same lock, base and Dockerfile)"
        out.print(f"[green]✓[/] image {image} {what}: {s.lock.name} on {built.base_image}")
        return 0
    ws = workspace.find()
    cost = f" ({OFFICIAL_COST})" if name == "official" else ""
    with err.status(f"Building the {name} runtime in {ws.runtime_venv(name)}{cost} ...") as st:
        res = build.build(s, ws, force=force, step=lambda t: st.update(f"{name} runtime: {t} ..."))
    if not res.changed:
        out.print(
            f"[green]✓[/] the {name} runtime is up to date (its lock has not changed): {res.venv}"
        )
        return 0
    out.print(f"[green]✓[/] built the {name} runtime in {res.seconds:.0f} s: {res.venv}")
    if res.not_compiled:
        err.print(
            f"  {len(res.not_compiled)} file(s) only a newer Python compiles were left as source "
            f"(importing them would fail the same way anywhere), e.g. {res.not_compiled[0]}"
        )
    return 0


@command.command("pull")
@click.option(
    "--image",
    default=docker.DEFAULT_IMAGE,
    envvar=docker.IMAGE_ENV,
    help="The published image's name (registry/name:tag).",
)
def pull_cmd(image: str) -> int:
    """Pull a published runtime image (needs the network; offline, see the message)."""
    docker_image.pull_image(image, echo=_echo)
    out.print(f"[green]✓[/] pulled {image}; runs use it with --image {image}")
    return 0


@command.command("test")
@click.option(
    "--runtime",
    "name",
    type=click.Choice(runtimes.NAMES),
    default=None,
    help="The runtime whose import tests run: official or slim [default: slim; with --image, "
    "the runtime posebowl built that image for].",
)
@engine_option()
@image_option()
def test_cmd(name: str | None, engine: str, image: str | None) -> int:
    """Import every package of a runtime inside the sandbox (its tests, with pytest)."""
    eng = engines.select(engine_for_image(engine, image))
    if isinstance(eng, docker.DockerEngine):
        prepare_docker(eng, image, name if name or image else "slim")
        name = name or eng.check_image().runtime or "slim"
    else:
        name = name or "slim"
        eng.select_runtime(name, runtimes.spec(name).lock_sha256())
    s = runtimes.spec(name)
    runtime = runtimes.locate(name, workspace.find()) if eng.needs_runtime_venv else None
    tests = (s.folder / "tests").resolve()

    def show(data: bytes) -> None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()

    result = run.run_command(
        ("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", TESTS_IN_SANDBOX),
        eng,
        limits.profile(),
        runtime,
        network=False,
        interactive=False,
        extra_binds=(Bind(tests, TESTS_IN_SANDBOX),),
        env={"POSEBOWL_RUNTIME": name},
        on_output=show,
    )
    if result.exit_code == 0:
        out.print(
            f"[green]✓[/] every package of the {name} runtime imports and runs in the sandbox"
        )
    else:
        err.print(f"[bold red]The {name} runtime's test failed[/] (exit code {result.exit_code}).")
    return 0 if result.exit_code == 0 else 1
