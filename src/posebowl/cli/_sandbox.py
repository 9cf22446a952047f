"""Options shared by the commands that start a sandbox (run, shell, runtime test)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from posebowl import engines, runtimes, workspace
from posebowl import limits as limits_mod
from posebowl.engines import ENGINE_ENV, ENGINES
from posebowl.engines.base import Engine
from posebowl.engines.docker import IMAGE_ENV, IMAGE_REPO, DockerEngine
from posebowl.errors import InputError
from posebowl.limits import Limits
from posebowl.runtimes import Runtime

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class SandboxOptions:
    """What --profile, --time-limit, --memory, --cpus, --pids, --engine, --runtime and --image
    asked."""

    profile: str
    time_limit: str | None
    memory: str | None
    cpus: float | None
    pids: int | None
    engine: str
    runtime: str | None  # a runtime's name, or the path of a venv
    image: str | None = None  # a Docker image to run in (any image: implies --engine docker)

    def limits(self) -> Limits:
        return limits_mod.profile(self.profile).with_overrides(
            time_limit_s=limits_mod.parse_duration(self.time_limit) if self.time_limit else None,
            memory_bytes=limits_mod.parse_bytes(self.memory) if self.memory else None,
            cpus=self.cpus,
            pids=self.pids,
        )

    def runtime_name(self) -> str | None:
        """The runtime asked for by name (None: a venv path), or the default one."""
        if self.runtime is None:
            return runtimes.default_name(workspace.find())
        return self.runtime if self.runtime in runtimes.NAMES else None

    def engine_and_runtime(self) -> tuple[Engine, Runtime | None]:
        """The engine asked for, checked healthy (docker: with its image checked), and the
        runtime venv it needs (if any)."""
        eng = engines.select(engine_for_image(self.engine, self.image))
        if isinstance(eng, DockerEngine):
            prepare_docker(eng, self.image, self.runtime)
        else:
            name = self.runtime_name()
            if name is not None:
                eng.select_runtime(name, runtimes.spec(name).lock_sha256())
        return eng, resolve_runtime(self.runtime, eng)

    def runtime_label(self, engine: Engine) -> str | None:
        """The runtime as the run's log names it: its name (docker: the image's runtime), or
        for an image posebowl did not build, the image with its lock unknown."""
        if isinstance(engine, DockerEngine):
            return engine.check_image().describe()
        return self.runtime_name()


def engine_for_image(engine: str, image: str | None) -> str:
    """The engine to select: an image (--image) means docker; InputError against bwrap."""
    if image is None:
        return engine
    if engine == "auto":
        return "docker"
    if engine != "docker":
        raise InputError(
            f"--image names a Docker image, which the {engine} engine cannot run.",
            "Use --engine docker (or leave --engine out), or drop --image.",
        )
    return engine


def default_docker_runtime(engine: DockerEngine) -> str:
    """The runtime a docker run uses when none is named: official when its image is there and
    built from the current lock, else slim (as runs on bwrap pick the built venv)."""
    from posebowl.engines.docker import image as docker_image

    want = runtimes.spec("official").lock_sha256()
    labels = docker_image.image_labels(engine.docker, f"{IMAGE_REPO}:official")
    if labels is not None and labels.get(docker_image.LOCK_LABEL) == want:
        return "official"
    return "slim"


def prepare_docker(engine: DockerEngine, image: str | None, runtime: str | None) -> None:
    """Point the docker engine at its image and check it (SetupError with the fix, before
    anything runs). ``image``: any image; without a runtime asked for, a posebowl image's own
    runtime (its labels) decides which lock it must match. No image: the runtime's image
    (``runtime``, else the default runtime). A venv's path as ``runtime`` means nothing here."""
    if image is not None:
        engine.use_image(image)
    name = runtime if runtime in runtimes.NAMES else None
    if name is None and not engine.image_given:
        name = default_docker_runtime(engine)
    if name is not None:
        engine.select_runtime(name, runtimes.spec(name).lock_sha256())
    engine.check_image()


def engine_option(help: str | None = None) -> Callable[[F], F]:
    """--engine: auto (bwrap when it works, else docker) or one engine by name."""
    return click.option(
        "--engine",
        type=click.Choice(["auto", *sorted(ENGINES)]),
        default="auto",
        show_default=True,
        envvar=ENGINE_ENV,
        help=help,
    )


def limit_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--profile, --time-limit, --memory, --cpus, --pids, --engine, --runtime.

    The command gets them as one ``sandbox: SandboxOptions`` argument.
    """

    @functools.wraps(fn)
    def with_sandbox(*args: Any, **kwargs: Any) -> Any:
        asked = {f.name: kwargs.pop(f.name) for f in dataclasses.fields(SandboxOptions)}
        return fn(*args, sandbox=SandboxOptions(**asked), **kwargs)

    opts = [
        click.option(
            "--profile",
            type=click.Choice(sorted(limits_mod.PROFILES)),
            default=limits_mod.DEFAULT_PROFILE,
            show_default=True,
            help="Named limits: r5 = 4 GiB, 4 cores (at most the host's), 1024 pids, 3 h.",
        ),
        click.option("--time-limit", help="Wall-time limit, e.g. 90s, 15m, 3h."),
        click.option("--memory", help="Memory limit, e.g. 4g, 512m."),
        click.option("--cpus", type=click.FloatRange(min=0.01), help="CPU quota in cores."),
        click.option("--pids", type=click.IntRange(min=8), help="Processes + threads limit."),
        engine_option(
            f"The isolation backend (or set {ENGINE_ENV}); auto: bwrap when it works, "
            "else docker when a daemon answers."
        ),
        click.option(
            "--runtime",
            metavar="official|slim|VENV",
            help="The runtime: official (the platform's packages), slim (posebowl's examples' "
            "subset), or a venv's path [default: official when built, else slim].",
        ),
        image_option(),
    ]
    for opt in reversed(opts):
        with_sandbox = opt(with_sandbox)
    return with_sandbox


def resolve_runtime(runtime: str | None, engine: Engine | None = None) -> Runtime | None:
    """The runtime venv for engines that use the host's (None for docker: its image has one).

    ``runtime`` is a runtime's name, a venv's path, or None for the default runtime.
    """
    if engine is not None and not engine.needs_runtime_venv:
        return None
    ws = workspace.find()
    if runtime is None:
        return runtimes.locate(runtimes.default_name(ws), ws)
    if runtime in runtimes.NAMES:
        return runtimes.locate(runtime, ws)
    return runtimes.runtime_from_venv(Path(runtime))


def image_option() -> Callable[[F], F]:
    """--image: the Docker image to run in; any image, also one posebowl did not build."""
    return click.option(
        "--image",
        default=None,
        metavar="NAME",
        help="Run in this Docker image (implies --engine docker): a runtime image posebowl "
        "built, or any other with a python (the official one after make pull, your own); "
        f"posebowl mounts its entrypoint into it [default: {IMAGE_REPO}:RUNTIME, or "
        f"${IMAGE_ENV}].",
    )
