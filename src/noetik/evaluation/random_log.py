"""Random-log lens: unbiased ranking metrics on KuaiRand's random-exposure log.

Random-log videos were shown uniformly at random, so how a scorer ranks the videos a user was
shown against the feedback is free of the logging recommender's exposure bias:
``evaluate_random_log(agent_scorer(agent), load_random_log(ds, users=...))``.

**States**: each user's standard-log and evaluated random rows are merged by time and turned
into 128-d states by :func:`~noetik.data.features.build_states` (as the simulator's random
examples are): a state and :class:`RowHistory` see earlier rows only, never the impression's
own feedback. **Metrics** per user (:func:`ranking_metrics`) and binary signal (``is_click``
-> ``click_*``): AUC (users with one class only skipped), NDCG@k and recall@k (top-k hits /
the user's positives; users without a positive skipped); mean over users, seeded bootstrap
interval over users. **Ties** count as their expectation under a uniformly random order of
the tied impressions: average ranks for AUC (a tied pair counts 1/2, as sklearn's
``roc_auc_score``); for NDCG and recall a tied impression gets the mean discount (and top-k
share) of the positions its tie group spans. ``-inf`` marks a video the scorer does not
know (ranked last, counted in ``n_unknown``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import polars as pl
import torch

from noetik.agents.algorithms.heuristics import popularity_counts
from noetik.agents.core.base import Agent, ProblemSpec
from noetik.agents.networks.encoders import History
from noetik.data.dataset import KuaiRandDataset, load_kuairand
from noetik.data.episodes import assign_episodes
from noetik.data.features import STATE_COLUMNS, FeatureConfig, build_states
from noetik.data.rewards import SIGNALS, RewardConfig, signals_expr
from noetik.data.schema import BINARY_SIGNALS, FileKind
from noetik.data.transitions import ItemVocab, Transitions, episode_links
from noetik.errors import ConfigError, DataError
from noetik.evaluation.online.sessions import wants_history
from noetik.simulators.kuairand.examples import HEADS, read_log
from noetik.simulators.kuairand.model import FittedSimulator
from noetik.utils.arrays import IdIndex
from noetik.utils.bootstrap import bootstrap_means

Lens = dict[str, dict[str, float]]


@dataclass(frozen=True)
class RandomLogConfig:
    """What the random-log lens reports and how."""

    ks: tuple[int, ...] = (5, 10)
    """Cut-offs k of NDCG@k and recall@k; each >= 1."""
    signals: tuple[str, ...] = ("is_click", "long_view")
    """Binary feedback signals to rank against (names of ``BINARY_SIGNALS``)."""
    n_boot: int = 1000
    """Replicates of the 95 % bootstrap interval (users resampled with replacement); >= 1."""
    seed: int = 0
    """Seed of the bootstrap resampling."""
    batch_size: int = 1024
    """Impressions per scorer call."""

    def __post_init__(self) -> None:
        if not self.ks or any(isinstance(k, bool) or int(k) != k or k < 1 for k in self.ks):
            raise ConfigError(f"random_log.ks must be integers >= 1, got {self.ks!r}")
        bad = [s for s in self.signals if s not in BINARY_SIGNALS]
        if not self.signals or bad:
            raise ConfigError(f"random_log.signals must be among {BINARY_SIGNALS}, got {bad}")
        if self.n_boot < 1 or self.batch_size < 1:
            raise ConfigError("random_log: need n_boot >= 1 and batch_size >= 1")


@dataclass(frozen=True)
class RowHistory:
    """The last K interactions before each impression (oldest first, K - 1 = newest)."""

    video_ids: np.ndarray
    """(B, K) int64 KuaiRand video ids (-1 at padding)."""
    signals: np.ndarray
    """(B, K, 12) float32 raw signals in :data:`SIGNALS` order (0 at padding)."""
    gap_s: np.ndarray
    """(B, K) float32 seconds from each past interaction to the impression (0 at padding)."""
    mask: np.ndarray
    """(B, K) bool, true where a past interaction exists."""


class Scorer(Protocol):
    """``(obs (B, 128) float32, history | None, video_ids (B,) int64) -> (B,) float32``
    scores, higher first, ``-inf`` for a video the scorer does not know. An optional attribute
    ``history_len`` (int, default 0) asks for a :class:`RowHistory` of that many rows."""

    def __call__(
        self, obs: np.ndarray, history: RowHistory | None, video_ids: np.ndarray
    ) -> np.ndarray: ...


@dataclass(frozen=True, eq=False)
class RandomLog:
    """N random impressions with their states, and the merged log their histories come from."""

    obs: np.ndarray
    """(N, 128) state before each impression (``FeatureConfig.obs_dtype``)."""
    user_id: np.ndarray
    """(N,) int64 user of each impression."""
    video_id: np.ndarray
    """(N,) int64 video shown."""
    signals: np.ndarray
    """(N, 12) float32 observed feedback in :data:`SIGNALS` order."""
    rows: np.ndarray
    """(N,) int64 row of each impression in ``context``."""
    context: Transitions
    """The merged standard + evaluated rows of these users (no states: ``obs`` is (M, 0))."""

    def history(self, index: np.ndarray, k: int) -> RowHistory:
        """The last ``k`` merged rows before impressions ``index`` (B,) int64."""
        items, signals, gap_s, mask = self.context.history(self.rows[index], k)
        ids = self.context.vocab.video_ids[np.minimum(items, self.context.n_actions - 1)]
        return RowHistory(np.where(mask, ids, -1), signals, gap_s, mask)


def _merged_frame(
    ds: KuaiRandDataset, log: Path | str | None, users: Sequence[int] | np.ndarray | None
) -> pl.DataFrame:
    """Standard rows of the evaluated users + the evaluated rows, by user and time."""
    if log is None and not ds.has(FileKind.LOG_RANDOM):
        raise DataError(ds.root, "no random-exposure log (log_random_*.csv) to evaluate on")
    lazy = read_log(ds, Path(log)) if log is not None else ds.interactions(FileKind.LOG_RANDOM)
    if users is not None:
        wanted = pl.Series(np.asarray(list(users), dtype=np.int64)).implode()
        lazy = lazy.filter(pl.col("user_id").cast(pl.Int64).is_in(wanted))
    cols = [*(pl.col(c) for c in STATE_COLUMNS), *signals_expr(prefix="sig.")]
    parts = [lazy.select(*cols, pl.lit(True).alias("_eval")).collect()]
    if parts[0].height == 0:
        raise DataError(ds.root, "no random-log rows for the selected users")
    if ds.has(FileKind.LOG_STANDARD):
        wanted = parts[0]["user_id"].unique().cast(pl.Int64).implode()
        std = ds.interactions(FileKind.LOG_STANDARD)
        std = std.filter(pl.col("user_id").cast(pl.Int64).is_in(wanted))
        parts.insert(0, std.select(*cols, pl.lit(False).alias("_eval")).collect())
    merged = pl.concat(parts, how="vertical_relaxed")
    return assign_episodes(merged.sort(["user_id", "time_ms"], maintain_order=True))


def load_random_log(
    data: KuaiRandDataset | Path | str | None = None,
    *,
    log: Path | str | None = None,
    users: Sequence[int] | np.ndarray | None = None,
    features: FeatureConfig | None = None,
) -> RandomLog:
    """The random impressions of ``data`` (a dataset, its folder, or None: built-in data).

    ``log``: a random-exposure CSV in the official schema to evaluate instead of the
    dataset's own random log (e.g. the held-out log of ``noetik sim fit --holdout-log``).
    ``users``: keep only these users' impressions. States and histories merge each user's
    standard-log rows with the evaluated rows (see the module docs).
    """
    ds = data if isinstance(data, KuaiRandDataset) else load_kuairand(data)
    frame = _merged_frame(ds, log, users)
    signals = frame.select([f"sig.{s}" for s in SIGNALS]).to_numpy().astype(np.float32)
    keep, step = frame["_eval"].to_numpy(), frame["step"].to_numpy()
    user_tbl = ds.users() if ds.has(FileKind.USER_FEATURES) else None
    videos = ds.videos() if ds.has(FileKind.VIDEO_BASIC) else None
    obs = build_states(frame, user_tbl, videos, features, step, signals=signals, keep=keep)
    video_ids = frame["video_id"].to_numpy().astype(np.int64)
    episode_id = frame["episode_id"].to_numpy().astype(np.int64)
    vocab, n = ItemVocab.from_ids(video_ids), frame.height
    done, next_index = episode_links(episode_id)
    context = Transitions(
        obs=np.zeros((n, 0), dtype=np.float16),
        action=vocab.encode(video_ids),
        reward=np.zeros(n, dtype=np.float32),
        done=done,
        next_index=next_index,
        episode_id=episode_id,
        step=step.astype(np.int32),
        user_id=frame["user_id"].to_numpy().astype(np.int32),
        time_ms=frame["time_ms"].to_numpy().astype(np.int64),
        signals=signals,
        vocab=vocab,
        reward_config=RewardConfig(),
    )
    rows = np.flatnonzero(keep).astype(np.int64)
    user_id = context.user_id[rows].astype(np.int64)
    return RandomLog(obs, user_id, video_ids[rows], signals[rows], rows, context)


def ranking_metrics(
    user: np.ndarray, score: np.ndarray, label: np.ndarray, ks: Sequence[int] = (5, 10)
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per-user AUC, NDCG@k and recall@k of impressions ranked by ``score`` within each user.

    ``user`` (N,) int, ``score`` (N,) float (higher first; ``±inf`` allowed, NaN not) and
    ``label`` (N,) binary (> 0 is a positive), rows in any order. Returns ``(users (U,)
    int64 sorted, {"auc", "ndcg@k", "recall@k": (U,) float64})``, NaN where undefined (AUC:
    no positive or no negative; NDCG/recall: no positive). Ties: see the module docs.
    """
    user, score = np.asarray(user, dtype=np.int64), np.asarray(score, dtype=np.float64)
    rel = (np.asarray(label) > 0).astype(np.float64)
    if not user.shape == score.shape == rel.shape or user.ndim != 1:
        raise ValueError("user, score and label must be 1-d arrays of the same length")
    if np.isnan(score).any():
        raise ValueError("scores contain NaN")
    order = np.lexsort((-score, user))
    u, s, r, n = user[order], score[order], rel[order], len(user)
    new_user = np.r_[True, u[1:] != u[:-1]] if n else np.zeros(0, dtype=bool)
    uidx = np.cumsum(new_user) - 1
    ustart = np.flatnonzero(new_user)
    size = np.diff(np.r_[ustart, n]).astype(np.float64)
    pos = np.arange(n) - ustart[uidx]  # 0-based rank in the user's list
    new_group = new_user | np.r_[True, s[1:] != s[:-1]][:n]
    gid = np.cumsum(new_group) - 1
    gstart = pos[new_group][gid]
    gsize = np.diff(np.r_[np.flatnonzero(new_group), n])[gid]
    gend = gstart + gsize
    n_users = len(ustart)
    n_pos = np.bincount(uidx, r, n_users)
    ascending_rank = size[uidx] - (gstart + gend - 1) / 2.0  # 1-based, average over ties
    rank_sum = np.bincount(uidx, r * ascending_rank, n_users)
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * (size - n_pos))
        out = {"auc": np.where((n_pos > 0) & (n_pos < size), auc, np.nan)}
        for k in ks:
            disc = np.r_[0.0, np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))]
            lo, hi = np.minimum(gstart, k), np.minimum(gend, k)
            dcg = np.bincount(uidx, r * (disc[hi] - disc[lo]) / gsize, n_users)
            idcg = disc[np.minimum(n_pos, k).astype(np.int64)]
            hits = np.bincount(uidx, r * (hi - lo) / gsize, n_users)
            out[f"ndcg@{k}"] = np.where(n_pos > 0, dcg / idcg, np.nan)
            out[f"recall@{k}"] = np.where(n_pos > 0, hits / n_pos, np.nan)
    return u[new_user], out


def _count(n: float) -> dict[str, float]:
    return {"mean": float(n), "low": float(n), "high": float(n)}


def metrics_table(
    user: np.ndarray,
    scores: np.ndarray,
    labels: Mapping[str, np.ndarray],
    config: RandomLogConfig | None = None,
) -> Lens:
    """The lens's report from ``scores`` (N,) of impressions of ``user`` (N,) and binary
    ``labels`` ({signal: (N,)}): ``{"<sig>_auc", "<sig>_ndcg@k", "<sig>_recall@k"}`` as
    ``{"mean", "low", "high"}`` (``is_click`` -> ``click``), plus counts (``mean = low =
    high``): ``n_users``, ``n_impressions``, ``n_unknown`` (``-inf`` scores) and
    ``<sig>_auc_users`` (users with both classes)."""
    config = config or RandomLogConfig()
    per_user: dict[str, np.ndarray] = {}
    counts: Lens = {}
    for signal, label in labels.items():
        name = signal.removeprefix("is_")
        _, metrics = ranking_metrics(user, scores, label, config.ks)
        per_user |= {f"{name}_{k}": v for k, v in metrics.items()}
        counts[f"{name}_auc_users"] = _count(int(np.count_nonzero(~np.isnan(metrics["auc"]))))
    # users resampled with replacement, each metric averaged over the drawn users where defined
    boot = bootstrap_means(per_user, n_boot=config.n_boot, level=0.95, seed=config.seed)
    out: Lens = {name: estimate.as_dict() for name, estimate in boot.items()}
    out["n_users"] = _count(len(np.unique(user)))
    out["n_impressions"] = _count(len(scores))
    out["n_unknown"] = _count(int(np.count_nonzero(np.isneginf(scores))))
    return out | counts


def score_random_log(scorer: Scorer, log: RandomLog, batch_size: int = 1024) -> np.ndarray:
    """(N,) float32 scores of every impression of ``log``, in batches of ``batch_size``."""
    k = int(getattr(scorer, "history_len", 0))
    n = len(log.video_id)
    out = np.empty(n, dtype=np.float32)
    for lo in range(0, n, batch_size):
        index = np.arange(lo, min(n, lo + batch_size), dtype=np.int64)
        history = log.history(index, k) if k > 0 else None
        obs = log.obs[index].astype(np.float32)
        scores = np.asarray(scorer(obs, history, log.video_id[index]), dtype=np.float32)
        if scores.shape != index.shape:
            raise ValueError(f"scorer returned shape {scores.shape}, expected {index.shape}")
        out[index] = scores
    return out


def evaluate_random_log(
    scorer: Scorer,
    data: RandomLog | KuaiRandDataset | Path | str | None = None,
    config: RandomLogConfig | None = None,
) -> Lens:
    """The random-log lens of ``scorer`` on ``data`` (a :class:`RandomLog`, or a dataset /
    folder / None whose whole random log is loaded): see :func:`metrics_table`."""
    config = config or RandomLogConfig()
    log = data if isinstance(data, RandomLog) else load_random_log(data)
    scores = score_random_log(scorer, log, config.batch_size)
    labels = {s: log.signals[:, SIGNALS.index(s)] for s in config.signals}
    return metrics_table(log.user_id, scores, labels, config)


def _lookup(video_ids: np.ndarray) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """A lookup ``ids (any shape) -> (position in video_ids, found)`` for unsorted ids."""
    ids = np.asarray(video_ids, dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    index = IdIndex(ids[order])

    def lookup(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos, found = index.lookup(np.asarray(keys, dtype=np.int64).ravel())
        return order[pos].reshape(np.shape(keys)), found.reshape(np.shape(keys))

    return lookup


class AgentScorer:
    """The scorer of :func:`agent_scorer`."""

    def __init__(self, agent: Agent, method: str = "scores") -> None:
        if agent.spec.video_ids is None:
            raise ConfigError("agent_scorer: the agent's spec has no video_ids to match videos")
        if method not in ("scores", "q_values"):
            raise ConfigError(
                f"agent_scorer: method must be 'scores' or 'q_values', got {method!r}"
            )
        self.method = method
        self.agent, self.lookup = agent.eval(), _lookup(agent.spec.video_ids)
        self.history_len = agent.config.encoder.history_len if wants_history(agent) else 0
        self.device = next(iter(agent.parameters()), torch.empty(0)).device

    def torch_history(self, history: RowHistory | None) -> History | None:
        """``history`` as the agent's History (videos it does not know as padding items);
        None when the agent reads none."""
        if history is None or self.history_len <= 0:
            return None
        items, found = self.lookup(history.video_ids)
        items = np.where(history.mask & found, items, self.agent.spec.n_actions)
        return History.from_numpy(
            (items, history.signals, history.gap_s, history.mask), self.device
        )

    def __call__(
        self, obs: np.ndarray, history: RowHistory | None, video_ids: np.ndarray
    ) -> np.ndarray:
        """(B,) float32 scores (see :class:`Scorer`)."""
        action, known = self.lookup(video_ids)
        hist = self.torch_history(history)
        with torch.inference_mode():
            obs_t = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
            actions = torch.as_tensor(action, dtype=torch.int64, device=self.device)
            if self.method == "q_values":  # one action per row: never the (B, A) matrix
                scores = self.agent.q_values(obs_t, hist, actions)
            else:
                scores = self.agent.action_scores(obs_t, hist, actions)
            picked = scores.float().cpu().numpy()
        return np.where(known, picked, -np.inf).astype(np.float32)


def agent_scorer(agent: Agent, method: str = "scores") -> AgentScorer:
    """Scorer of any noetik agent (put in eval mode): ``agent.<method>`` (``scores``, or the
    Q values of agents with ``capabilities.q_values``) of each shown video's action, matched
    through ``agent.spec.video_ids`` and scored alone (:meth:`Agent.action_scores`); videos
    the agent does not know get ``-inf``."""
    return AgentScorer(agent, method)


def popularity_scorer(train: Transitions, signal: str | None = None) -> Scorer:
    """Scores each video by its exposures in the training data ``train`` (``signal`` None)
    or by the sum of ``signal`` over them; videos never logged there score 0."""
    if signal is not None and signal not in SIGNALS:
        raise ConfigError(f"popularity_scorer: signal must be one of {SIGNALS}, got {signal!r}")
    spec = ProblemSpec(train.n_actions, train.obs.shape[1], None, None)  # by action index
    counts = popularity_counts(train, signal, spec)
    values, lookup = counts.astype(np.float32), _lookup(train.vocab.video_ids)

    def score(obs: np.ndarray, history: RowHistory | None, video_ids: np.ndarray) -> np.ndarray:
        pos, found = lookup(video_ids)
        return np.where(found, values[pos], np.float32(0.0))

    return score


def random_scorer(seed: int = 0) -> Scorer:
    """The chance reference: uniform scores from a generator seeded by ``seed`` (use a fresh
    scorer per evaluation: the same seed then gives the same scores)."""
    rng = np.random.default_rng(seed)

    def score(obs: np.ndarray, history: RowHistory | None, video_ids: np.ndarray) -> np.ndarray:
        return rng.random(len(video_ids)).astype(np.float32)

    return score


def simulator_scorer(sim: FittedSimulator, signal: str = "is_click") -> Scorer:
    """Ranks by the simulator's debiased (random-exposure) prediction of ``signal`` (a head
    of :data:`HEADS`); videos outside the simulator's vocabulary get ``-inf``."""
    if signal not in HEADS:
        raise ConfigError(f"simulator_scorer: signal must be one of {HEADS}, got {signal!r}")
    head = HEADS.index(signal)
    sim.model.eval()

    def score(obs: np.ndarray, history: RowHistory | None, video_ids: np.ndarray) -> np.ndarray:
        pos, found = sim.vocab.index.lookup(np.asarray(video_ids, dtype=np.int64))
        obs_t = torch.as_tensor(obs, dtype=torch.float32, device=sim.device)
        p = sim.predict_torch(obs_t, torch.as_tensor(pos, device=sim.device))[:, head]
        return np.where(found, p.float().cpu().numpy(), -np.inf).astype(np.float32)

    return score
