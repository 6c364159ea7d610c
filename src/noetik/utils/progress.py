"""Progress for every long step: a live bar on a terminal, timed lines in logs.

On a terminal, :func:`make_progress` gives a rich bar with the time elapsed and an estimate of
the time left. When stderr is not a terminal (output redirected to a file, CI logs), the same
object prints plain lines instead: one per task every ``NOETIK_PROGRESS_INTERVAL`` seconds
(default 10) while it runs, and one when it ends, e.g.
``Evaluating runs: 2/5 (40%), 0:01:10 elapsed, about 0:01:45 left``. A task that ends within
the interval prints nothing, so quick steps (and one-line errors) keep logs clean.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")

_STDERR = Console(stderr=True)


def _interval() -> float:
    """Seconds between two log lines of one task (``NOETIK_PROGRESS_INTERVAL``)."""
    try:
        return max(0.0, float(os.environ.get("NOETIK_PROGRESS_INTERVAL", "10")))
    except ValueError:
        return 10.0


def _clock(seconds: float | None) -> str:
    return "?" if seconds is None else str(timedelta(seconds=round(seconds)))


class LogProgress(Progress):
    """A :class:`Progress` that draws nothing and prints timed plain lines instead (logs)."""

    def __init__(self, *columns: str | ProgressColumn, fields: tuple[str, ...] = ()) -> None:
        super().__init__(*columns, console=_STDERR, disable=True)
        self.interval = _interval()
        self.fields = fields
        self._start: dict[TaskID, float] = {}
        self._last: dict[TaskID, float] = {}
        self._finished: set[TaskID] = set()

    def __enter__(self) -> LogProgress:
        super().__enter__()
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, daemon=True)
        self._beat.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._beat.join()
        super().__exit__(*exc)  # type: ignore[arg-type]

    def _heartbeat(self) -> None:
        """A line for every running task that has been silent for ``interval`` (a long step
        with no updates of its own, e.g. one lens of one run, still shows it is alive)."""
        while not self._stop.wait(max(self.interval, 1.0)):
            with self._lock:
                running = list(self._tasks)
            for task_id in running:
                self._report(task_id)

    def update(self, task_id: TaskID, **kwargs: Any) -> None:
        super().update(task_id, **kwargs)
        self._report(task_id)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._report(task_id)

    def add_task(self, description: str, *args: Any, **kwargs: Any) -> TaskID:
        task_id = super().add_task(description, *args, **kwargs)
        self._start[task_id] = self._last[task_id] = time.monotonic()
        if self.interval == 0:
            self._report(task_id)
        return task_id

    def _report(self, task_id: TaskID) -> None:
        """Print the task's line once ``interval`` has passed since its last line (or its
        start), and when it ends after running for at least ``interval``."""
        with self._lock:
            if task_id in self._finished:
                return
            task = self._tasks[task_id]
            now = time.monotonic()
            done = task.total is not None and task.completed >= task.total
            since = self._start[task_id] if done else self._last[task_id]
            if now - since < self.interval:
                return
            self._last[task_id] = now
            if done:
                self._finished.add(task_id)
            sys.stderr.write(self.line(task_id) + "\n")
            sys.stderr.flush()

    def line(self, task_id: TaskID) -> str:
        """The plain line of one task: count, share, time elapsed and left, extra fields."""
        task = self._tasks[task_id]
        count = f"{task.completed:,.0f}"
        if task.total:
            count += f"/{task.total:,.0f} ({100 * task.completed / task.total:.0f}%)"
        text = f"{task.description}: {count}, {_clock(task.elapsed or 0.0)} elapsed"
        if task.total and 0 < task.completed < task.total:
            text += f", about {_clock(task.time_remaining)} left"
        extra = [str(task.fields.get(name, "")) for name in self.fields]
        return text + "".join(f"  {e}" for e in extra if e)


def make_progress(enabled: bool = True, fields: tuple[str, ...] = ()) -> Progress:
    """A progress display on stderr: a live bar on a terminal, :class:`LogProgress` lines
    otherwise, nothing when disabled. ``fields`` names task fields shown after the bar."""
    columns: list[str | ProgressColumn] = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        *(TextColumn(f"{{task.fields[{name}]}}") for name in fields),
    ]
    if enabled and not _STDERR.is_terminal:
        return LogProgress(*columns, fields=fields)
    return Progress(*columns, console=_STDERR, disable=not enabled, transient=False)


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
