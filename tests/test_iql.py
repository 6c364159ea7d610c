"""Discrete IQL: the losses by hand, exact tabular fixed points, policy extraction, contract."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor

from noetik.agents.algorithms.iql import (
    IQLAgent,
    IQLConfig,
    awr_weights,
    expectile_loss,
    reward_scale,
)
from noetik.agents.core.base import Agent, ProblemSpec
from noetik.agents.core.batches import Batch, DeviceReplay
from noetik.agents.core.trainer import TrainerConfig
from noetik.agents.networks.encoders import EncoderConfig
from noetik.data.rewards import RewardConfig
from noetik.data.transitions import ItemVocab, Transitions, episode_links
from noetik.errors import ConfigError

# -- 1. the losses on tiny tensors -------------------------------------------------------------


def test_expectile_loss_by_hand() -> None:
    diff = torch.tensor([2.0, -1.0, 0.5, 0.0, -3.0])
    # tau = 0.7: positive residuals weigh 0.7, negative ones 0.3
    expected = torch.tensor([0.7 * 4, 0.3 * 1, 0.7 * 0.25, 0.0, 0.3 * 9])
    torch.testing.assert_close(expectile_loss(diff, 0.7), expected)
    torch.testing.assert_close(expectile_loss(diff, 0.5), 0.5 * diff**2)  # half the MSE


def test_awr_weights_by_hand() -> None:
    adv = torch.tensor([0.0, 1.0, -1.0, 2.0])
    expected = torch.tensor([1.0, math.exp(3.0), math.exp(-3.0), 100.0])  # e^6 = 403 -> clip
    torch.testing.assert_close(awr_weights(adv, 3.0, 100.0), expected)
    torch.testing.assert_close(awr_weights(adv, 0.0, 100.0), torch.ones(4))  # beta 0 = BC


# -- 2./3. a tabular MDP: exact fixed points and policy extraction ------------------------------

GAMMA = 0.9
S, A, OBS = 3, 3, 8
#: (state, action, reward, next state, done, times logged); (2, 2) is never logged.
ROWS = [
    (0, 0, 0.0, 1, 0, 1),
    (0, 1, 0.1, 0, 0, 3),
    (0, 2, 0.0, 2, 0, 1),
    (1, 0, 0.0, 0, 0, 1),
    (1, 1, 0.5, 2, 0, 1),
    (1, 2, 0.1, 1, 0, 2),
    (2, 0, 0.3, 0, 0, 1),
    (2, 1, 1.0, 2, 1, 1),
]


def _expectile(q: np.ndarray, w: np.ndarray, tau: float) -> float:
    """The tau-expectile m of values q weighted w: sum w |tau - 1(q < m)| (q - m) = 0."""
    lo, hi = float(q.min()), float(q.max())
    for _ in range(60):  # bisection: the left side decreases in m
        m = (lo + hi) / 2
        g = float(np.sum(w * np.where(q > m, tau, 1 - tau) * (q - m)))
        lo, hi = (m, hi) if g > 0 else (lo, m)
    return (lo + hi) / 2


@functools.cache
def _iterate(backup: str, tau: float = 0.5) -> tuple[dict[tuple[int, int], float], np.ndarray]:
    """Exact (Q, V) on the log's support: V = max (value iteration) or the tau-expectile of
    Q over logged actions, weighted by how often they were logged (IQL's tabular operator)."""
    v = np.zeros(S)
    q: dict[tuple[int, int], float] = {}
    for _ in range(300):  # gamma^300 < 1e-13
        q = {(s, a): r + GAMMA * (1 - d) * v[s2] for s, a, r, s2, d, _ in ROWS}
        for s in range(S):
            qs = np.array([q[(s, a)] for ss, a, *_ in ROWS if ss == s])
            counts = np.array([c for ss, *_, c in ROWS if ss == s], dtype=np.float64)
            v[s] = qs.max() if backup == "max" else _expectile(qs, counts, tau)
    return q, v


def _behaviour_values() -> np.ndarray:
    """V^β of the logging policy β(a|s) ∝ counts, by a linear solve (SARSA's fixed point)."""
    p, r = np.zeros((S, S)), np.zeros(S)
    for s, _, rew, s2, d, c in ROWS:
        n = sum(cc for ss, *_, cc in ROWS if ss == s)
        r[s] += c / n * rew
        p[s, s2] += c / n * (1 - d)
    return np.linalg.solve(np.eye(S) - GAMMA * p, r)


def _full_batch() -> Batch:
    """Every logged row (with repeats) as one batch; states are one-hot in 8 dimensions."""
    rows = [row for row in ROWS for _ in range(row[5])]
    eye = torch.eye(OBS)
    return Batch(
        rows=torch.arange(len(rows)),
        obs=eye[[r[0] for r in rows]],
        action=torch.tensor([r[1] for r in rows]),
        reward=torch.tensor([r[2] for r in rows]),
        next_obs=eye[[r[3] for r in rows]],
        done=torch.tensor([float(r[4]) for r in rows]),
    )


def _train_tabular(expectile: float, steps: int = 800) -> IQLAgent:
    cfg = IQLConfig(
        device="cpu",
        encoder=EncoderConfig(hidden=(32, 32)),
        gamma=GAMMA,
        expectile=expectile,
        temperature=10.0,
        tau=0.2,
        lr=3e-3,
        actor_lr=3e-3,
        reward_scale_mode="none",
    )
    agent = cfg.create(ProblemSpec(A, OBS))
    assert isinstance(agent, IQLAgent)
    batch = _full_batch()
    for _ in range(steps):
        agent.update(batch)
    return agent.eval()


@pytest.fixture(scope="module")
def greedy_agent() -> IQLAgent:
    return _train_tabular(0.99)


def _learned(agent: IQLAgent) -> tuple[Tensor, Tensor, Tensor]:
    states = torch.eye(OBS)[:S]
    with torch.no_grad():
        pi = torch.softmax(agent.scores(states), dim=-1)
        return agent.q_values(states), agent.value(states), pi


def _assert_q(q: Tensor, expected: dict[tuple[int, int], float], atol: float) -> None:
    for (s, a), value in expected.items():
        assert abs(float(q[s, a]) - value) < atol, (s, a, float(q[s, a]), value)


def test_expectile_near_one_reaches_the_optimal_in_sample_values(
    greedy_agent: IQLAgent,
) -> None:
    q_star, v_star = _iterate("max")
    q_fixed, v_fixed = _iterate("expectile", 0.99)
    q, v, _ = _learned(greedy_agent)
    # IQL's own tabular fixed point, reached by the networks...
    np.testing.assert_allclose(v.numpy(), v_fixed, atol=0.03)
    _assert_q(q, q_fixed, atol=0.03)
    # ...is the optimal in-sample value up to the expectile's bias (0.1 at tau = 0.99,
    # vanishing as tau -> 1: the fixed point of tau = 0.9999 is within 2e-3 of V*).
    np.testing.assert_allclose(v.numpy(), v_star, atol=0.15)
    _assert_q(q, q_star, atol=0.15)
    np.testing.assert_allclose(_iterate("expectile", 0.9999)[1], v_star, atol=2e-3)


def test_expectile_half_gives_the_behaviour_value() -> None:
    agent = _train_tabular(0.5)
    v_beta = _behaviour_values()
    q_beta, v_fixed = _iterate("expectile", 0.5)
    np.testing.assert_allclose(v_fixed, v_beta, atol=1e-6)  # the 0.5-expectile is the mean
    q, v, _ = _learned(agent)
    np.testing.assert_allclose(v.numpy(), v_beta, atol=0.03)
    _assert_q(q, q_beta, atol=0.03)


def test_policy_extraction_picks_the_best_logged_action(greedy_agent: IQLAgent) -> None:
    q_star, _ = _iterate("max")
    q_fixed, v_fixed = _iterate("expectile", 0.99)
    _, _, pi = _learned(greedy_agent)
    for s in range(S):
        logged = [(a, c) for ss, a, *_, c in ROWS if ss == s]
        best = max(logged, key=lambda ac: q_star[(s, ac[0])])[0]
        assert int(pi[s].argmax()) == best  # not the most logged action (a1 in state 0)
        # AWR's optimum: pi(a|s) ∝ count(s, a) min(exp(beta (Q - V)), clip) on logged actions
        w = {a: c * min(math.exp(10.0 * (q_fixed[(s, a)] - v_fixed[s])), 100.0) for a, c in logged}
        for a, weight in w.items():
            assert abs(float(pi[s, a]) - weight / sum(w.values())) < 0.06, (s, a)
    assert float(pi[2, 2]) < 0.01  # never logged in state 2


# -- reward normalisation ------------------------------------------------------------------------


def _transitions(n: int = 48, n_actions: int = 7, seed: int = 0) -> Transitions:
    """N random rows of 4 users, one episode per user (sorted by user and time)."""
    rng = np.random.default_rng(seed)
    user_id = np.sort(rng.integers(0, 4, n)).astype(np.int32)
    done, next_index = episode_links(user_id.astype(np.int64))
    action = rng.integers(0, n_actions, n)
    return Transitions(
        obs=rng.standard_normal((n, 128)).astype(np.float16),
        action=action,
        reward=rng.random(n).astype(np.float32) + (action == 2),
        done=done,
        next_index=next_index,
        episode_id=user_id.astype(np.int64),
        step=np.zeros(n, dtype=np.int32),
        user_id=user_id,
        time_ms=np.cumsum(rng.integers(1000, 60_000, n)).astype(np.int64),
        signals=rng.random((n, 12), dtype=np.float32),
        vocab=ItemVocab.from_ids(np.arange(100, 100 + n_actions)),
        reward_config=RewardConfig(),
    )


def test_reward_scale_formulas() -> None:
    t = _transitions()
    r = t.reward.astype(np.float64)
    assert reward_scale(t, "none") == 1.0
    assert reward_scale(t, "std") == pytest.approx(1.0 / r.std())
    returns = [r[t.episode_id == e].sum() for e in np.unique(t.episode_id)]
    assert reward_scale(t, "return_range") == pytest.approx(1000 / (max(returns) - min(returns)))
    agent = IQLConfig(device="cpu", reward_scale_mode="std").create(ProblemSpec.from_transitions(t))
    agent.make_source(t)
    assert float(agent.state_dict()["reward_scale"]) == pytest.approx(1.0 / r.std())
    with pytest.raises(ConfigError):
        IQLConfig(expectile=1.0)
    with pytest.raises(ConfigError):
        IQLConfig(reward_scale_mode="max")  # type: ignore[arg-type]


# -- 4. the agent contract ---------------------------------------------------------------------

SMALL = {
    "mlp": EncoderConfig(hidden=(16, 16)),
    "transformer": EncoderConfig(kind="transformer", d_model=16, n_heads=2, history_len=4),
}


def _config(kind: str) -> IQLConfig:
    # the transformer variant also scores items against embeddings (dense_max_actions < A)
    return IQLConfig(
        device="cpu",
        batch_size=8,
        encoder=SMALL[kind],
        item_embed_dim=8,
        dense_max_actions=100 if kind == "mlp" else 4,
        seed=3,
    )


@pytest.mark.parametrize("kind", ["mlp", "transformer"])
def test_fit_act_save_load(kind: str, tmp_path: Path) -> None:
    t = _transitions()
    feats = np.random.default_rng(1).random((t.n_actions, 3), dtype=np.float32)
    spec = ProblemSpec.from_transitions(t, item_features=feats)
    agents = []
    for run in ("a", "b"):
        agent = _config(kind).create(spec)
        result = agent.fit(
            t, steps=6, out_dir=tmp_path / run, trainer=TrainerConfig(log_every=3, progress=False)
        )
        assert {"v_loss", "q_loss", "actor_loss", "awr_weight_mean"} <= set(result.metrics)
        assert all(math.isfinite(v) for v in result.metrics.values())
        agents.append(agent)
    for (name, x), y in zip(
        agents[0].state_dict().items(), agents[1].state_dict().values(), strict=True
    ):
        assert torch.equal(x, y), name  # same seed, same weights (targets and scale included)
    agent = agents[0].eval()
    assert isinstance(agent, IQLAgent)
    loaded = Agent.load(tmp_path / "a" / "checkpoint").eval()
    assert isinstance(loaded, IQLAgent) and loaded.config == agent.config
    batch = DeviceReplay(t, 16, history_len=4 if kind == "transformer" else 0).sample()
    actions = agent.act(batch.obs, batch.history)
    assert actions.shape == (16,) and actions.dtype == torch.int64
    torch.testing.assert_close(loaded.act(batch.obs, batch.history), actions, rtol=0, atol=0)
    with torch.no_grad():
        assert loaded.q_values(batch.obs, batch.history).shape == (16, t.n_actions)
        assert loaded.value(batch.obs, batch.history).shape == (16,)
        torch.testing.assert_close(
            loaded.advantages(batch.obs, batch.history), agent.advantages(batch.obs, batch.history)
        )
    attention = loaded.attention(batch.obs, batch.history)
    assert (attention is not None) == (kind == "transformer")
