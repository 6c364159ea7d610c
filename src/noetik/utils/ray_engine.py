"""Ray as the scale-out engine: a session on a local instance or a cluster, and its shards.

Ray is optional (``pip install 'noetik[ray]'``): nothing imports it until :func:`ray_session`
is entered, which is what ``--ray`` does. Inside the session :class:`RayShards` runs each shard
of a sharded computation (:mod:`noetik.utils.shards`) as one Ray task calling the same plain
function as the local path, so results do not depend on where they ran.

* ``ray_session(None)`` starts a Ray instance on this machine's cores (on 127.0.0.1:
  ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` is set while it runs) and shuts it down on exit.
* ``ray_session("HOST:PORT")`` joins the cluster of ``ray start --head`` at that address (or
  ``"auto"``: the cluster this machine is part of) and only disconnects on exit. Every node
  must see the same files: the data, the simulator and the run folders are read by path.
* Workers import ``noetik`` from the driver's source folder when they see it (the same
  machine, or a shared filesystem), else from their own install.

A task whose worker dies is retried ``max_retries`` times by Ray; a task that fails anyway, or
raises, stops the computation with one line naming the task (:class:`ShardFailed`).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from rich.progress import Progress

from noetik.errors import ConfigError, NoetikError
from noetik.utils.shards import check_sizes

S = TypeVar("S")
T = TypeVar("T")
R = TypeVar("R")

#: The one-line error when Ray is asked for but not installed.
RAY_MISSING = "noetik[ray] is not installed: pip install 'noetik[ray]'"
#: Keeps a Ray instance this process starts on 127.0.0.1 (set only while it runs).
LOCAL_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
#: Ray retries a task whose worker died (not one that raised) this many times by default.
MAX_RETRIES = 3


class ShardFailed(NoetikError):
    """A Ray task of a sharded computation failed: the message names the task and why."""


def import_ray() -> Any:
    """The ``ray`` module, or :class:`ConfigError` (:data:`RAY_MISSING`) when not installed."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(RAY_MISSING) from exc
    return ray


@dataclass(frozen=True)
class RayShards:
    """Runs the shards of a sharded computation as Ray tasks (one task per shard, one CPU
    each), in the Ray session this process is connected to (:func:`ray_session`)."""

    address: str
    """The address of the cluster's head (its GCS, ``host:port``)."""
    workers: int
    """CPUs of the cluster when the session started: tasks that can run at the same time."""
    max_retries: int = MAX_RETRIES
    """Times Ray reruns a task whose worker or node died before giving up."""

    def map(
        self,
        fn: Callable[[S, T], R],
        shared: S,
        shards: Sequence[T],
        *,
        sizes: Sequence[int],
        description: str,
        progress: Progress | None = None,
    ) -> list[R]:
        """``[fn(shared, shard) for shard in shards]`` as Ray tasks named ``description i/n``
        (``shared`` is put in the object store once), results in shard order; a ``description``
        task of ``progress`` advances by ``sizes[i]`` as shard ``i`` finishes."""
        check_sizes(shards, sizes)
        ray = import_ray()
        n = len(shards)
        names = [f"{description} {i + 1}/{n}" for i in range(n)]
        remote = ray.remote(num_cpus=1)(fn)
        shared_ref = ray.put(shared)
        refs = [
            remote.options(name=names[i], max_retries=self.max_retries).remote(shared_ref, shard)
            for i, shard in enumerate(shards)
        ]
        position = {ref: i for i, ref in enumerate(refs)}
        results: dict[int, R] = {}
        task = None if progress is None else progress.add_task(description, total=sum(sizes))
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                i = position[ref]
                try:
                    results[i] = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    for other in pending:
                        ray.cancel(other)
                    raise ShardFailed(
                        f"ray task '{names[i]}' failed: {failure_reason(exc, self.max_retries)}"
                    ) from exc
                if progress is not None and task is not None:
                    progress.advance(task, sizes[i])
        return [results[i] for i in range(n)]


def failure_reason(exc: BaseException, max_retries: int) -> str:
    """One line saying why a Ray task failed: the exception it raised (a Noetik error's own
    message), or its worker's or node's death after ``max_retries`` retries."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, NoetikError):
        return str(cause)
    if isinstance(cause, BaseException):
        return f"{type(cause).__name__}: {_first_line(str(cause))}"
    return f"{type(exc).__name__} after {max_retries} retries: {_first_line(str(exc))}"


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else "(no message)"


def worker_pythonpath() -> str:
    """``PYTHONPATH`` of the workers: the folder this ``noetik`` was imported from, then the
    driver's own ``PYTHONPATH`` entries as absolute paths (workers do not share its cwd)."""
    import noetik

    source = str(Path(noetik.__file__).resolve().parents[1])
    extra = [str(Path(p).resolve()) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    paths = [source, *(p for p in extra if p and p != source)]
    return os.pathsep.join(dict.fromkeys(paths))


@contextlib.contextmanager
def ray_session(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    max_retries: int = MAX_RETRIES,
) -> Iterator[RayShards]:
    """Connect this process to Ray for the duration: join the cluster at ``address``, or (None)
    start a local instance with ``num_cpus`` CPUs (None: this machine's cores) and shut it
    down on exit. A process already connected to Ray keeps its session (and keeps it open).

    A local instance runs on 127.0.0.1: :data:`LOCAL_ONLY` is ``0`` while it runs (Ray reads
    it when first imported, which the CLI does only here). Yields the :class:`RayShards`
    engine of the session. Raises :class:`ConfigError` when Ray is not installed, or when the
    cluster at ``address`` cannot be joined.
    """
    if num_cpus is not None and num_cpus < 1:
        raise ConfigError(f"num_cpus must be >= 1, got {num_cpus}")
    if max_retries < 0:
        raise ConfigError(f"max_retries must be >= 0, got {max_retries}")
    if address is not None:
        with _joined(import_ray(), address, max_retries) as engine:
            yield engine
        return
    before = os.environ.get(LOCAL_ONLY)
    os.environ[LOCAL_ONLY] = "0"  # before Ray is imported: it reads the variable then
    try:
        ray = import_ray()
        if ray.is_initialized():
            yield _engine(ray, max_retries)
            return
        ray.init(
            address="local",
            num_cpus=num_cpus or os.cpu_count() or 1,
            include_dashboard=False,
            runtime_env=_runtime_env(),
            **_QUIET,
        )
        try:
            yield _engine(ray, max_retries)
        finally:
            ray.shutdown()
    finally:
        if before is None:
            os.environ.pop(LOCAL_ONLY, None)
        else:
            os.environ[LOCAL_ONLY] = before


#: Ray's own log lines below warnings stay out of the terminal; workers' output is shown.
_QUIET: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": True}


def _runtime_env() -> dict[str, Any]:
    """The job's runtime environment: the workers' ``PYTHONPATH`` (:func:`worker_pythonpath`)."""
    return {"env_vars": {"PYTHONPATH": worker_pythonpath()}}


@contextlib.contextmanager
def _joined(ray: Any, address: str, max_retries: int) -> Iterator[RayShards]:
    """Join the cluster at ``address`` (unless this process is connected already) and
    disconnect on exit; the cluster keeps running."""
    if ray.is_initialized():
        yield _engine(ray, max_retries)
        return
    try:
        ray.init(address=address, runtime_env=_runtime_env(), **_QUIET)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError(
            f"cannot join the Ray cluster at {address!r}: {_first_line(str(exc))}"
        ) from exc
    try:
        yield _engine(ray, max_retries)
    finally:
        ray.shutdown()


def _engine(ray: Any, max_retries: int) -> RayShards:
    """The engine of the session ``ray`` is connected to."""
    cpus = int(ray.cluster_resources().get("CPU", 1))
    address = str(ray.get_runtime_context().gcs_address)
    return RayShards(address=address, workers=max(1, cpus), max_retries=max_retries)
