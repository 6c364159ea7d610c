"""Online evaluation: roll a policy out in a batched simulator, one session per simulated user.

Any agent that scores items works. Agents trained offline score the whole video vocabulary of
their dataset; ``noetik/KuaiRand-v0`` lets them choose among its candidate pool only, so
:class:`EnvPolicy` maps the pool's video ids to the agent's actions and picks the best-scored
video of the pool. Transformer agents receive the simulated users' raw history from ``info``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from noetik.agents.base import Agent
from noetik.agents.encoders import History
from noetik.utils.arrays import IdIndex

_HISTORY_KEYS = ("history_items", "history_signals", "history_gap_s", "history_mask")


class EnvPolicy:
    """Turns an agent into actions of a (vector) environment.

    ``pool_actions`` (P,) int64 is, for each env action, the agent's action index of the same
    video (``-1`` when the agent does not know it: never chosen). Without video ids on either
    side, env actions are the agent's actions.
    """

    def __init__(self, agent: Agent, envs: Any, deterministic: bool = True) -> None:
        self.agent, self.deterministic = agent, deterministic
        pool = getattr(envs, "candidate_video_ids", None)
        own = agent.spec.video_ids
        self.pool_actions: np.ndarray | None = None
        if pool is not None and own is not None:
            pos, found = IdIndex(np.sort(own)).lookup(np.asarray(pool))
            order = np.argsort(own)
            self.pool_actions = np.where(found, order[pos], -1).astype(np.int64)
            if not found.any():
                raise ValueError("the agent knows none of the environment's candidate videos")
        self.history_map = _history_map(agent, getattr(envs, "vocab_video_ids", None))
        self.device = next(iter(agent.parameters()), torch.empty(0)).device
        self.generator = torch.Generator(device=self.device).manual_seed(0)

    def __call__(self, obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        """Actions (B,) int64 for observations ``obs`` (B, obs_dim) float32."""
        obs_t = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        history = None
        if all(k in info for k in _HISTORY_KEYS):
            items, signals, gaps, mask = (np.asarray(info[k]) for k in _HISTORY_KEYS)
            padding = self.agent.spec.n_actions
            if self.history_map is not None:
                items = self.history_map[items]
            items = np.where(mask & (items < padding), items, padding)
            history = History.from_numpy((items, signals, gaps, mask), self.device)
        with torch.inference_mode():
            scores = self.agent.scores(obs_t, history)
            if self.pool_actions is not None:
                cols = torch.as_tensor(np.maximum(self.pool_actions, 0), device=self.device)
                scores = scores[:, cols].masked_fill(
                    torch.as_tensor(self.pool_actions < 0, device=self.device), float("-inf")
                )
            if self.deterministic:
                actions = scores.argmax(dim=1)
            else:
                probs = torch.softmax(scores, dim=1)
                actions = torch.multinomial(probs, 1, generator=self.generator)[:, 0]
        return actions.cpu().numpy().astype(np.int64)


def _history_map(agent: Agent, vocab_video_ids: np.ndarray | None) -> np.ndarray | None:
    """(A_vocab + 1,) agent action of each env vocabulary index (``n_actions`` if unknown);
    the last entry maps the env's history padding index (A_vocab) to the agent's."""
    own = agent.spec.video_ids
    if vocab_video_ids is None or own is None:
        return None
    order = np.argsort(own)
    pos, found = IdIndex(own[order]).lookup(np.asarray(vocab_video_ids))
    mapped = np.where(found, order[pos], agent.spec.n_actions).astype(np.int64)
    return np.append(mapped, agent.spec.n_actions)


@dataclass
class SessionStats:
    """Per-user outcomes of one simulated session each (arrays of length n_users)."""

    returns: np.ndarray
    """(N,) float64 sum of rewards of the session."""
    lengths: np.ndarray
    """(N,) int64 steps in the session."""
    signals: dict[str, np.ndarray] = field(default_factory=dict)
    """Per signal, (N,) float64 mean over the session's steps (e.g. ``is_click``)."""


def run_sessions(
    envs: gym.vector.VectorEnv[Any, Any, Any],
    policy: Any,
    seed: int = 0,
    signal_names: tuple[str, ...] = ("is_click", "watch_ratio", "is_like", "is_hate"),
    max_steps: int = 10_000,
) -> SessionStats:
    """One session for each of the ``envs.num_envs`` users (rows that finish stop counting)."""
    n = envs.num_envs
    obs, info = envs.reset(seed=seed)
    returns, lengths = np.zeros(n), np.zeros(n, dtype=np.int64)
    sums = {s: np.zeros(n) for s in signal_names}
    active = np.ones(n, dtype=bool)
    for _ in range(max_steps):
        obs, reward, terminated, truncated, info = envs.step(policy(obs, info))
        returns += np.where(active, reward, 0.0)
        lengths += active
        for s in signal_names:
            if s in info:
                sums[s] += np.where(active, np.asarray(info[s], dtype=np.float64), 0.0)
        active &= ~(np.asarray(terminated) | np.asarray(truncated))
        if not active.any():
            break
    means = {s: v / np.maximum(lengths, 1) for s, v in sums.items()}
    return SessionStats(returns, lengths, means)


def bootstrap_ci(
    values: np.ndarray, level: float = 0.95, n_boot: int = 2_000, seed: int = 0
) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean of ``values`` (N,) and a percentile bootstrap interval."""
    values = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(n_boot, len(values)))
    means = values[idx].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(values.mean()), float(low), float(high)


def make_eval_envs(
    env_id: str, n_users: int, env_kwargs: dict[str, Any] | None = None
) -> gym.vector.VectorEnv[Any, Any, Any]:
    """``n_users`` simulated users of ``env_id``, batched (``vector_entry_point`` mode)."""
    import noetik.envs  # noqa: F401  (registers the ids)

    return gym.make_vec(
        env_id, num_envs=n_users, vectorization_mode="vector_entry_point", **(env_kwargs or {})
    )


def evaluate_online(
    agent: Agent,
    env_id: str,
    n_users: int = 1_000,
    env_kwargs: dict[str, Any] | None = None,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """One session for each of ``n_users`` simulated users of ``env_id``: mean and 95 %
    bootstrap interval (``{"mean", "low", "high"}``) of return, session length and signals.

    Agents that read the history get it from the environment (``return_history=True``).
    """
    kwargs = dict(env_kwargs or {})
    if wants_history(agent):
        kwargs["return_history"] = True
    envs = make_eval_envs(env_id, n_users, kwargs)
    stats = run_sessions(envs, EnvPolicy(agent, envs), seed=seed)
    table = {"return": stats.returns, "length": stats.lengths.astype(np.float64)}
    table.update({f"{k}_rate" if k.startswith("is_") else k: v for k, v in stats.signals.items()})
    out: dict[str, dict[str, float]] = {}
    for name, values in table.items():
        mean, low, high = bootstrap_ci(values, seed=seed)
        out[name] = {"mean": mean, "low": low, "high": high}
    return out


def wants_history(agent: Agent) -> bool:
    """Whether ``agent``'s encoder reads the raw interaction history."""
    encoder = getattr(agent, "encoder", None)
    return bool(getattr(encoder, "uses_history", False))
