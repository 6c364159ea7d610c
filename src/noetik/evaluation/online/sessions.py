"""Online evaluation: roll a policy out in a batched simulator, one session per simulated user.

Any agent that scores items works. Agents trained offline score the whole video vocabulary of
their dataset; ``noetik/KuaiRand-v0`` lets them choose among its candidate pool only, so
:class:`EnvPolicy` maps the pool's video ids to the agent's actions and picks the best-scored
video of the pool. Transformer agents receive the simulated users' raw history from ``info``.

:func:`evaluate_online` reports, per policy, the mean over users and a 95 % bootstrap interval
(``{"mean", "low", "high"}``) of:

=====================  =======================================================================
``return``             sum of the session's rewards
``length``             steps in the session: under ``leave_model="hazard"`` (KuaiRand-v0) how
                       long the policy keeps users; the fixed ``episode_length`` otherwise
``is_click_rate``,     per session, the mean over its steps of the signal (then averaged over
``watch_ratio``,       users, each session weighing the same); a signal the environment does
``is_like_rate``,      not report is left out
``is_hate_rate``
``distinct_fraction``  distinct items / steps of the session (1: no repeat)
``intra_similarity``   mean pairwise cosine similarity of the session's items (KuaiRand-v0:
                       their 24 tag buckets; RECEnv: the item feature vectors)
``coverage``           distinct items shown across all users / catalogue size (bootstrapped by
                       resampling users: :func:`.online_metrics.bootstrap_table`)
=====================  =======================================================================

Users are simulated in blocks (:class:`UserBlock`, 1,000 users by default), each block a
batched environment reset from its own seed, so a user's session does not depend on how many
other users are simulated beside it in other blocks, nor on which process runs the block:
:func:`evaluate_online` with an ``engine`` (``noetik evaluate --ray``) runs groups of blocks as
shards on Ray tasks with the same function as the local path (:func:`run_user_blocks`) and
equals the local result exactly.

The diversity metrics need a fixed catalogue indexed by a ``Discrete`` action (KuaiRand-v0,
RECEnv); slate environments with per-user candidate pools (InterestEvolution) report none.
Several simulator seeds (``seeds=``) are pooled: users x seeds sessions, resampled together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from rich.progress import Progress

from noetik.agents.core.base import Agent
from noetik.agents.core.serving import candidate_scores
from noetik.agents.onpolicy.collect import Collector, SessionTotals
from noetik.agents.onpolicy.history import HISTORY_KEYS, HistoryView, seen_map
from noetik.errors import ConfigError
from noetik.evaluation.online.metrics import (
    bootstrap_table,
    catalogue,
    distinct_fraction,
    intra_similarity,
)
from noetik.evaluation.policy_scores import standardise_scores
from noetik.utils.arrays import IdIndex
from noetik.utils.seeding import derive_seed
from noetik.utils.shards import ShardEngine, split_even

__all__ = [
    "USER_BLOCK",
    "EnvPolicy",
    "OnlineSetup",
    "SessionStats",
    "ShardSessions",
    "UserBlock",
    "acts_on_history",
    "catalogue",
    "evaluate_online",
    "evaluate_policy",
    "make_eval_envs",
    "online_setup",
    "pool_sessions",
    "run_sessions",
    "run_user_blocks",
    "session_table",
    "user_blocks",
    "wants_history",
]

SIGNALS = ("is_click", "watch_ratio", "is_like", "is_hate")
#: A policy: ``(obs (B, obs_dim) float32, info with (B, ...) arrays) -> actions (B,) int64``.
Policy = Callable[[np.ndarray, dict[str, Any]], np.ndarray]


class EnvPolicy:
    """Turns an agent into actions of a (vector) environment.

    ``pool_actions`` (P,) int64 is, for each env action, the agent's action index of the same
    video (``-1`` when the agent does not know it: never chosen). Without video ids on either
    side, env actions are the agent's actions. ``seed`` seeds the sampling of stochastic
    (``deterministic=False``) actions, drawn from ``softmax(scores / temperature)``, the
    scores first z-scored over the pool in each state with ``standardise``
    (:func:`~noetik.evaluation.policy_scores.standardise_scores`). ``exclude_seen``: never
    show a video of the user's history window in ``info`` (the session so far and the logged
    past; the same rule for every agent, as recommenders do not re-show what was just
    watched).
    """

    def __init__(
        self,
        agent: Agent,
        envs: Any,
        deterministic: bool = True,
        seed: int = 0,
        exclude_seen: bool = True,
        *,
        temperature: float = 1.0,
        standardise: bool = False,
    ) -> None:
        if not temperature > 0:
            raise ConfigError(f"temperature must be > 0, got {temperature}")
        self.agent, self.deterministic = agent, deterministic
        self.temperature, self.standardise = temperature, standardise
        self.seen_map = seen_map(envs) if exclude_seen else None
        pool = getattr(envs, "candidate_video_ids", None)
        own = agent.spec.video_ids
        self.pool_actions: np.ndarray | None = None
        self.device = next(iter(agent.parameters()), torch.empty(0)).device
        self._cols: torch.Tensor | None = None
        self._unknown: torch.Tensor | None = None
        if pool is not None and own is not None:
            pos, found = IdIndex(np.sort(own)).lookup(np.asarray(pool))
            order = np.argsort(own)
            self.pool_actions = np.where(found, order[pos], -1).astype(np.int64)
            if not found.any():
                raise ValueError("the agent knows none of the environment's candidate videos")
            identity = np.array_equal(self.pool_actions, np.arange(agent.spec.n_actions))
            if not identity:  # the same actions in the same order need no column selection
                self._cols = torch.as_tensor(np.maximum(self.pool_actions, 0), device=self.device)
            if not found.all():
                self._unknown = torch.as_tensor(~found, device=self.device)
        self.history = HistoryView.for_agent(agent, envs)
        """The agent's reading of the env's history window."""
        self.generator = torch.Generator(device=self.device).manual_seed(seed)

    def reseed(self, seed: int) -> None:
        """Restart the sampling generator of stochastic actions from ``seed``, and the
        agent's own random stream when it has one (an agent with a ``reseed(seed)`` method,
        e.g. ``random``), so a block of users sees the same draws in any process."""
        self.generator.manual_seed(seed)
        reseed = getattr(self.agent, "reseed", None)
        if callable(reseed):
            reseed(seed)

    def __call__(self, obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        """Actions (B,) int64 for observations ``obs`` (B, obs_dim) float32."""
        obs_t = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        history = self.history(info, self.device)
        with torch.inference_mode():
            if self._cols is not None:  # the pool only (never every item of a catalogue)
                scores = candidate_scores(self.agent, obs_t, history, self._cols)
                if self._unknown is not None:
                    scores = scores.masked_fill(self._unknown, float("-inf"))
            else:
                scores = self.agent.scores(obs_t, history)
            if self.standardise and not self.deterministic:
                scores = standardise_scores(scores).to(scores.dtype)
            scores = self._mask_seen(scores, info)
            if self.deterministic:
                actions = scores.argmax(dim=1)
            else:
                probs = torch.softmax(scores / self.temperature, dim=1)
                actions = torch.multinomial(probs, 1, generator=self.generator)[:, 0]
        return actions.cpu().numpy().astype(np.int64)

    def _mask_seen(self, scores: torch.Tensor, info: dict[str, Any]) -> torch.Tensor:
        """``scores`` (B, P) with ``-inf`` on the env actions of the history window's videos."""
        if self.seen_map is None or not all(k in info for k in HISTORY_KEYS[::3]):
            return scores
        items = self.seen_map[np.asarray(info["history_items"])]
        seen = np.where(np.asarray(info["history_mask"], dtype=bool), items, -1)
        if (seen < 0).all():
            return scores
        b, p = scores.shape
        cols = torch.as_tensor(np.where(seen >= 0, seen, p), device=scores.device)
        blocked = torch.zeros(b, p + 1, dtype=torch.bool, device=scores.device)
        blocked.scatter_(1, cols, True)  # padding and out-of-pool videos land in column p
        blocked = blocked[:, :p]
        return scores.masked_fill(blocked, float("-inf"))


@dataclass
class SessionStats:
    """Per-user outcomes of one simulated session each (arrays of length n_users)."""

    returns: np.ndarray
    """(N,) float64 sum of rewards of the session."""
    lengths: np.ndarray
    """(N,) int64 steps in the session."""
    signals: dict[str, np.ndarray] = field(default_factory=dict)
    """Per signal the environment reports, (N,) float64 mean over the session's steps."""
    items: np.ndarray | None = None
    """(T, N) int64 action shown at each step of each session, ``-1`` after its end (None
    for non-``Discrete`` action spaces); T is the longest session."""


def run_sessions(
    envs: gym.vector.VectorEnv[Any, Any, Any],
    policy: Policy,
    seed: int = 0,
    signal_names: tuple[str, ...] = SIGNALS,
    max_steps: int = 10_000,
) -> SessionStats:
    """One session for each of the ``envs.num_envs`` users, from ``envs.reset(seed=seed)``.

    Rows that finish stop counting; the policy is called on the rows still in session only
    (``obs`` and every ``(B, ...)`` array of ``info`` restricted to them), so a short session
    costs no policy calls after its end. Signals the environment never reports are left out.
    """
    collector = Collector(envs, seed=seed)
    record = isinstance(getattr(envs, "single_action_space", None), spaces.Discrete)
    totals = SessionTotals(collector.num_envs, signal_names, record)
    collector.run(policy, max_steps, until_done=True, active_only=True, hooks=(totals,))
    return SessionStats(totals.returns, totals.lengths, totals.means(), totals.items())


def pool_sessions(runs: Sequence[SessionStats]) -> SessionStats:
    """The sessions of several runs (e.g. one per seed) as one population, runs side by side
    (items padded with ``-1`` to the longest run; signals every run has)."""
    if not runs:
        raise ConfigError("pool_sessions: no runs to pool")
    names = [s for s in runs[0].signals if all(s in r.signals for r in runs)]
    items = None
    if all(r.items is not None for r in runs):
        parts = [r.items for r in runs if r.items is not None]
        t = max(p.shape[0] for p in parts)
        items = np.concatenate(
            [np.pad(p, ((0, t - p.shape[0]), (0, 0)), constant_values=-1) for p in parts], axis=1
        )
    return SessionStats(
        np.concatenate([r.returns for r in runs]),
        np.concatenate([r.lengths for r in runs]),
        {s: np.concatenate([r.signals[s] for r in runs]) for s in names},
        items,
    )


def _metric_name(signal: str) -> str:
    return f"{signal}_rate" if signal.startswith("is_") else signal


def session_table(
    stats: SessionStats,
    n_items: int | None = None,
    features: np.ndarray | None = None,
    *,
    level: float = 0.95,
    n_boot: int = 2_000,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Every metric of ``stats`` (see the module docs) as ``{"mean", "low", "high"}``.

    ``n_items``: catalogue size (the diversity metrics need it and ``stats.items``);
    ``features`` (n_items, F) float64 item vectors of ``intra_similarity``; ``seed``: of the
    bootstrap resamples.
    """
    per: dict[str, np.ndarray] = {"return": stats.returns, "length": stats.lengths * 1.0}
    per.update({_metric_name(k): v for k, v in stats.signals.items()})
    items = stats.items if n_items is not None else None
    if items is not None:
        per["distinct_fraction"] = distinct_fraction(items)
        if features is not None:
            per["intra_similarity"] = intra_similarity(items, features)
    return bootstrap_table(per, items, n_items, level=level, n_boot=n_boot, seed=seed)


def make_eval_envs(
    env_id: str, n_users: int, env_kwargs: dict[str, Any] | None = None
) -> gym.vector.VectorEnv[Any, Any, Any]:
    """``n_users`` simulated users of ``env_id``, batched (``vector_entry_point`` mode)."""
    import noetik.envs  # noqa: F401  (registers the ids)

    return gym.make_vec(
        env_id, num_envs=n_users, vectorization_mode="vector_entry_point", **(env_kwargs or {})
    )


def _run_block(
    policy: Policy, envs: gym.vector.VectorEnv[Any, Any, Any], seed: int
) -> SessionStats:
    """One session per user of ``envs`` from ``seed``; a policy with a ``reseed(seed)`` method
    (:class:`EnvPolicy`) is reseeded with it first."""
    reseed = getattr(policy, "reseed", None)
    if callable(reseed):
        reseed(int(seed))
    return run_sessions(envs, policy, seed=int(seed))


def evaluate_policy(
    policy: Policy,
    envs: gym.vector.VectorEnv[Any, Any, Any],
    seeds: Sequence[int] = (0,),
    *,
    level: float = 0.95,
    n_boot: int = 2_000,
    boot_seed: int = 0,
) -> dict[str, dict[str, float]]:
    """:func:`session_table` of one session per user of ``envs`` for each simulator seed in
    ``seeds`` (pooled: ``num_envs * len(seeds)`` sessions). A policy with a ``reseed(seed)``
    method (:class:`EnvPolicy`) is reseeded with each simulator seed."""
    if not len(seeds):
        raise ConfigError("seeds: give at least one simulator seed")
    runs = [_run_block(policy, envs, int(s)) for s in seeds]
    n_items, features = catalogue(envs)
    return session_table(
        pool_sessions(runs), n_items, features, level=level, n_boot=n_boot, seed=boot_seed
    )


#: Simulated users run together in one batched environment from one seed (see UserBlock).
USER_BLOCK = 1_000


@dataclass(frozen=True)
class UserBlock:
    """Simulated users run together, from one seed, in one batched environment: the unit of
    seeding and of sharding. A user's session depends on its block only, so the blocks of an
    evaluation give the same sessions whichever process runs them, in whatever groups."""

    seed: int
    """The simulator seed of the evaluation the block belongs to."""
    index: int
    """The block's place among that seed's blocks (0, 1, ...)."""
    users: int
    """Users in the block (the last block of a seed may hold fewer)."""

    @property
    def block_seed(self) -> int:
        """Seed of the block's environment and policy: ``seed`` for block 0 (so up to one
        block of users is exactly the single batched run from ``seed``), then one derived
        from ``(seed, index)`` (:func:`~noetik.utils.seeding.derive_seed`)."""
        return self.seed if self.index == 0 else derive_seed(self.seed, "users", self.index)


def user_blocks(
    n_users: int, seeds: Sequence[int], block_users: int = USER_BLOCK
) -> list[UserBlock]:
    """The blocks of ``n_users`` users per seed, at most ``block_users`` each: seed by seed,
    each seed's users in order (the order their sessions are pooled in)."""
    if n_users < 1:
        raise ConfigError(f"n_users must be >= 1, got {n_users}")
    if block_users < 1:
        raise ConfigError(f"block_users must be >= 1, got {block_users}")
    if not len(seeds):
        raise ConfigError("seeds: give at least one simulator seed")
    blocks = []
    for s in seeds:
        for index, start in enumerate(range(0, n_users, block_users)):
            blocks.append(UserBlock(int(s), index, min(block_users, n_users - start)))
    return blocks


@dataclass(frozen=True)
class OnlineSetup:
    """How the policy meets the simulated users: everything a shard of users needs besides
    the agent (plain values, so a shard can be sent to another process)."""

    env_id: str
    """The environment id (e.g. ``noetik/KuaiRand-v0``)."""
    env_kwargs: tuple[tuple[str, Any], ...] = ()
    """Its options as sorted ``(name, value)`` pairs (with ``return_history`` when needed)."""
    deterministic: bool = True
    """Act greedily (else sample the softmax of the scores, seeded per block)."""
    exclude_seen: bool = True
    """Keep the policy off the videos of the user's history window (:class:`EnvPolicy`)."""
    temperature: float = 1.0
    """Stochastic actions: the softmax temperature (:class:`EnvPolicy`)."""
    standardise: bool = False
    """Stochastic actions: z-score the scores over the pool first (:class:`EnvPolicy`)."""


@dataclass
class ShardSessions:
    """What one shard of users returns: its sessions and the environment's catalogue."""

    runs: list[SessionStats]
    """One :class:`SessionStats` per block of the shard, in order."""
    n_items: int | None
    """Catalogue size (:func:`catalogue`)."""
    features: np.ndarray | None
    """(n_items, F) float64 item vectors of ``intra_similarity`` (:func:`catalogue`)."""


def online_setup(
    agent: Agent,
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    *,
    deterministic: bool = True,
    exclude_seen: bool = True,
    temperature: float = 1.0,
    standardise: bool = False,
) -> OnlineSetup:
    """The :class:`OnlineSetup` of ``agent`` in ``env_id``: the environment returns the raw
    history when the agent reads it or when ``exclude_seen`` needs it."""
    kwargs = dict(env_kwargs or {})
    if acts_on_history(agent) or (exclude_seen and _has_history_option(env_id)):
        kwargs["return_history"] = True
    items = tuple(sorted(kwargs.items()))
    return OnlineSetup(env_id, items, deterministic, exclude_seen, temperature, standardise)


def run_user_blocks(
    agent: Agent,
    setup: OnlineSetup,
    blocks: Sequence[UserBlock],
    on_block: Callable[[int], None] | None = None,
) -> ShardSessions:
    """The sessions of ``blocks`` (a shard of users, or all of them): each block in a batched
    environment of its size (built once per size) reset from its :attr:`UserBlock.block_seed`,
    the policy reseeded with it. The one implementation of the local and the sharded paths;
    ``on_block(users)`` is called after each block."""
    if not blocks:
        raise ConfigError("run_user_blocks: no blocks of users")
    built: dict[int, tuple[gym.vector.VectorEnv[Any, Any, Any], EnvPolicy]] = {}
    runs = []
    for block in blocks:
        if block.users not in built:
            envs = make_eval_envs(setup.env_id, block.users, dict(setup.env_kwargs))
            policy = EnvPolicy(
                agent,
                envs,
                setup.deterministic,
                exclude_seen=setup.exclude_seen,
                temperature=setup.temperature,
                standardise=setup.standardise,
            )
            built[block.users] = envs, policy
        envs, policy = built[block.users]
        runs.append(_run_block(policy, envs, block.block_seed))
        if on_block is not None:
            on_block(block.users)
    n_items, features = catalogue(next(iter(built.values()))[0])
    return ShardSessions(runs, n_items, features)


def _run_shard(shared: tuple[Agent, OnlineSetup], blocks: Sequence[UserBlock]) -> ShardSessions:
    """One shard of a sharded evaluation (the function a :class:`ShardEngine` runs)."""
    agent, setup = shared
    return run_user_blocks(agent, setup, blocks)


def _advance(
    progress: Progress | None, description: str, blocks: Sequence[UserBlock]
) -> Callable[[int], None] | None:
    """A ``description`` task of ``progress`` over the users of ``blocks``, as the function
    that advances it (None without ``progress``)."""
    if progress is None:
        return None
    task = progress.add_task(description, total=sum(b.users for b in blocks))
    return lambda users: progress.advance(task, users)


def evaluate_online(
    agent: Agent,
    env_id: str,
    n_users: int = 1_000,
    env_kwargs: dict[str, Any] | None = None,
    seed: int = 0,
    *,
    seeds: Sequence[int] | None = None,
    deterministic: bool = True,
    exclude_seen: bool = True,
    level: float = 0.95,
    n_boot: int = 2_000,
    block_users: int = USER_BLOCK,
    engine: ShardEngine | None = None,
    progress: Progress | None = None,
    description: str = "Simulated users",
) -> dict[str, dict[str, float]]:
    """One session for each of ``n_users`` simulated users of ``env_id``, per simulator seed
    (``seeds``; None: ``(seed,)``; several are pooled, ``n_users * len(seeds)`` sessions):
    ``{metric: {"mean", "low", "high"}}`` for every metric of the module docs, intervals from
    ``n_boot`` bootstrap resamples of the sessions drawn from ``seed``.

    Agents that act on the history (:func:`acts_on_history`) get it from the environment
    (``return_history=True``); with ``exclude_seen`` (the default) every policy is kept off
    the videos of the user's history window (:class:`EnvPolicy`), so a policy cannot score by
    showing one favourite video over and over (the simulator has no boredom of repeats).
    Session lengths follow the environment's leave model (KuaiRand-v0:
    ``env_kwargs={"leave_model": "hazard"}`` lets the policy keep users longer).

    Users are simulated in blocks of ``block_users`` (:class:`UserBlock`: the unit of seeding).
    ``engine`` (e.g. Ray's, :func:`noetik.utils.ray_engine.ray_session`) runs groups of blocks
    as shards, about four per worker, with the same function as the local path
    (:func:`run_user_blocks`); the bootstrap runs once on the pooled sessions, so the result
    equals the local one exactly. ``progress`` shows the users evaluated (a ``description``
    task).
    """
    chosen = (seed,) if seeds is None else tuple(seeds)
    blocks = user_blocks(n_users, chosen, block_users)
    setup = online_setup(
        agent, env_id, env_kwargs, deterministic=deterministic, exclude_seen=exclude_seen
    )
    if engine is None:
        shards = [run_user_blocks(agent, setup, blocks, _advance(progress, description, blocks))]
    else:
        groups = split_even(blocks, 4 * max(1, engine.workers))
        sizes = [sum(b.users for b in group) for group in groups]
        shards = engine.map(
            _run_shard,
            (agent, setup),
            groups,
            sizes=sizes,
            description=description,
            progress=progress,
        )
    runs = [run for shard in shards for run in shard.runs]
    first = shards[0]
    return session_table(
        pool_sessions(runs), first.n_items, first.features, level=level, n_boot=n_boot, seed=seed
    )


def _has_history_option(env_id: str) -> bool:
    """Whether ``env_id`` takes the ``return_history`` option (the KuaiRand simulator)."""
    import noetik.envs  # noqa: F401  (registers the ids)

    return "kuairand" in str(gym.spec(env_id).entry_point).lower()


def wants_history(agent: Agent) -> bool:
    """Whether ``agent``'s encoder reads the raw interaction history."""
    encoder = getattr(agent, "encoder", None)
    return bool(getattr(encoder, "uses_history", False))


def acts_on_history(agent: Agent) -> bool:
    """Whether ``agent``'s actions depend on the raw history window: its encoder reads it
    (:func:`wants_history`), or it skips the window's items (``popular``'s ``exclude_seen``)."""
    return wants_history(agent) or getattr(agent.config, "exclude_seen", False) is True
