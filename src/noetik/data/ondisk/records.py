"""Transitions as fixed-size records in ``.npy`` files, read back a few rows at a time.

One record per logged transition holds everything a training batch reads of that row (see
:func:`record_dtype`), so a batch row and the history window before it are one contiguous read.
Files are written whole (:func:`save_npy`: temporary name, then rename) and read with
``os.pread``: nothing is memory-mapped, so reading rows never adds the file's pages to the
process's resident memory (the operating system's page cache holds them, and gives them back
under pressure).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from noetik.data.rewards import SIGNALS
from noetik.data.state_layout import STATE_DIM
from noetik.data.transitions import Transitions
from noetik.errors import DataError
from noetik.utils.io import atomic_path

__all__ = ["RecordFile", "record_dtype", "save_npy", "to_records"]


def record_dtype(obs_dtype: str = "float16") -> np.dtype:
    """The packed record of one transition: ``obs`` (128,) in ``obs_dtype``, ``action`` int64,
    ``reward`` float32, ``done`` bool, ``episode_id`` int64, ``step`` int32, ``user_id`` int32,
    ``time_ms`` int64, ``signals`` (12,) float32 (:data:`~noetik.data.rewards.SIGNALS`)."""
    return np.dtype(
        [
            ("obs", np.dtype(obs_dtype), (STATE_DIM,)),
            ("action", np.int64),
            ("reward", np.float32),
            ("done", np.bool_),
            ("episode_id", np.int64),
            ("step", np.int32),
            ("user_id", np.int32),
            ("time_ms", np.int64),
            ("signals", np.float32, (len(SIGNALS),)),
        ]
    )


def to_records(t: Transitions, episode_offset: int = 0) -> np.ndarray:
    """(N,) records of the N rows of ``t``, episode ids shifted by ``episode_offset``."""
    out = np.empty(len(t), dtype=record_dtype(str(t.obs.dtype)))
    out["obs"] = t.obs
    out["action"] = t.action
    out["reward"] = t.reward
    out["done"] = t.done
    out["episode_id"] = t.episode_id + episode_offset
    out["step"] = t.step
    out["user_id"] = t.user_id
    out["time_ms"] = t.time_ms
    out["signals"] = t.signals
    return out


def save_npy(path: Path, array: np.ndarray) -> None:
    """Write ``array`` (records, or any array) to ``path`` as ``.npy`` (temporary file, then
    rename: a file under its final name is always whole)."""
    with atomic_path(path) as tmp, tmp.open("wb") as handle:
        np.save(handle, array, allow_pickle=False)


class RecordFile:
    """The records of one ``.npy`` file written by :func:`save_npy`, read by row range."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd = -1
        try:
            with self.path.open("rb") as handle:
                version = np.lib.format.read_magic(handle)
                read_header = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                shape, fortran, dtype = read_header(handle)
                self.offset = handle.tell()
        except (OSError, ValueError) as exc:
            raise DataError(self.path, f"not a transitions record file ({exc})") from None
        if fortran or len(shape) != 1 or dtype.names is None:
            raise DataError(self.path, "not a transitions record file (unexpected array layout)")
        self.dtype: np.dtype = dtype
        self.rows = int(shape[0])
        expected = self.offset + self.rows * dtype.itemsize
        if os.path.getsize(self.path) != expected:
            raise DataError(self.path, "truncated transitions record file (size does not match)")
        self._fd = os.open(self.path, os.O_RDONLY)

    def read(self, start: int, stop: int) -> np.ndarray:
        """(stop - start,) records of rows ``[start, stop)`` (0 <= start <= stop <= rows)."""
        size = self.dtype.itemsize
        data = os.pread(self._fd, (stop - start) * size, self.offset + start * size)
        return np.frombuffer(data, dtype=self.dtype)

    def close(self) -> None:
        """Release the file descriptor."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        self.close()
