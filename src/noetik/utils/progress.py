"""Progress bars for every long step (rich), silent when disabled or not on a terminal."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")

_STDERR = Console(stderr=True)


def make_progress(enabled: bool = True) -> Progress:
    """A rich ``Progress`` on stderr; draws nothing when disabled or stderr is not a terminal."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=_STDERR,
        disable=not (enabled and _STDERR.is_terminal),
        transient=False,
    )


@contextlib.contextmanager
def maybe_progress(progress: Progress | None) -> Iterator[Progress]:
    """Use ``progress`` when given (caller owns it), else a disabled one for the duration."""
    if progress is not None:
        yield progress
        return
    with make_progress(enabled=False) as silent:
        yield silent


def track(
    items: Iterable[T], total: int, description: str, progress: Progress | None
) -> Iterator[T]:
    """Iterate ``items`` advancing a task of ``progress`` (no-op when ``progress`` is None)."""
    if progress is None:
        yield from items
        return
    task = progress.add_task(description, total=total)
    for item in items:
        yield item
        progress.advance(task)
