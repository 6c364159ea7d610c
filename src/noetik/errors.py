"""User-facing errors: each carries one line that names the file, column, row or argument at fault.

The CLI prints ``error: <message>`` and exits non-zero for any ``NoetikError`` without a
traceback; everything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class NoetikError(Exception):
    """An error caused by the user's input (a path, a file, an argument), not by a bug."""


class DataError(NoetikError):
    """A data file that does not match the published KuaiRand format.

    The message names the file and, where known, the column and the 1-based line number in the
    file (line 1 is the header).
    """

    def __init__(
        self,
        path: Path | str,
        problem: str,
        *,
        column: str | None = None,
        line: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.problem = problem
        self.column = column
        self.line = line
        where = f"{self.path}"
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column '{column}'"
        super().__init__(f"{where}: {problem}")

    def __reduce__(self) -> tuple[object, ...]:
        """Pickle support (a Ray task's error travels to the driver as a pickle)."""
        return (_data_error, (type(self), self.path, self.problem, self.column, self.line))


def _data_error(
    cls: type[DataError], path: Path, problem: str, column: str | None, line: int | None
) -> DataError:
    """Rebuild a pickled :class:`DataError`."""
    return cls(path, problem, column=column, line=line)


class ConfigError(NoetikError):
    """An invalid configuration value or command-line argument (the message names it)."""


class TrainingInterrupted(NoetikError):
    """Training stopped by the user (Ctrl-C) after ``step`` updates, its checkpoint saved.

    The CLI prints the message (where it stopped, how to resume) and exits with status 130,
    the shell's status for an interrupt.
    """

    exit_code = 130

    def __init__(self, step: int, message: str) -> None:
        self.step = step
        super().__init__(message)


class OutOfMemoryPlan(NoetikError):
    """A stage would need more memory than the machine has: stopped before allocating.

    The message says what the stage needs, what is available and which setting lowers it.
    """
