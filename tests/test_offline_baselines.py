"""Offline baselines (BC, DQN, CQL): known answers on tiny problems, and the agent contract."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from noetik.agents.algorithms.bc import BCAgent, BCConfig
from noetik.agents.algorithms.cql import CQLConfig, conservative_penalty, cql_objective
from noetik.agents.algorithms.dqn import DQNAgent, DQNConfig
from noetik.agents.core.base import Agent, AgentConfig, ProblemSpec
from noetik.agents.core.batches import DeviceReplay
from noetik.agents.core.reward_scale import RewardScale, RewardScaleMode, reward_scale
from noetik.agents.core.trainer import TrainerConfig
from noetik.agents.networks.encoders import EncoderConfig
from noetik.data.rewards import RewardConfig
from noetik.data.transitions import ItemVocab, Transitions
from noetik.errors import ConfigError
from tests.test_agent_core import tiny_transitions

SMALL = EncoderConfig(hidden=(64, 64))
TRANSFORMER = EncoderConfig(kind="transformer", d_model=16, n_heads=2, n_layers=1, history_len=4)
QUIET = TrainerConfig(progress=False, tensorboard=False, log_every=1)


def make_log(
    state: np.ndarray,
    action: np.ndarray,
    reward: np.ndarray,
    next_state: np.ndarray,
    done: np.ndarray,
    *,
    n_actions: int,
) -> Transitions:
    """Transitions whose state ``s`` is one-hot at dimension ``s``; the next state of a row is
    read from the first row of ``next_state``'s state (any row with that state will do)."""
    n = len(state)
    obs = np.zeros((n, 128), dtype=np.float32)
    obs[np.arange(n), state] = 1.0
    first = {int(s): i for i, s in reversed(list(enumerate(state)))}
    pairs = enumerate(zip(next_state, done, strict=True))
    next_index = np.array([i if d else first[int(s)] for i, (s, d) in pairs], dtype=np.int64)
    return Transitions(
        obs=obs,
        action=action.astype(np.int64),
        reward=reward.astype(np.float32),
        done=done.astype(bool),
        next_index=next_index,
        episode_id=np.arange(n, dtype=np.int64),
        step=np.zeros(n, dtype=np.int32),
        user_id=np.arange(n, dtype=np.int32),
        time_ms=np.arange(n, dtype=np.int64),
        signals=np.zeros((n, 12), dtype=np.float32),
        vocab=ItemVocab.from_ids(np.arange(n_actions)),
        reward_config=RewardConfig(),
    )


def full_batch_training(agent: Agent, t: Transitions, steps: int) -> None:
    """``steps`` updates on the whole (tiny) log: deterministic gradients, exact fixed points."""
    agent.make_source(t)  # fits the reward scale (value-based agents)
    batch = DeviceReplay(t, len(t)).batch(torch.arange(len(t)))
    agent.train()
    for _ in range(steps):
        agent.update(batch)
    agent.eval()


def all_q(agent: Agent, n_states: int) -> np.ndarray:
    """(S, A) scores of the one-hot states."""
    obs = torch.zeros(n_states, 128)
    obs[torch.arange(n_states), torch.arange(n_states)] = 1.0
    with torch.no_grad():
        return agent.scores(obs).numpy()


# -- a tabular MDP: 3 states, 3 actions, s' = (s + a) mod 3, (2, 2) ends the episode ---------
S, A, GAMMA = 3, 3, 0.8
R = np.array([[0.1, 0.5, 0.0], [0.3, 0.2, 0.9], [0.0, 0.4, 1.0]])
NEXT = (np.arange(S)[:, None] + np.arange(A)[None, :]) % S
TERMINAL = np.zeros((S, A), dtype=bool)
TERMINAL[2, 2] = True


def q_star() -> np.ndarray:
    """(S, A) optimal Q by value iteration."""
    q = np.zeros((S, A))
    for _ in range(500):
        q = R + GAMMA * (1.0 - TERMINAL) * q.max(1)[NEXT]
    return q


def mdp_log(pairs: list[tuple[int, int]]) -> Transitions:
    """One logged transition per (state, action) pair."""
    s, a = np.array(pairs).T
    return make_log(s, a, R[s, a], NEXT[s, a], TERMINAL[s, a], n_actions=A)


ALL_PAIRS = [(s, a) for s in range(S) for a in range(A)]
NO_ACTION_2 = [(s, a) for s, a in ALL_PAIRS if a != 2 or s == 2]  # (0, 2), (1, 2) unseen


# -- known answers ---------------------------------------------------------------------------
def test_bc_recovers_the_logged_action_distribution() -> None:
    # state 0: action 0 70 times, action 1 30 times; state 1: action 1 40, action 2 60
    state = np.repeat([0, 1], 100)
    action = np.concatenate([np.repeat([0, 1], [70, 30]), np.repeat([1, 2], [40, 60])])
    t = make_log(state, action, np.zeros(200), state, np.ones(200, dtype=bool), n_actions=3)
    agent = BCConfig(encoder=SMALL, lr=1e-2, device="cpu").create(ProblemSpec.from_transitions(t))
    full_batch_training(agent, t, 400)
    probs = torch.softmax(torch.as_tensor(all_q(agent, 2)), -1).numpy()
    np.testing.assert_allclose(probs, [[0.7, 0.3, 0.0], [0.0, 0.4, 0.6]], atol=0.02)


@pytest.mark.parametrize(("double", "mode"), [(True, "std"), (False, "none")])
def test_dqn_converges_to_value_iteration(double: bool, mode: RewardScaleMode) -> None:
    t = mdp_log(ALL_PAIRS)
    cfg = DQNConfig(
        encoder=SMALL,
        lr=3e-3,
        gamma=GAMMA,
        tau=0.05,
        double=double,
        reward_scale_mode=mode,
        device="cpu",
    )
    agent = cfg.create(ProblemSpec.from_transitions(t))
    full_batch_training(agent, t, 2500)
    np.testing.assert_allclose(all_q(agent, S), q_star(), atol=1e-3)


def test_conservative_penalty_by_hand() -> None:
    q = torch.tensor([[[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]])  # (E=1, B=2, A=3)
    action = torch.tensor([2, 0])
    expected = (math.log(math.e + math.e**2 + math.e**3) - 3.0 + math.log(3.0)) / 2
    assert conservative_penalty(q, action).item() == pytest.approx(expected, rel=1e-6)
    twin = torch.stack([q[0], q[0] + 5.0])  # a constant shift leaves the penalty unchanged
    assert conservative_penalty(twin, action).item() == pytest.approx(2 * expected, rel=1e-5)


@pytest.mark.parametrize("n_critics", [1, 2])
def test_fused_cql_objective_matches_autograd(n_critics: int) -> None:
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(n_critics, 6, 7, generator=gen, dtype=torch.float64) * 2
    action = torch.tensor([0, 6, 3, 3, 1, 2])
    target = torch.randn(6, generator=gen, dtype=torch.float64) * 2  # |err| both sides of 1
    alpha, delta = 0.7, 1.0
    z1, z2 = q.clone().requires_grad_(), q.clone().requires_grad_()
    loss, metrics = cql_objective(z1, action, target, alpha=alpha, huber_delta=delta)
    data = z2.gather(-1, action.view(1, -1, 1).expand(n_critics, -1, 1)).squeeze(-1)
    td = (
        torch.nn.functional.huber_loss(data, target.expand_as(data), reduction="none", delta=delta)
        .mean(1)
        .sum()
    )
    penalty = conservative_penalty(z2, action)
    ref = td + alpha * penalty
    assert ((data - target).abs() > delta).any() and ((data - target).abs() < delta).any()
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(metrics["td_loss"], td.detach())
    torch.testing.assert_close(metrics["cql_penalty"], penalty.detach())
    torch.testing.assert_close(metrics["q_data"], data.detach().mean())
    (loss * 1.3).backward()
    (ref * 1.3).backward()
    torch.testing.assert_close(z1.grad, z2.grad)
    assert torch.autograd.gradcheck(
        lambda x: cql_objective(x, action, target, alpha=alpha, huber_delta=delta)[0],
        (q.clone().requires_grad_(),),
    )


def test_cql_is_conservative_on_unseen_actions() -> None:
    t = mdp_log(NO_ACTION_2)
    spec = ProblemSpec.from_transitions(t)
    base = DQNConfig(encoder=SMALL, lr=3e-3, gamma=GAMMA, tau=0.05, device="cpu")
    dqn, cql = base.create(spec), CQLConfig(**vars(base), alpha=1.0).create(spec)
    full_batch_training(dqn, t, 800)
    full_batch_training(cql, t, 800)
    q_dqn, q_cql = all_q(dqn, S), all_q(cql, S)
    unseen = (np.array([0, 1]), np.array([2, 2]))
    assert np.all(q_cql[unseen] < q_dqn[unseen] - 1.0), (q_cql, q_dqn)
    assert np.all(q_cql[:2].argmax(1) != 2)  # the greedy policy stays on the data
    # alpha = 0 is DQN exactly
    zero = CQLConfig(**vars(base), alpha=0.0).create(spec)
    full_batch_training(zero, t, 50)
    again = base.create(spec)
    full_batch_training(again, t, 50)
    np.testing.assert_array_equal(all_q(zero, S), all_q(again, S))


def test_reward_scale_modes() -> None:
    t = dataclasses.replace(
        tiny_transitions(4),
        reward=np.array([1.0, 2.0, 3.0, -1.0], dtype=np.float32),
        episode_id=np.array([0, 0, 1, 1]),  # returns 3 and 2
    )
    assert reward_scale(t, "none") == 1.0
    assert reward_scale(t, "std") == pytest.approx(1 / np.std([1.0, 2.0, 3.0, -1.0]))
    assert reward_scale(t, "return_range") == pytest.approx(1000.0)
    flat = dataclasses.replace(t, reward=np.ones(4, dtype=np.float32))
    assert reward_scale(flat, "std") == 1.0 and reward_scale(flat, "return_range") == 1.0
    with pytest.raises(ConfigError):
        reward_scale(t, "bogus")  # type: ignore[arg-type]
    scaler = RewardScale("std")
    scaler.fit(t)
    scaler.fit(flat)  # fitted once: kept
    r = torch.tensor([1.0, -2.0])
    torch.testing.assert_close(scaler(r), r / float(np.std(t.reward)))
    scaler.fit(flat, refit=True)
    torch.testing.assert_close(scaler(r), r)


# -- the contract ----------------------------------------------------------------------------
def contract_configs(encoder: EncoderConfig) -> list[AgentConfig]:
    dqn = DQNConfig(encoder=encoder, device="cpu", batch_size=8, seed=3)
    fused = dqn.replace(
        n_critics=2,
        tau=1.0,
        target_update_interval=2,
        dense_max_actions=2,
        reward_scale_mode="return_range",
        max_grad_norm=1.0,
    )
    return [
        BCConfig(encoder=encoder, device="cpu", batch_size=8, seed=3, label_smoothing=0.1),
        dqn,
        fused,
        CQLConfig(**vars(dqn.replace(double=False))),
    ]


@pytest.mark.parametrize("encoder", [SMALL, TRANSFORMER], ids=["mlp", "transformer"])
def test_contract_fit_act_save_load(encoder: EncoderConfig, tmp_path: Path) -> None:
    t = tiny_transitions()
    spec = ProblemSpec.from_transitions(t)
    k = encoder.history_len if encoder.uses_history else 0
    batch = DeviceReplay(t, 16, history_len=k, seed=1).sample()
    for i, cfg in enumerate(contract_configs(encoder)):
        agent = cfg.create(spec)
        before = {n: p.clone() for n, p in agent.state_dict().items()}
        result = agent.fit(t, 3, tmp_path / f"run{i}", trainer=QUIET)
        assert {"loss", "updates_per_s"} <= set(result.metrics)
        assert any(not torch.equal(before[n], p) for n, p in agent.state_dict().items())
        loaded = Agent.load(agent.save(tmp_path / f"m{i}"))
        assert type(loaded) is type(agent) and loaded.config == cfg
        agent.eval()
        actions = agent.act(batch.obs, batch.history)
        assert actions.shape == (16,) and actions.dtype == torch.int64
        assert torch.equal(loaded.act(batch.obs, batch.history), actions)
        scores = agent.scores(batch.obs, batch.history)
        torch.testing.assert_close(loaded.scores(batch.obs, batch.history), scores, rtol=0, atol=0)
        attention = loaded.attention(batch.obs, batch.history)
        assert (attention is not None) == encoder.uses_history
        twin = cfg.create(spec)
        twin.fit(t, 3, trainer=QUIET)
        for (name, x), y in zip(
            agent.state_dict().items(), twin.state_dict().values(), strict=True
        ):
            assert torch.equal(x, y), (type(agent).__name__, name)


def test_dqn_target_updates_and_reward_buffers(tmp_path: Path) -> None:
    t = tiny_transitions()
    spec = ProblemSpec.from_transitions(t)
    hard = DQNConfig(encoder=SMALL, device="cpu", batch_size=8, tau=1.0, target_update_interval=1)
    agent = hard.create(spec)
    assert isinstance(agent, DQNAgent)
    agent.fit(t, 2, trainer=QUIET)
    for x, y in zip(agent.q.parameters(), agent.q_target.parameters(), strict=True):
        assert torch.equal(x, y)
    norm = hard.replace(target_update_interval=3)
    agent = norm.create(spec)
    assert isinstance(agent, DQNAgent)
    agent.fit(t, 2, trainer=QUIET)  # no target update yet: the target is the initial network
    assert not torch.equal(next(agent.q.parameters()), next(agent.q_target.parameters()))
    loaded = Agent.load(agent.save(tmp_path / "m"))
    assert isinstance(loaded, DQNAgent) and int(loaded.n_updates) == 2
    assert float(loaded.rewards.scale) == pytest.approx(1 / float(t.reward.std()), rel=1e-4)
    # loading weights also loads the update count: 1 more update after loading a fresh agent
    # is update 1 (no target update), not update 3
    agent.load_state_dict(norm.create(spec).state_dict())
    agent.fit(t, 1, trainer=QUIET)
    assert int(agent.n_updates) == 1
    assert not torch.equal(next(agent.q.parameters()), next(agent.q_target.parameters()))


def test_dqn_resume_is_exact_across_target_updates(tmp_path: Path) -> None:
    t = tiny_transitions()
    cfg = DQNConfig(encoder=SMALL, device="cpu", batch_size=8, tau=1.0, target_update_interval=3)
    full = cfg.create(ProblemSpec.from_transitions(t))
    full.fit(t, 7, tmp_path / "full", trainer=QUIET)
    cfg.create(ProblemSpec.from_transitions(t)).fit(t, 4, tmp_path / "cut", trainer=QUIET)
    resumed = cfg.create(ProblemSpec.from_transitions(t))
    resumed.fit(t, 7, tmp_path / "cut", resume=True, trainer=QUIET)
    for (name, x), y in zip(full.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(x, y), name


def test_configs_validate() -> None:
    with pytest.raises(ConfigError):
        DQNConfig(tau=0.0)
    with pytest.raises(ConfigError):
        DQNConfig(reward_scale_mode="bogus")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        CQLConfig(alpha=-1.0)
    with pytest.raises(ConfigError):
        BCConfig(label_smoothing=1.0)
    assert isinstance(BCConfig(device="cpu").create(ProblemSpec(5)), BCAgent)


# -- opt-in bf16 autocast ----------------------------------------------------------------------
def test_bf16_precision_trains_dqn_close_to_value_iteration() -> None:
    t = mdp_log(ALL_PAIRS)
    cfg = DQNConfig(encoder=SMALL, lr=3e-3, gamma=GAMMA, tau=0.05, precision="bf16", device="cpu")
    agent = cfg.create(ProblemSpec.from_transitions(t))
    full_batch_training(agent, t, 1500)
    assert all(p.dtype == torch.float32 for p in agent.parameters())  # weights stay float32
    np.testing.assert_allclose(all_q(agent, S), q_star(), atol=0.1)  # bf16 activations


@pytest.mark.parametrize("algo", ["bc", "cql", "iql"])
def test_bf16_precision_updates_every_offline_agent(algo: str) -> None:
    from noetik.agents.core.base import ALGOS

    t = mdp_log(ALL_PAIRS)
    agent = ALGOS[algo](encoder=SMALL, precision="bf16", device="cpu").create(
        ProblemSpec.from_transitions(t)
    )
    full_batch_training(agent, t, 3)
    metrics = agent.update(DeviceReplay(t, len(t)).batch(torch.arange(len(t))))
    assert all(bool(torch.isfinite(v).all()) for v in metrics.values()), metrics
    assert all(p.dtype == torch.float32 for p in agent.parameters())
    assert agent.scores(torch.zeros(2, 128)).dtype == torch.float32


def test_precision_is_validated() -> None:
    with pytest.raises(ConfigError):
        DQNConfig(precision="fp16")  # type: ignore[arg-type]
