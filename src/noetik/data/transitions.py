"""Offline RL transitions from a KuaiRand log: states, actions, rewards, episode structure.

Row ``i`` of :class:`Transitions` is one logged interaction: the state before the video was
shown (``obs[i]``, see :mod:`noetik.data.features`), the video shown (``action[i]``, an index
of :class:`ItemVocab`), the user's feedback (``signals[i]``, see :mod:`noetik.data.rewards`)
and the reward computed from it. Rows are sorted by user and time; an episode is a contiguous
run of rows (see :mod:`noetik.data.episodes`). The next state is never stored twice:
``next_index[i]`` points at the row holding it (``i + 1`` inside an episode, ``i`` itself for a
terminal row, whose next state is irrelevant because ``done[i]`` is true).

>>> t = build_transitions(load_kuairand(path))
>>> batch = t.sample(256, np.random.default_rng(0))   # float32 obs / next_obs
>>> print(format_episodes(t, 3))
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
from rich.progress import Progress

from noetik.data.dataset import KuaiRandDataset
from noetik.data.episodes import EpisodeConfig, assign_episodes
from noetik.data.features import (
    STATE_COLUMNS,
    FeatureConfig,
    StateTables,
    build_states,
    state_tables,
)
from noetik.data.rewards import SIGNALS, RewardConfig, reward_from_signals, signals_expr
from noetik.data.schema import FileKind
from noetik.data.splits import SplitConfig, train_mask_expr
from noetik.data.transition_stats import TransitionStats
from noetik.errors import ConfigError
from noetik.utils.arrays import IdIndex
from noetik.utils.memory import require


@dataclass(frozen=True, eq=False)
class ItemVocab:
    """Bijection between KuaiRand ``video_id`` and contiguous action indices 0..A-1."""

    video_ids: np.ndarray
    """(A,) int64, sorted and unique: ``video_ids[a]`` is the video of action ``a``."""

    @classmethod
    def from_ids(cls, ids: np.ndarray | list[int]) -> ItemVocab:
        """Vocabulary of the distinct ids in ``ids`` (sorted ascending)."""
        return cls(np.unique(np.asarray(ids, dtype=np.int64)))

    @classmethod
    def from_dataset(cls, ds: KuaiRandDataset) -> ItemVocab:
        """Every video of the basic video features, plus any video that only the logs show.

        Without the video features file the logs (standard and random) define the vocabulary.
        """
        kinds = [FileKind.VIDEO_BASIC, FileKind.LOG_STANDARD, FileKind.LOG_RANDOM]
        return cls.from_scans([ds.scan(k) for k in kinds if ds.has(k)])

    @classmethod
    def from_scans(cls, scans: Sequence[pl.LazyFrame]) -> ItemVocab:
        """The distinct ``video_id`` of tables ``scans`` (read by the streaming engine, so
        a log larger than memory can be one of them, or held in many shards)."""
        parts = [scan.select(pl.col("video_id").cast(pl.Int64)) for scan in scans]
        ids = pl.concat(parts).unique().collect(engine="streaming")["video_id"].to_numpy()
        return cls.from_ids(ids)

    @functools.cached_property
    def index(self) -> IdIndex:
        """Fast id -> action lookup table (built on first use)."""
        return IdIndex(self.video_ids)

    def __len__(self) -> int:
        return len(self.video_ids)

    def encode(self, video_ids: np.ndarray) -> np.ndarray:
        """Action indices (int64) of ``video_ids``; KeyError names the first unknown id."""
        ids = np.asarray(video_ids, dtype=np.int64)
        pos, found = self.index.lookup(ids)
        if not np.all(found):
            raise KeyError(f"video_id {int(ids[~found].flat[0])} is not in the item vocabulary")
        return pos

    def decode(self, actions: np.ndarray) -> np.ndarray:
        """Video ids (int64) of action indices."""
        decoded: np.ndarray = self.video_ids[np.asarray(actions, dtype=np.int64)]
        return decoded


@dataclass(frozen=True)
class TransitionBatch:
    """A sampled minibatch, states cast to float32."""

    rows: np.ndarray
    """(B,) int64 row indices into the :class:`Transitions`."""
    obs: np.ndarray
    """(B, 128) float32 states."""
    action: np.ndarray
    """(B,) int64 actions."""
    reward: np.ndarray
    """(B,) float32 rewards."""
    next_obs: np.ndarray
    """(B, 128) float32 next states (equal to ``obs`` where ``done``)."""
    done: np.ndarray
    """(B,) bool, true at the last step of an episode."""


@dataclass(frozen=True, eq=False)
class Transitions:
    """All transitions of one log (or one split of it), as aligned numpy arrays of N rows."""

    obs: np.ndarray
    """(N, 128) float16 (or float32, see ``FeatureConfig.obs_dtype``) state before the step."""
    action: np.ndarray
    """(N,) int64 index of the shown video in ``vocab``."""
    reward: np.ndarray
    """(N,) float32 reward of the step (``reward_config`` applied to ``signals``)."""
    done: np.ndarray
    """(N,) bool, true on the last row of each episode."""
    next_index: np.ndarray
    """(N,) int64 row of the next state in the same episode; the row itself when ``done``."""
    episode_id: np.ndarray
    """(N,) int64 episode of the row (non-decreasing; unique per episode within the log)."""
    step: np.ndarray
    """(N,) int32 0-based position of the row in its episode in the full log."""
    user_id: np.ndarray
    """(N,) int32 KuaiRand user id."""
    time_ms: np.ndarray
    """(N,) int64 interaction time (Unix ms)."""
    signals: np.ndarray
    """(N, 12) float32 feedback signals in :data:`noetik.data.rewards.SIGNALS` order."""
    vocab: ItemVocab
    """Video id <-> action index mapping (``len(vocab)`` actions)."""
    reward_config: RewardConfig
    """The reward that produced ``reward``."""

    def __len__(self) -> int:
        return len(self.action)

    @property
    def n_actions(self) -> int:
        """Size of the action space (also the padding index of :meth:`history`)."""
        return len(self.vocab)

    @property
    def obs_dim(self) -> int:
        """Dimensions of a state (128)."""
        return int(self.obs.shape[1])

    @functools.cached_property
    def stats(self) -> TransitionStats:
        """Reward moments, episode-return range and action counts of every row (one pass,
        computed on first use)."""
        return TransitionStats.of_arrays(self.reward, self.episode_id, self.action, self.n_actions)

    def next_obs(self, rows: np.ndarray) -> np.ndarray:
        """(B, 128) next states of ``rows`` (stored dtype), read through ``next_index``."""
        result: np.ndarray = self.obs[self.next_index[rows]]
        return result

    def history(
        self, rows: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The last ``k`` interactions of the same user before each row (oldest first).

        Returns ``item_idx`` (B, k) int64 (padding: :attr:`n_actions`), ``signals``
        (B, k, 12) float32 (padding 0), ``gap_s`` (B, k) float32 seconds from each past
        interaction to the row's own time (padding 0) and ``mask`` (B, k) bool (true where a
        past interaction exists). Position ``k - 1`` is the previous interaction. Only rows of
        these transitions count: a test split does not see its users' train rows here.
        """
        rows = np.asarray(rows, dtype=np.int64)
        past = rows[:, None] - k + np.arange(k, dtype=np.int64)[None, :]
        safe = np.maximum(past, 0)
        mask = (past >= 0) & (self.user_id[safe] == self.user_id[rows][:, None])
        item_idx = np.where(mask, self.action[safe], self.n_actions)
        signals = np.where(mask[:, :, None], self.signals[safe], np.float32(0.0))
        gap_ms = self.time_ms[rows][:, None] - self.time_ms[safe]
        gap_s = np.where(mask, gap_ms / 1000.0, 0.0).astype(np.float32)
        return item_idx, signals.astype(np.float32), gap_s, mask

    def sample(self, batch_size: int, rng: np.random.Generator) -> TransitionBatch:
        """A uniform minibatch of ``batch_size`` rows (with replacement), float32 states."""
        rows = rng.integers(0, len(self), size=batch_size, dtype=np.int64)
        return TransitionBatch(
            rows=rows,
            obs=self.obs[rows].astype(np.float32),
            action=self.action[rows],
            reward=self.reward[rows],
            next_obs=self.next_obs(rows).astype(np.float32),
            done=self.done[rows],
        )


def episode_links(episode_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(done, next_index)`` for rows grouped into contiguous episodes."""
    n = len(episode_id)
    done = np.ones(n, dtype=bool)
    done[:-1] = episode_id[1:] != episode_id[:-1]
    index = np.arange(n, dtype=np.int64)
    return done, np.where(done, index, index + 1)


def _load_frame(
    log: pl.LazyFrame,
    episodes: EpisodeConfig,
    split_config: SplitConfig | None,
    cutoff_ms: int | None = None,
) -> pl.DataFrame:
    """The log with state columns, prefixed signals, episodes and (optionally) ``is_train``."""
    lazy = log.select(*STATE_COLUMNS, *signals_expr(prefix="sig."))
    lazy = assign_episodes(lazy, episodes)
    if split_config is not None:
        lazy = lazy.with_columns(train_mask_expr(split_config, cutoff_ms))
    return lazy.collect()


def build_transitions(
    ds: KuaiRandDataset,
    kind: FileKind = FileKind.LOG_STANDARD,
    *,
    reward: RewardConfig | None = None,
    episodes: EpisodeConfig | None = None,
    features: FeatureConfig | None = None,
    split: Literal["train", "test"] | None = None,
    progress: Progress | None = None,
    split_config: SplitConfig | None = None,
    vocab: ItemVocab | None = None,
) -> Transitions:
    """Transitions of log ``kind`` (all rows, or the ``split`` part of ``split_config``).

    Episodes and history features are computed on the whole log, then the split's rows are
    kept: test states still summarise the users' earlier (train) interactions, and an episode
    cut by the split ends (``done``) at its last row inside the split. ``vocab`` defaults to
    :meth:`ItemVocab.from_dataset` so that every split and log shares one action space.
    """
    users = ds.users() if ds.has(FileKind.USER_FEATURES) else None
    videos = ds.videos() if ds.has(FileKind.VIDEO_BASIC) else None
    return transitions_from_log(
        ds.interactions(kind),
        state_tables(users, videos),
        vocab or ItemVocab.from_dataset(ds),
        reward=reward,
        episodes=episodes,
        features=features,
        split=split,
        split_config=split_config,
        progress=progress,
    )


def transitions_from_log(
    log: pl.LazyFrame,
    tables: StateTables,
    vocab: ItemVocab,
    *,
    reward: RewardConfig | None = None,
    episodes: EpisodeConfig | None = None,
    features: FeatureConfig | None = None,
    split: Literal["train", "test"] | None = None,
    split_config: SplitConfig | None = None,
    cutoff_ms: int | None = None,
    progress: Progress | None = None,
) -> Transitions:
    """:func:`build_transitions` of an interaction ``log`` (sorted by user and time, with the
    derived columns of :meth:`KuaiRandDataset.interactions`): the whole log, or whole users of
    it (a shard), with ``cutoff_ms`` the global split cutoff of the whole log when given."""
    if split not in (None, "train", "test"):
        raise ConfigError(f"split must be None, 'train' or 'test', got {split!r}")
    reward = reward or RewardConfig()
    frame = _load_frame(log, episodes or EpisodeConfig(), split_config or SplitConfig(), cutoff_ms)
    obs_bytes = 2 if (features or FeatureConfig()).obs_dtype == "float16" else 4
    require(
        frame.height * (128 * obs_bytes + _ROW_BYTES),
        f"transitions of {frame.height:,} rows",
        "features.obs_dtype='float16', --train-rows train or a smaller log",
    )
    sig_cols = [f"sig.{s}" for s in SIGNALS]
    signals = frame.select(sig_cols).to_numpy().astype(np.float32, copy=False)
    keep = None
    if split is not None:
        is_train = frame["is_train"].to_numpy()
        keep = is_train if split == "train" else ~is_train
    frame = frame.drop(sig_cols)
    step = frame["step"].to_numpy()
    obs = build_states(
        frame,
        None,
        None,
        features,
        step,
        signals=signals,
        keep=keep,
        progress=progress,
        tables=tables,
    )
    if keep is not None:
        frame, signals, step = frame.filter(pl.Series(keep)), signals[keep], step[keep]
    episode_id = frame["episode_id"].to_numpy()
    done, next_index = episode_links(episode_id)
    return Transitions(
        obs=obs,
        action=vocab.encode(frame["video_id"].to_numpy()),
        reward=reward_from_signals(signals, reward),
        done=done,
        next_index=next_index,
        episode_id=episode_id.astype(np.int64, copy=False),
        step=step.astype(np.int32, copy=False),
        user_id=frame["user_id"].to_numpy().astype(np.int32, copy=False),
        time_ms=frame["time_ms"].to_numpy().astype(np.int64, copy=False),
        signals=signals,
        vocab=vocab,
        reward_config=reward,
    )


#: Bytes per row besides the state: signals twice (float32), ids, times, links, features work.
_ROW_BYTES = 2 * 12 * 4 + 6 * 8 + 64

_SHOWN = ("is_click", "is_like", "long_view", "is_hate", "watch_ratio", "play_time_s")


def format_episodes(transitions: Transitions, n: int = 3, min_steps: int = 2) -> str:
    """A readable table of the first ``n`` episodes with at least ``min_steps`` steps."""
    t = transitions
    ids, starts, counts = np.unique(t.episode_id, return_index=True, return_counts=True)
    chosen = np.flatnonzero(counts >= min_steps)[:n]
    cols = [SIGNALS.index(s) for s in _SHOWN]
    header = f"{'step':>4} {'video_id':>9} " + " ".join(f"{s:>11}" for s in _SHOWN)
    lines: list[str] = []
    for e in chosen:
        rows = np.arange(starts[e], starts[e] + counts[e])
        lines.append(
            f"episode {int(ids[e])}: user {int(t.user_id[rows[0]])}, {len(rows)} steps, "
            f"return {float(t.reward[rows].sum()):.3f}  [reward = {t.reward_config.describe()}]"
        )
        lines.append(f"  {header} {'reward':>7} done")
        videos = t.vocab.decode(t.action[rows])
        for r, video in zip(rows, videos, strict=True):
            values = " ".join(f"{float(t.signals[r, c]):>11.3g}" for c in cols)
            lines.append(
                f"  {int(t.step[r]):>4} {int(video):>9} {values} {float(t.reward[r]):>7.3f} "
                f"{'yes' if t.done[r] else 'no'}"
            )
    return "\n".join(lines) if lines else f"(no episode with at least {min_steps} steps)"
