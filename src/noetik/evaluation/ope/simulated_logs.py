"""The parts of the OPE check (:mod:`noetik.evaluation.ope.check`) that touch environments.

* :class:`PolicySpec` — a stochastic policy with known probabilities: a softmax over a
  state-dependent scorer at a temperature, mixed with ε-uniform and optionally with the
  behaviour policy. Scorers (:func:`make_problem`): ``"linear"`` — a random linear map of the
  observation (seeded); ``"oracle"`` — the environment's one-step expected reward (RECEnv: the
  affinity ``obs · item``; InterestEvolution: ``interests · document``; KuaiRand: the fitted
  response model's expected reward, as :class:`~noetik.evaluation.oracle.GreedyAgent`);
  ``"uniform"``; ``"agent"`` — a trained agent (a ``noetik train`` run folder, KuaiRand on
  the dataset the agent was trained on): its own scores of the pool's videos. Scores are
  standardised per state across actions before the softmax, so one temperature means the same
  in every environment; an agent's scores are not (its softmax at temperature 1 restricted
  to the pool is the agent's own policy for BC-like agents).
* :attr:`EnvProblem.categories` — the category of each action for MIPS (KuaiRand: the main
  tag ``CandidatePool.items.cluster``, the video's first tag; RECEnv: the item's cluster);
  None where the actions change per user (InterestEvolution).
* :func:`rollout` — one episode for each of N users of a vector environment, truncated at the
  horizon H, padded: observations, actions, rewards, validity mask, the logged action's
  probability and the discounted returns.
* :func:`bootstrap_replicates` — every estimator's value on ``n_boot`` episode resamples at
  once (resample counts times per-episode statistics), the same numbers
  :func:`noetik.evaluation.ope.estimators.bootstrap_ci` computes one resample at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch

from noetik.agents.core import serving
from noetik.agents.core.base import Agent, ProblemSpec
from noetik.agents.onpolicy.collect import Collector, Step
from noetik.errors import ConfigError
from noetik.evaluation.ope.estimators import LoggedEpisodes, resampled_values
from noetik.evaluation.oracle import GreedyConfig
from noetik.utils.bootstrap import resample_counts
from noetik.utils.seeding import rng as seeded_rng

__all__ = [
    "ENV_PREFIX",
    "EnvProblem",
    "LoggedRollout",
    "Policies",
    "PolicySpec",
    "bootstrap_replicates",
    "make_problem",
    "policy_probs",
    "rollout",
]

#: Namespace of the environments the check knows.
ENV_PREFIX = "noetik/"
Scorer = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class PolicySpec:
    """A policy with known probabilities: ``(1 - w) [(1 - ε) softmax(z / T) + ε / A] + w μ``
    where ``z`` are the scorer's standardised scores and ``μ`` the behaviour policy."""

    name: str
    """Label in the results table."""
    scorer: Literal["linear", "oracle", "uniform", "agent"] = "linear"
    """What ranks the actions (see the module docstring)."""
    run_dir: str | None = None
    """``"agent"`` scorer: the run folder of the trained agent (``noetik train --out``)."""
    temperature: float = 1.0
    """Softmax temperature T (> 0) over the standardised scores; lower is greedier."""
    epsilon: float = 0.0
    """Probability ε in [0, 1] of a uniformly random action."""
    behaviour_weight: float = 0.0
    """Weight w in [0, 1] of the behaviour policy in a mixture (targets only)."""
    scorer_seed: int = 0
    """Seed of the random ``"linear"`` scorer."""
    close: bool = False
    """Whether the check's goal applies: a target meant to be close to the behaviour policy."""

    def __post_init__(self) -> None:
        if self.scorer not in ("linear", "oracle", "uniform", "agent"):
            raise ConfigError(
                f"scorer must be linear, oracle, uniform or agent, got {self.scorer!r}"
            )
        if (self.scorer == "agent") != (self.run_dir is not None):
            raise ConfigError(f"{self.name}: run_dir goes with scorer='agent' (and only there)")
        if not self.temperature > 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}")
        for name in ("epsilon", "behaviour_weight"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {getattr(self, name)}")


class EnvProblem:
    """One environment of the check: how to build it, its actions and its scorers."""

    def __init__(self, env_id: str, kwargs: dict[str, Any], n_actions: int, slate: bool):
        self.env_id, self.kwargs, self.n_actions, self.slate = env_id, kwargs, n_actions, slate
        self.oracle: Scorer | None = None
        self.categories: np.ndarray | None = None
        """(A,) int64 category of each action in ``[0, C)`` (MIPS), or None."""
        self.video_ids: np.ndarray | None = None
        """KuaiRand: (A,) int64 video id of each action (what an agent scorer scores)."""

    def make(self, n: int) -> gym.vector.VectorEnv[Any, Any, Any]:
        """``n`` users of the environment, batched."""
        return gym.make_vec(
            self.env_id, num_envs=n, vectorization_mode="vector_entry_point", **self.kwargs
        )

    def scorer(self, spec: PolicySpec, obs_dim: int) -> Scorer:
        """The scorer of ``spec``: obs (M, D) float32 -> scores (M, A) float64."""
        if spec.scorer == "oracle":
            if self.oracle is None:
                raise ConfigError(f"no oracle scorer for {self.env_id}")
            return self.oracle
        if spec.scorer == "uniform":
            return lambda obs: np.zeros((len(obs), self.n_actions))
        if spec.scorer == "agent":
            return self._agent_scorer(str(spec.run_dir))
        w = seeded_rng(spec.scorer_seed, "ope-linear-scorer").normal(size=(obs_dim, self.n_actions))
        return lambda obs: np.asarray(obs, dtype=np.float64) @ w

    def _agent_scorer(self, run_dir: str) -> Scorer:
        """The scores of the pool's videos by the agent of ``run_dir``, chunked over rows."""
        if self.video_ids is None:
            raise ConfigError(f"scorer 'agent' needs KuaiRand's video ids, not {self.env_id}")
        agent = Agent.load(run_dir)
        vocab = getattr(agent.spec, "video_ids", None)
        if vocab is None:
            raise ConfigError(f"{run_dir}: the agent has no video vocabulary (not KuaiRand?)")
        vocab = np.asarray(vocab, dtype=np.int64)
        where = np.searchsorted(vocab, self.video_ids).clip(max=len(vocab) - 1)
        if not np.array_equal(vocab[where], self.video_ids):
            raise ConfigError(f"{run_dir}: the agent's vocabulary lacks videos of the pool")
        pool = torch.as_tensor(where, device=agent.device)

        def scores(obs: np.ndarray) -> np.ndarray:
            x = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=agent.device)
            parts = [
                serving.candidate_scores(agent, x[lo : lo + _AGENT_ROWS], None, pool)
                for lo in range(0, len(x), _AGENT_ROWS)
            ]
            return np.concatenate([p.double().cpu().numpy() for p in parts])

        return scores

    def env_action(self, actions: np.ndarray) -> np.ndarray:
        """The env's action for item indices (B,) int64 (a one-item slate where needed)."""
        return actions[:, None] if self.slate else actions


def make_problem(
    env_id: str, horizon: int, options: Mapping[str, Any], pool_size: int | None
) -> EnvProblem:
    """The check's view of ``env_id`` with episodes of ``horizon`` steps (at most).

    RECEnv: ``step_per_episode = horizon``. KuaiRand: ``episode_length = horizon`` and, with
    ``pool_size``, the pool cut to that many videos evenly spaced in the default pool.
    InterestEvolution: one-document slates (the action is the candidate index).
    """
    import noetik.envs  # noqa: F401  (registers the ids)

    kwargs = dict(options)
    if env_id == f"{ENV_PREFIX}RECEnv-v0":
        kwargs.setdefault("step_per_episode", horizon)
    elif env_id == f"{ENV_PREFIX}KuaiRand-v0":
        kwargs.setdefault("episode_length", horizon)
        if pool_size is not None:
            probe: Any = gym.make_vec(
                env_id, num_envs=1, vectorization_mode="vector_entry_point", **kwargs
            )
            ids = np.asarray(probe.candidate_video_ids)
            pick = np.unique(np.linspace(0, len(ids) - 1, min(pool_size, len(ids))).round())
            kwargs["candidate_pool"] = tuple(int(v) for v in ids[pick.astype(np.int64)])
    elif env_id == f"{ENV_PREFIX}InterestEvolution-v0":
        kwargs["slate_size"] = 1
    else:
        raise ConfigError(f"env_id must be RECEnv, InterestEvolution or KuaiRand, got {env_id!r}")
    envs: Any = gym.make_vec(env_id, num_envs=1, vectorization_mode="vector_entry_point", **kwargs)
    space = envs.single_action_space
    n = int(space.n) if hasattr(space, "n") else int(np.asarray(space.nvec).flat[0])
    problem = EnvProblem(env_id, kwargs, n, slate=not hasattr(space, "n"))
    problem.oracle = _oracle(env_id, envs)
    problem.categories = _categories(envs, n)
    if env_id == f"{ENV_PREFIX}KuaiRand-v0":
        problem.video_ids = np.asarray(envs.candidate_video_ids, dtype=np.int64)
    return problem


#: Rows per agent forward pass of the ``"agent"`` scorer.
_AGENT_ROWS = 1_024


def _categories(envs: Any, n_actions: int) -> np.ndarray | None:
    """(A,) int64 category of each action: the fixed catalogue's cluster (KuaiRand: the first
    tag, -1 for an untagged video, which gets a category of its own), or None."""
    items = getattr(getattr(envs, "simulator", None), "item_model", None)
    cluster = getattr(getattr(items, "items", None), "cluster", None)
    if cluster is None or np.shape(cluster) != (n_actions,):
        return None
    cats = np.asarray(cluster, dtype=np.int64)
    return np.where(cats < 0, cats.max() + 1, cats)


def _oracle(env_id: str, envs: Any) -> Scorer | None:
    """The one-step expected reward of every action, from the observation."""
    if env_id.endswith("RECEnv-v0"):
        items = np.asarray(envs.simulator.item_model.items.features, dtype=np.float64)
        return lambda obs: np.asarray(obs, dtype=np.float64) @ items.T
    if env_id.endswith("InterestEvolution-v0"):
        cfg = envs.config
        if not cfg.observe_interests:
            return None
        k = cfg.num_topics

        def interest(obs: np.ndarray) -> np.ndarray:
            x = np.asarray(obs, dtype=np.float64)
            docs = x[:, k + 1 :].reshape(len(x), cfg.n_candidates, k)
            return np.asarray(np.einsum("bk,bnk->bn", x[:, :k], docs))

        return interest
    greedy = GreedyConfig.for_env(envs).create(ProblemSpec.from_env(envs))

    def expected_reward(obs: np.ndarray) -> np.ndarray:
        scores = greedy.scores(torch.as_tensor(np.asarray(obs, dtype=np.float32)))
        return np.asarray(scores.numpy(), dtype=np.float64)

    return expected_reward


def policy_probs(
    spec: PolicySpec, scores: np.ndarray, behaviour: np.ndarray | None = None
) -> np.ndarray:
    """π(·|s) (M, A) float64 of ``spec`` from its scorer's ``scores`` (M, A) float64;
    ``behaviour`` (M, A) float64 is μ(·|s), needed when ``spec.behaviour_weight > 0``. Scores
    are standardised per row first, except an agent's."""
    z = scores - scores.mean(axis=1, keepdims=True)
    if spec.scorer != "agent":
        std = z.std(axis=1, keepdims=True)
        z = np.divide(z, std, out=np.zeros_like(z), where=std > 1e-12)
    z = z / spec.temperature
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p = (1.0 - spec.epsilon) * p + spec.epsilon / p.shape[1]
    if spec.behaviour_weight > 0.0:
        if behaviour is None:
            raise ConfigError(f"{spec.name}: behaviour_weight needs the behaviour policy")
        p = (1.0 - spec.behaviour_weight) * p + spec.behaviour_weight * behaviour
    return np.asarray(p, dtype=np.float64)


class Policies:
    """The behaviour policy and the targets of one environment, by name."""

    def __init__(self, problem: EnvProblem, specs: tuple[PolicySpec, ...], obs_dim: int):
        self.specs = {s.name: s for s in specs}
        if len(self.specs) != len(specs):
            raise ConfigError("policy names must be unique (behaviour and targets)")
        self.behaviour = specs[0]
        self._scorers = {_key(s): problem.scorer(s, obs_dim) for s in specs}

    def table(self, obs: np.ndarray, names: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        """π(·|s) (M, A) float64 of each policy in ``names`` (default all) for ``obs`` (M, D)
        float32; each scorer runs once."""
        wanted = [self.specs[n] for n in (names or tuple(self.specs))]
        scores: dict[tuple[str, int, str], np.ndarray] = {}
        mixes = any(s.behaviour_weight > 0 for s in wanted)
        for spec in [*wanted, self.behaviour] if mixes else wanted:
            if _key(spec) not in scores:
                scores[_key(spec)] = self._scorers[_key(spec)](obs)
        mu = policy_probs(self.behaviour, scores[_key(self.behaviour)]) if mixes else None
        return {s.name: policy_probs(s, scores[_key(s)], mu) for s in wanted}

    def sampler(self, name: str) -> Scorer:
        """obs (B, D) -> π(·|s) (B, A) of the policy ``name``, for :func:`rollout`."""
        return lambda obs: self.table(obs, (name,))[name]


def _key(spec: PolicySpec) -> tuple[str, int, str]:
    return spec.scorer, spec.scorer_seed if spec.scorer == "linear" else 0, spec.run_dir or ""


@dataclass(frozen=True)
class LoggedRollout:
    """N episodes padded to H steps (the arrays of :class:`LoggedEpisodes` and FQE)."""

    obs: np.ndarray
    """(N, H, D) float32 state before each step (0 on padding)."""
    actions: np.ndarray
    """(N, H) int64 chosen item index."""
    rewards: np.ndarray
    """(N, H) float64 reward (0 on padding)."""
    mask: np.ndarray
    """(N, H) bool valid steps."""
    probs: np.ndarray
    """(N, H) float64 probability of the chosen action under the rolled-out policy."""
    returns: np.ndarray
    """(N,) float64 discounted return ``Σ_t γ**t r_t``."""


def rollout(
    problem: EnvProblem,
    envs: gym.vector.VectorEnv[Any, Any, Any],
    policy: Scorer,
    *,
    horizon: int,
    gamma: float,
    seeds: tuple[int, np.random.Generator],
) -> LoggedRollout:
    """One episode per user of ``envs`` following ``policy`` (obs -> probabilities (B, A)),
    truncated at ``horizon``. ``seeds``: the env reset seed and the action sampler."""
    reset_seed, rng = seeds
    collector = Collector(envs, seed=reset_seed)
    n = collector.num_envs
    out_obs = np.zeros((n, horizon, collector.obs.shape[1]), dtype=np.float32)
    actions = np.zeros((n, horizon), dtype=np.int64)
    rewards, probs = np.zeros((n, horizon)), np.ones((n, horizon))
    mask = np.zeros((n, horizon), dtype=bool)

    def act(obs: np.ndarray, info: dict[str, Any]) -> tuple[np.ndarray, tuple[Any, ...]]:
        p = policy(obs)
        chosen = np.minimum((p.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1), p.shape[1] - 1)
        return problem.env_action(chosen), (chosen, p[np.arange(n), chosen])

    def record(step: Step) -> None:
        t, active = step.t, step.active
        out_obs[:, t] = np.where(active[:, None], step.obs, 0.0)
        actions[:, t], probs[:, t] = step.extra
        mask[:, t] = active
        rewards[:, t] = np.where(active, step.reward, 0.0)

    collector.run(act, horizon, until_done=True, hooks=(record,))
    returns = (rewards * gamma ** np.arange(horizon)).sum(axis=1)
    return LoggedRollout(out_obs, actions, rewards, mask, probs, returns)


def bootstrap_replicates(
    data: LoggedEpisodes, clip: float | None, n_boot: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Each estimator's value (n_boot,) float64 on ``n_boot`` resamples of the episodes, as
    :func:`~noetik.evaluation.ope.estimators.resampled_values` computes them (the ``ope``
    lens's resampling), under the check's names.

    Keys: ``IS``, ``WIS``, ``PDIS``, ``WPDIS``; ``DR``, ``DM`` when ``data`` has ``q_hat``
    and ``v_hat`` (held fixed); ``MIPS``, ``SNMIPS`` when it has the ``*_embed_prob`` arrays.
    """
    counts = resample_counts(rng, n_boot, data.n_episodes)
    values = resampled_values(data, counts, clip)
    return {name.upper(): values[name] for name in _CHECKED if name in values}


#: The lens's estimator names the check reports.
_CHECKED = ("is", "wis", "pdis", "wpdis", "dr", "dm", "mips", "snmips")
