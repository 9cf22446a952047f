"""The ``ray`` executor: each task is a Ray task with declared resources and Ray's retries.

Ray does the scheduling, placement and fault tolerance; this module only submits, waits and
translates. Each task runs with ``num_cpus`` and ``memory`` from its :class:`Resources`,
``max_retries`` attempts after a lost worker or node (Ray's own retries) and, for the
exception types the caller names, after an error too (``retry_exceptions``). Tasks must be
idempotent: they write their files atomically to the shared output, so an attempt killed
halfway leaves nothing a rerun would trust, and a second attempt writes the same bytes.

Connecting (``address``): ``HOST:PORT`` of a running cluster's head (what ``ray start --head``
prints), ``ray://HOST:10001`` for Ray Client, ``local`` to start a throwaway one-machine
instance for this run, or nothing: ``$RAY_ADDRESS``, else the cluster ``ray start`` started on
this machine (Ray's ``address="auto"``). Without a cluster it says how to start one; it never
starts one silently, since a run meant for a cluster would then crawl along on one machine.
If Ray is already initialised in this process (a script, a test), that connection is used.
"""

from __future__ import annotations

import logging
import os
import socket
from collections import Counter
from collections.abc import Callable, Generator, Sequence
from typing import Any, TypeVar

from posebowl.errors import SetupError
from posebowl.scale.base import Event, Failed, Finished, Resources, Retried

T = TypeVar("T")
R = TypeVar("R")

INSTALL = "pip install 'posebowl[scale]'"
START = (
    "Start one with `ray start --head` on the head node and `ray start --address HEAD:6379` on "
    "each worker, then pass --ray-address HEAD:6379 (or set RAY_ADDRESS); "
    "`--ray-address local` runs a one-machine instance instead."
)
MAX_RETRIES = 3  # attempts after the first, when a worker or node is lost (Ray's default)
POLL_S = 0.5  # how often the driver looks at finished tasks and retries


def import_ray() -> Any:
    """The ``ray`` module, or SetupError naming the extra that brings it."""
    try:
        import ray
    except ImportError as exc:
        raise SetupError(
            "--executor ray needs Ray, which is not installed.",
            f"Install the [scale] extra: {INSTALL} (on this machine and on every node).",
        ) from exc
    return ray


def _probe(address: str) -> None:
    """SetupError at once when nothing listens at ``HOST:PORT`` (Ray would wait ~40 s)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise SetupError(f"--ray-address {address!r} is not HOST:PORT.", START)
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        raise SetupError(
            f"No Ray cluster answers at {address} ({exc.strerror or exc}).", START
        ) from exc


def _attempt(fn: Callable[[Any], Any], tracker: Any, index: int, item: Any) -> Any:
    """One attempt of task ``index`` on a worker: note it, then run it."""
    if tracker is not None:
        tracker.started.remote(index)  # fire and forget: a lost note only hides a retry
    return fn(item)


class _Attempts:
    """Counts attempts per task (a Ray actor): attempts beyond the first are retries."""

    def __init__(self) -> None:
        self.starts: Counter[int] = Counter()

    def started(self, index: int) -> None:
        self.starts[index] += 1

    def retries(self) -> int:
        return sum(c - 1 for c in self.starts.values())


class RayExecutor:
    """Run tasks as Ray tasks on the cluster at ``address`` (see the module docstring)."""

    name = "ray"

    def __init__(self, address: str | None = None, *, max_retries: int = MAX_RETRIES) -> None:
        self.address = address
        self.max_retries = max_retries
        self._ray: Any = None
        self._owned = False  # True when this executor called ray.init (and so shuts it down)

    # ------------------------------------------------------------------ connection

    def connect(self) -> Any:
        """Connect to the cluster (once); return the ray module."""
        if self._ray is not None:
            return self._ray
        ray = import_ray()
        if not ray.is_initialized():
            address = self.address or os.environ.get("RAY_ADDRESS") or "auto"
            if address not in ("auto", "local") and not address.startswith("ray://"):
                _probe(address)
            kwargs: dict[str, Any] = {"include_dashboard": False} if address == "local" else {}
            try:
                ray.init(
                    address=address,
                    log_to_driver=False,  # tasks write files and logs, not to our terminal
                    logging_level=logging.WARNING,
                    **kwargs,
                )
            except ConnectionError as exc:
                where = "on this machine" if address == "auto" else f"at {address}"
                raise SetupError(f"No running Ray cluster was found {where}.", START) from exc
            self._owned = True
        self._ray = ray
        return ray

    def close(self) -> None:
        """Disconnect if this executor connected (the cluster itself keeps running)."""
        if self._ray is not None and self._owned:
            self._ray.shutdown()
        self._ray, self._owned = None, False

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self) -> str:
        ray = self.connect()
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        cpus = sum(n.get("Resources", {}).get("CPU", 0) for n in nodes)
        where = getattr(ray.get_runtime_context(), "gcs_address", None) or self.address
        return f"Ray cluster at {where or 'auto'}: {len(nodes)} nodes, {cpus:g} CPUs"

    def _check_feasible(self, resources: Resources) -> None:
        """SetupError when no alive node could ever run a task needing ``resources``."""
        ray = self._ray
        fits = [
            n
            for n in ray.nodes()
            if n.get("Alive")
            and n.get("Resources", {}).get("CPU", 0) >= resources.num_cpus
            and n.get("Resources", {}).get("memory", 0) >= (resources.memory or 0)
        ]
        if not fits:
            mem = f" and {resources.memory / 2**30:.1f} GiB" if resources.memory else ""
            raise SetupError(
                f"No node of the Ray cluster has {resources.num_cpus:g} CPUs{mem} free for a task.",
                "Add a bigger worker (`ray start --address HEAD:6379 --num-cpus N`), or ask for "
                "less (e.g. fewer --threads).",
            )

    # ------------------------------------------------------------------ map

    def map(
        self,
        fn: Callable[[T], R],
        items: Sequence[T],
        *,
        resources: Resources | None = None,
        retry_on: tuple[type[BaseException], ...] = (),
    ) -> Generator[Event, None, None]:
        ray = self.connect()
        res = resources or Resources()
        if not items:
            return
        self._check_feasible(res)
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        near: NodeAffinitySchedulingStrategy | str
        try:  # the counter lives on the driver's node when it has one (it dies with it)
            near = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), True)
        except Exception:  # Ray Client: no node of its own
            near = "DEFAULT"
        tracker = ray.remote(num_cpus=0)(_Attempts).options(scheduling_strategy=near).remote()
        name = getattr(getattr(fn, "func", fn), "__name__", "task")  # workers show ray::NAME
        task = ray.remote(_attempt).options(
            name=name,
            num_cpus=res.num_cpus,
            memory=res.memory,
            max_retries=self.max_retries,
            retry_exceptions=list(retry_on) if retry_on else False,
        )
        fn_ref = ray.put(fn)  # shipped once, not once per task
        index = {task.remote(fn_ref, tracker, i, item): i for i, item in enumerate(items)}
        pending = list(index)
        seen = 0
        try:
            while pending:
                ready, pending = ray.wait(
                    pending, num_returns=min(len(pending), 256), timeout=POLL_S
                )
                for ref in ready:
                    try:
                        yield Finished(index[ref], ray.get(ref))
                    except ray.exceptions.RayTaskError as exc:  # the task raised
                        yield Failed(index[ref], getattr(exc, "cause", None) or exc)
                    except ray.exceptions.RayError as exc:  # lost for good: worker, node
                        yield Failed(index[ref], exc)
                try:
                    retries = ray.get(tracker.retries.remote(), timeout=10)
                except ray.exceptions.RayError:
                    retries = seen  # the counter is gone (its node died): stop counting
                if retries > seen:
                    yield Retried(retries - seen)
                    seen = retries
        finally:
            for ref in pending:  # the caller stopped early (an error, Ctrl-C)
                ray.cancel(ref)
            ray.kill(tracker)
