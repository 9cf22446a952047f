"""``posebowl runtime lock|build|test``: the environment submissions run in."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from posebowl import engines, limits, runner, runtime_env
from posebowl.cli._render import err, out
from posebowl.cli._sandbox import engine_option
from posebowl.engines import docker, docker_image
from posebowl.engines.base import Bind
from posebowl.errors import InputError

TESTS_IN_SANDBOX = "/opt/posebowl/runtime-tests"


def _project(project_dir: Path | None) -> runtime_env.Project:
    return runtime_env.Project(project_dir) if project_dir else runtime_env.find_project()


_project_option = click.option(
    "--project",
    "project_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The folder holding runtime/ [default: found from the current folder].",
)


_image_option = click.option(
    "--image",
    default=docker.DEFAULT_IMAGE,
    show_default=True,
    envvar=docker.IMAGE_ENV,
    help=f"The runtime image's name (or set {docker.IMAGE_ENV}).",
)


def _echo(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


@click.group("runtime")
def command() -> None:
    """Lock, build, pull and test the runtime environment (what a submission may import)."""


@command.command("lock")
@_project_option
@click.option("--group", help="Lock an optional group (runtime/requirements-GROUP.in).")
@click.option("--upgrade", is_flag=True, help="Move every pin to the newest allowed version.")
@click.option("--check", is_flag=True, help="Only check the lock matches the .in file (offline).")
def lock_cmd(project_dir: Path | None, group: str | None, upgrade: bool, check: bool) -> int:
    """Re-resolve runtime/requirements.in into the pinned lock requirements.txt (needs PyPI)."""
    project = _project(project_dir)
    groups = [group] if group else [None, *project.groups()]
    if check:
        bad = [p for g in groups if (p := runtime_env.lock_problem(project, g))]
        for p in bad:
            err.print(f"[bold red]Stale lock:[/] {p}.")
        if not bad:
            out.print("[green]✓[/] the runtime lock matches runtime/requirements.in")
        return 1 if bad else 0
    for g in groups:
        with err.status(f"Resolving {project.requirements_in(g).name} ..."):
            path = runtime_env.lock(project, g, upgrade=upgrade)
        out.print(f"[green]✓[/] wrote {path}")
    return 0


@command.command("build")
@_project_option
@click.option(
    "--with",
    "groups",
    multiple=True,
    help="Also install an optional group (e.g. torch: ~6 GB, see runtime/README).",
)
@click.option("--force", is_flag=True, help="Delete and rebuild the venv from scratch.")
@engine_option("docker: build the runtime image instead of the venv (auto and bwrap: the venv).")
@_image_option
@click.option(
    "--base-image",
    envvar=docker_image.BASE_IMAGE_ENV,
    help=f"docker: the image to build on [default: {docker_image.DEFAULT_BASE_IMAGE}; offline, "
    f"a stand-in from scripts/docker-base.sh: {docker_image.STAND_IN_BASE_IMAGE}].",
)
def build_cmd(
    project_dir: Path | None,
    groups: tuple[str, ...],
    force: bool,
    engine: str,
    image: str,
    base_image: str | None,
) -> int:
    """Create .runtime/venv from the lock (does nothing when the lock has not changed).

    With --engine docker, build the runtime image from runtime/Dockerfile and the same lock.
    """
    project = _project(project_dir)
    if engine == "docker":
        if groups:
            raise InputError(
                "Optional groups (--with) are not built into the Docker image.",
                "Use the bwrap engine for them, or add the group's lock to runtime/Dockerfile.",
            )
        err.print(f"Building the Docker image {image} from {docker.DOCKERFILE} ...")
        built = docker.build_image(
            project.root, image, echo=_echo, base_image=base_image, force=force
        )
        what = "built" if built.changed else "up to date (same lock, base and Dockerfile)"
        out.print(f"[green]✓[/] image {image} {what}: the lock on {built.base_image}")
        return 0
    with err.status(f"Building the runtime in {project.venv} (a minute on first build) ..."):
        res = runtime_env.build(project, groups, force=force)
    what = "built" if res.changed else "up to date (the lock has not changed)"
    out.print(f"[green]✓[/] runtime {what}: {res.venv}")
    return 0


@command.command("pull")
@_image_option
def pull_cmd(image: str) -> int:
    """Pull a published runtime image (needs the network; offline, see the message)."""
    docker.pull_image(image, echo=_echo)
    out.print(f"[green]✓[/] pulled {image}; runs use it when POSEBOWL_IMAGE={image}")
    return 0


@command.command("test")
@_project_option
@engine_option()
def test_cmd(project_dir: Path | None, engine: str) -> int:
    """Import every runtime package inside the sandbox (runtime/tests, with pytest)."""
    project = _project(project_dir)
    eng = engines.select(engine)
    runtime = runtime_env.locate(project) if eng.needs_runtime_venv else None
    result = runner.run_command(
        ("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", TESTS_IN_SANDBOX),
        eng,
        limits.profile(),
        runtime,
        network=False,
        interactive=False,
        extra_binds=(Bind(project.tests_dir.resolve(), TESTS_IN_SANDBOX),),
        on_output=lambda b: (sys.stdout.buffer.write(b), sys.stdout.flush()),
    )
    if result.exit_code == 0:
        out.print("[green]✓[/] every runtime package imports and runs in the sandbox")
    else:
        err.print(f"[bold red]Runtime test failed[/] (exit code {result.exit_code}).")
    return 0 if result.exit_code == 0 else 1
