"""Transitions on disk: the shards' record files, read one batch window at a time.

:class:`DiskTransitions` is what offline training samples from when a log does not fit in
memory. It never holds the rows: a batch of B rows reads, for each row ``r``, the records
``r - k .. r + 1`` (the history window of ``k`` earlier rows, the row, and the row after it,
whose state is the next state) in one read, and returns them as a small in-memory
:class:`~noetik.data.transitions.Transitions` of ``B * (k + 2)`` rows. History, next states
and masks are then computed by the same code as for transitions in memory. Positions before a
file's first row are padding (user ``-1``, ``done``), so a window never sees another user.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from noetik.data.ondisk.build import read_shard_stats, record_files
from noetik.data.ondisk.records import RecordFile
from noetik.data.rewards import RewardConfig
from noetik.data.state_layout import STATE_DIM
from noetik.data.transition_stats import TransitionStats
from noetik.data.transitions import ItemVocab, Transitions
from noetik.errors import DataError
from noetik.utils.io import read_json

__all__ = ["DiskTransitions"]


@dataclass(frozen=True, eq=False)
class DiskTransitions:
    """The transitions of a folder written by :func:`~noetik.data.ondisk.build_disk_transitions`:
    N rows, the concatenation of its shards in order."""

    files: tuple[RecordFile, ...]
    """The F record files (each holds whole users), in row order."""
    offsets: np.ndarray
    """(F + 1,) int64: file ``f`` holds global rows ``offsets[f] .. offsets[f + 1] - 1``."""
    vocab: ItemVocab
    """Video id <-> action index mapping."""
    reward_config: RewardConfig
    """The reward that produced the records' ``reward``."""
    stats: TransitionStats
    """Reward moments, episode-return range and action counts of all N rows."""
    folder: Path
    """The folder it was read from."""

    @classmethod
    def load(cls, folder: Path) -> DiskTransitions:
        """Open ``folder`` (raises DataError when it is incomplete or damaged)."""
        folder = Path(folder)
        meta: dict[str, Any] = read_json(folder / "transitions.json", "transitions manifest")
        try:
            rows = [int(n) for n in meta["shard_rows"]]
            vocab = ItemVocab(np.load(folder / "video_ids.npy", allow_pickle=False))
            files = tuple(RecordFile(p) for p in record_files(folder, len(rows)))
            reward = RewardConfig.from_mapping(meta["reward"])
        except (KeyError, TypeError, ValueError, OSError) as exc:
            raise DataError(folder, f"incomplete transitions folder ({exc})") from None
        if sum(f.rows for f in files) != sum(rows):
            raise DataError(folder, "shard record files do not match transitions.json")
        stats = TransitionStats.pooled(
            read_shard_stats(folder, k, len(vocab)) for k in range(len(rows))
        )
        offsets = np.concatenate([[0], np.cumsum([f.rows for f in files])]).astype(np.int64)
        return cls(files, offsets, vocab, reward, stats, folder)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def n_actions(self) -> int:
        """Size of the action space."""
        return len(self.vocab)

    @property
    def obs_dim(self) -> int:
        """Dimensions of a state (128)."""
        return STATE_DIM

    def window(self, rows: np.ndarray, k: int) -> tuple[Transitions, np.ndarray, np.ndarray]:
        """The records around ``rows`` (B,) int64 as in-memory transitions of ``B * (k + 2)``
        rows, with the positions of ``rows`` in them (B,) and of their next rows (B,)."""
        rows = np.asarray(rows, dtype=np.int64)
        width = k + 2
        shard = np.searchsorted(self.offsets, rows, side="right") - 1
        local = rows - self.offsets[shard]
        dtype = self.files[0].dtype
        block = np.zeros((len(rows), width), dtype=dtype)
        block["user_id"] = -1
        block["done"] = True
        for b, (s, r) in enumerate(zip(shard.tolist(), local.tolist(), strict=True)):
            lo, hi = max(r - k, 0), min(r + 2, self.files[s].rows)
            first = lo - (r - k)
            block[b, first : first + hi - lo] = self.files[s].read(lo, hi)
        flat = block.reshape(-1)
        n = len(flat)
        index = np.arange(n, dtype=np.int64)
        done = flat["done"].copy()
        mini = Transitions(
            obs=flat["obs"],
            action=np.where(flat["user_id"] >= 0, flat["action"], 0),
            reward=flat["reward"],
            done=done,
            next_index=np.where(done, index, np.minimum(index + 1, n - 1)),
            episode_id=flat["episode_id"],
            step=flat["step"],
            user_id=flat["user_id"],
            time_ms=flat["time_ms"],
            signals=flat["signals"],
            vocab=self.vocab,
            reward_config=self.reward_config,
        )
        at = np.arange(len(rows), dtype=np.int64) * width + k
        return mini, at, mini.next_index[at]

    def close(self) -> None:
        """Release the record files."""
        for f in self.files:
            f.close()
