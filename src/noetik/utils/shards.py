"""Shards of work and the engines that run them: in this process, or on Ray.

A sharded computation is one plain function ``fn(shared, shard) -> result`` called once per
shard, with ``shared`` (e.g. an agent and its setup) the same for every shard. An engine runs
those calls and returns the results in the order of the shards, so the caller pools them
exactly as it would pool the shards of a local run:

* :class:`LocalShards`: one call after another in this process (the reference; tests use it
  to check that sharding changes nothing);
* :class:`noetik.utils.ray_engine.RayShards`: one Ray task per shard, on a local Ray instance
  or a cluster (:func:`noetik.utils.ray_engine.ray_session`).

Both advance a progress task by each shard's size as the shard finishes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from rich.progress import Progress

from noetik.errors import ConfigError

S = TypeVar("S")
T = TypeVar("T")
R = TypeVar("R")


class ShardEngine(Protocol):
    """What runs the shards of a sharded computation."""

    @property
    def workers(self) -> int:
        """Shards that can run at the same time (CPUs of the Ray cluster, 1 in-process)."""
        ...

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
        """``[fn(shared, shard) for shard in shards]``, advancing a ``description`` task of
        ``progress`` (total ``sum(sizes)``) by ``sizes[i]`` when shard ``i`` finishes."""
        ...


@dataclass(frozen=True)
class LocalShards:
    """Runs the shards one after another in this process."""

    workers: int = 1
    """The workers it stands for: callers cut about four shards per worker (more than 1 gives
    several shards to check that sharding changes nothing); they still run one at a time."""

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
        """``[fn(shared, shard) for shard in shards]`` with progress per shard."""
        check_sizes(shards, sizes)
        task = None if progress is None else progress.add_task(description, total=sum(sizes))
        results = []
        for shard, size in zip(shards, sizes, strict=True):
            results.append(fn(shared, shard))
            if progress is not None and task is not None:
                progress.advance(task, size)
        return results


def check_sizes(shards: Sequence[object], sizes: Sequence[int]) -> None:
    """Raise :class:`ConfigError` unless there is one size per shard."""
    if len(sizes) != len(shards):
        raise ConfigError(f"{len(shards)} shards but {len(sizes)} sizes")


def split_even(items: Sequence[T], n_shards: int) -> list[list[T]]:
    """``items`` cut into ``min(n_shards, len(items))`` contiguous runs whose lengths differ by
    at most one (the earlier runs are the longer ones), in order."""
    if n_shards < 1:
        raise ConfigError(f"n_shards must be >= 1, got {n_shards}")
    n = min(n_shards, len(items))
    if n == 0:
        return []
    size, extra = divmod(len(items), n)
    shards, start = [], 0
    for i in range(n):
        stop = start + size + (1 if i < extra else 0)
        shards.append(list(items[start:stop]))
        start = stop
    return shards
