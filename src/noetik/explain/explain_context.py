"""The data behind one recommendation: a user's current decision and the names of its parts.

:class:`DecisionContext` holds what the agent reads (the 128-d state and the last K
interactions) together with what an explanation must *name*: for each history position the
video id, its tags and duration and the user's feedback on it, the gap to the decision, the
user's traits (``user_features``) and the decision's context (hour, weekday, tab, step, read
back from the ``ctx.*`` slices of the state, see :mod:`noetik.data.state_layout`).

The state and history are those of :func:`noetik.agents.core.recommend.window_states` (the same
decision ``noetik act`` scores). :class:`ItemCatalogue` (tags and durations of every action) is
built once per dataset and shared by every context, so a context costs O(K) per user.

>>> agent, contexts = run_contexts(Path("runs/iql"), users=[3, 17])
>>> contexts[0].history_facts()[-1]        # the user's last video, with tags and feedback
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import torch

from noetik.agents.core.base import Agent
from noetik.agents.core.recommend import decision_history_len, sample_users, window_states
from noetik.agents.core.runs import load_run, task_dataset, task_transitions
from noetik.agents.networks.encoders import History
from noetik.data.dataset import KuaiRandDataset
from noetik.data.rewards import SIGNALS
from noetik.data.schema import FileKind
from noetik.data.state_layout import STATE_SLICES
from noetik.data.transitions import ItemVocab, Transitions
from noetik.errors import ConfigError
from noetik.utils.arrays import IdIndex

__all__ = [
    "TRAIT_COLUMNS",
    "DecisionContext",
    "ItemCatalogue",
    "ItemFacts",
    "PastInteraction",
    "decision_contexts",
    "decode_context",
    "run_contexts",
]

#: ``user_features`` columns kept as a user's traits (cleaned: nulls where unknown).
TRAIT_COLUMNS: tuple[str, ...] = (
    "user_active_degree",
    "is_lowactive_period",
    "is_live_streamer",
    "is_video_author",
    "follow_user_num",
    "fans_user_num",
    "friend_user_num",
    "register_days",
)


@dataclass(frozen=True)
class ItemFacts:
    """What is known about one video (one action)."""

    action: int
    """Action index in the agent's vocabulary."""
    video_id: int
    """KuaiRand ``video_id`` (the action index when no vocabulary is known)."""
    tags: tuple[int, ...]
    """Tag ids of ``video_features_basic.tag`` (empty when unknown)."""
    duration_s: float | None
    """``video_duration`` in seconds; None when unknown."""


@dataclass(frozen=True, eq=False)
class ItemCatalogue:
    """Tags and durations of every action, in compressed rows (A = number of actions)."""

    video_ids: np.ndarray
    """(A,) int64 video id of each action."""
    tag_offsets: np.ndarray
    """(A + 1,) int64: action ``a`` has tags ``tag_values[tag_offsets[a]:tag_offsets[a + 1]]``."""
    tag_values: np.ndarray
    """(T,) int32 tag ids, concatenated per action."""
    duration_s: np.ndarray
    """(A,) float64 durations in seconds; NaN where unknown."""

    @classmethod
    def empty(cls, video_ids: np.ndarray) -> ItemCatalogue:
        """A catalogue that knows only the video ids (A,) int64 (no tags, no durations)."""
        n = len(video_ids)
        return cls(
            np.asarray(video_ids, dtype=np.int64),
            np.zeros(n + 1, dtype=np.int64),
            np.zeros(0, dtype=np.int32),
            np.full(n, np.nan),
        )

    @classmethod
    def from_dataset(cls, ds: KuaiRandDataset, vocab: ItemVocab) -> ItemCatalogue:
        """Tags and durations of ``vocab``'s videos from ``ds``'s basic video features."""
        if not ds.has(FileKind.VIDEO_BASIC):
            return cls.empty(vocab.video_ids)
        frame = (
            ds.videos()
            .select(pl.col("video_id").cast(pl.Int64), "tags", "video_duration")
            .unique("video_id", keep="first")
            .sort("video_id")
            .collect()
        )
        pos, found = IdIndex(frame["video_id"].to_numpy()).lookup(vocab.video_ids)
        counts_all = frame["tags"].list.len().fill_null(0).to_numpy().astype(np.int64)
        counts = np.where(found, counts_all[pos], 0)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        starts_all = np.concatenate([[0], np.cumsum(counts_all)[:-1]]).astype(np.int64)
        flat = frame["tags"].explode().drop_nulls().to_numpy().astype(np.int32)
        take = np.repeat(starts_all[pos] - offsets[:-1], counts) + np.arange(offsets[-1])
        dur = frame["video_duration"].cast(pl.Float64).to_numpy()[pos] / 1000.0
        duration = np.where(found & np.isfinite(dur) & (dur > 0), dur, np.nan)
        return cls(vocab.video_ids.astype(np.int64), offsets, flat[take], duration)

    def __len__(self) -> int:
        return len(self.video_ids)

    def facts(self, action: int) -> ItemFacts:
        """The facts of action ``action``."""
        a = int(action)
        tags = tuple(int(t) for t in self.tag_values[self.tag_offsets[a] : self.tag_offsets[a + 1]])
        dur = float(self.duration_s[a])
        return ItemFacts(a, int(self.video_ids[a]), tags, None if math.isnan(dur) else dur)


@dataclass(frozen=True)
class PastInteraction:
    """One position of the history: the video, the user's feedback and when it happened."""

    position: int
    """Index in the K-window (``K - 1`` is the most recent interaction)."""
    turns_ago: int
    """1 for the most recent interaction, 2 for the one before..."""
    item: ItemFacts
    """The video shown."""
    feedback: Mapping[str, float]
    """The 12 raw signals of :data:`noetik.data.rewards.SIGNALS` (``watch_ratio`` in [0, 1])."""
    gap_s: float
    """Seconds from the interaction to the decision."""


@dataclass(frozen=True, eq=False)
class DecisionContext:
    """One user's current decision (see the module docs); K = history length."""

    user_id: int
    """KuaiRand user id."""
    obs: np.ndarray
    """(128,) float32 state the agent reads."""
    items: np.ndarray
    """(K,) int64 action indices of the last K interactions, oldest first (padding: A)."""
    signals: np.ndarray
    """(K, 12) float32 raw feedback signals of those interactions (0 at padding)."""
    gap_s: np.ndarray
    """(K,) float32 seconds from each interaction to the decision (0 at padding)."""
    mask: np.ndarray
    """(K,) bool, true where an interaction exists."""
    catalogue: ItemCatalogue
    """Tags and durations of every action (shared by all contexts of a dataset)."""
    traits: Mapping[str, object] = field(default_factory=dict)
    """The user's :data:`TRAIT_COLUMNS` (None where unknown; empty without user features)."""
    context: Mapping[str, int | None] = field(default_factory=dict)
    """``hour`` (0..23), ``weekday`` (0 = Monday), ``tab`` (None: no tab), ``step``."""

    @property
    def history_len(self) -> int:
        """K."""
        return len(self.items)

    def obs_tensor(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """(1, 128) float32 state."""
        return torch.as_tensor(self.obs, dtype=torch.float32, device=device).reshape(1, -1)

    def history_tensors(self, device: torch.device | str = "cpu") -> History:
        """The history as a batch of one :class:`History` (1, K)."""
        arrays = (self.items[None], self.signals[None], self.gap_s[None], self.mask[None])
        return History.from_numpy(arrays, device)

    def past(self, position: int) -> PastInteraction:
        """The interaction at history ``position`` (must be a valid one)."""
        if not self.mask[position]:
            raise ConfigError(f"history position {position} holds no interaction")
        feedback = dict(zip(SIGNALS, (float(x) for x in self.signals[position]), strict=True))
        return PastInteraction(
            position,
            self.history_len - position,
            self.catalogue.facts(int(self.items[position])),
            feedback,
            float(self.gap_s[position]),
        )

    def history_facts(self) -> list[PastInteraction]:
        """Every existing past interaction, oldest first."""
        return [self.past(int(p)) for p in np.flatnonzero(self.mask)]


def decode_context(obs: np.ndarray) -> dict[str, int | None]:
    """Hour, weekday, tab and step of states ``obs`` (128,) read back from their ``ctx.*`` slices.

    The hour and weekday are the angles of their unit-circle encodings; the tab is the index of
    the ``ctx.tab`` one-hot (None when no tab is set); the step inverts ``log1p(step)``.
    """
    s = STATE_SLICES
    hour_sin, hour_cos = (float(v) for v in obs[s["ctx.hour"]])
    day_sin, day_cos = (float(v) for v in obs[s["ctx.weekday"]])
    tabs = obs[s["ctx.tab"]]
    hour = round(math.atan2(hour_sin, hour_cos) * 24 / (2 * math.pi)) % 24
    weekday = round(math.atan2(day_sin, day_cos) * 7 / (2 * math.pi)) % 7
    step = round(math.expm1(float(obs[s["ctx.step"].start])))
    tab = int(np.argmax(tabs)) if float(tabs.max()) > 0.5 else None
    return {"hour": hour, "weekday": weekday, "tab": tab, "step": step}


def _traits(ds: KuaiRandDataset, user_ids: np.ndarray) -> list[dict[str, object]]:
    """The :data:`TRAIT_COLUMNS` of each user (empty dicts without user features)."""
    if not ds.has(FileKind.USER_FEATURES):
        return [{} for _ in user_ids]
    ids = [int(u) for u in user_ids]
    frame = (
        ds.users()
        .filter(pl.col("user_id").is_in(ids))
        .unique("user_id", keep="first")
        .select(pl.col("user_id").cast(pl.Int64), *TRAIT_COLUMNS)
        .collect()
    )
    rows = {
        int(r["user_id"]): {c: r[c] for c in TRAIT_COLUMNS} for r in frame.iter_rows(named=True)
    }
    return [rows.get(u, {}) for u in ids]


def decision_contexts(
    ds: KuaiRandDataset,
    transitions: Transitions,
    user_ids: np.ndarray,
    history_len: int = 10,
    catalogue: ItemCatalogue | None = None,
    *,
    states_window: int | None = None,
) -> list[DecisionContext]:
    """The current decision of each user of ``user_ids`` (R,) int64, as ``noetik act`` sees it:
    a raw history of ``history_len`` interactions and a state summarising ``states_window``
    (None: ``history_len``; a run's is its task's ``states.history_len``).

    ``transitions`` must be the log the users' histories come from (sorted by user, with the
    agent's vocabulary); ``catalogue`` defaults to :meth:`ItemCatalogue.from_dataset`.
    """
    ids = np.asarray(user_ids, dtype=np.int64)
    known = np.isin(ids, transitions.user_id)
    if not known.all():
        raise ConfigError(f"--user {int(ids[~known][0])} has no interaction in {ds.root}")
    window = history_len if states_window is None else states_window
    states = window_states(ds, transitions, ids, window, history_len)
    catalogue = catalogue or ItemCatalogue.from_dataset(ds, transitions.vocab)
    items, signals, gaps, mask = states.history
    obs = states.obs.astype(np.float32)
    out = []
    for r, (u, traits) in enumerate(zip(ids, _traits(ds, ids), strict=True)):
        arrays = (
            obs[r],
            items[r].astype(np.int64),
            signals[r].astype(np.float32),
            gaps[r].astype(np.float32),
            mask[r].astype(bool),
        )
        out.append(DecisionContext(int(u), *arrays, catalogue, traits, decode_context(obs[r])))
    return out


def run_contexts(
    run_dir: Path, users: list[int] | None = None, n_sample: int = 3, seed: int = 0
) -> tuple[Agent, list[DecisionContext]]:
    """The agent of run folder ``run_dir`` (eval mode) and the decision contexts of ``users``
    (or ``n_sample`` users drawn with ``seed``) on the data it was trained on."""
    if users and min(users) < 0:
        raise ConfigError(f"--user must be a non-negative user id, got {min(users)}")
    _, task, agent = load_run(run_dir)
    if task.online:
        raise ConfigError(f"{run_dir}: explain needs an agent trained on logged data (--data)")
    ds = task_dataset(task)
    transitions = task_transitions(task, None, ds)
    if len(transitions.vocab) != agent.spec.n_actions:
        raise ConfigError(
            f"{run_dir}: the agent's {agent.spec.n_actions} actions do not match "
            f"the {len(transitions.vocab)} videos of {ds.root}"
        )
    ids = np.asarray(users, dtype=np.int64) if users else sample_users(transitions, n_sample, seed)
    window = task.states.history_len
    k = decision_history_len(agent)
    return agent, decision_contexts(ds, transitions, ids, k, states_window=window)
