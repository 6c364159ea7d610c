"""The agent contract, parametrized over EVERY registered algorithm: fit a few steps, act,
save, load (same actions), the same seed gives the same weights, and the declared
capabilities hold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

import noetik.envs  # noqa: F401
from noetik.agents import ALGOS, Agent, AgentConfig, ProblemSpec
from noetik.agents.core.trainer import TrainerConfig
from noetik.agents.networks.encoders import EncoderConfig
from noetik.errors import ConfigError
from noetik.evaluation.oracle import GreedyConfig
from tests.test_agent_core import tiny_transitions

QUIET = TrainerConfig(progress=False, tensorboard=False, log_every=1)
SMALL = EncoderConfig(hidden=(16, 16))


def _problem(algo: str) -> tuple[AgentConfig, ProblemSpec, Any, np.ndarray]:
    """(config, spec, training data, observations to act on) for ``algo``."""
    cls = ALGOS[algo]
    caps = cls.agent_class.capabilities
    if caps.online:
        envs = gym.make_vec("noetik/RECEnv-v0", num_envs=4, vectorization_mode="vector_entry_point")
        config: AgentConfig = cls(device="cpu", seed=7, encoder=SMALL, n_steps=4, batch_size=8)
        obs = envs.reset(seed=1)[0]
        return config, ProblemSpec.from_env(envs), envs, obs
    if cls is GreedyConfig:
        envs = gym.make_vec(
            "noetik/KuaiRand-v0", num_envs=3, vectorization_mode="vector_entry_point"
        )
        obs = envs.reset(seed=1)[0]
        return GreedyConfig.for_env(envs, device="cpu"), ProblemSpec.from_env(envs), None, obs
    t = tiny_transitions()
    config = cls(device="cpu", seed=7, encoder=SMALL, batch_size=16)
    data = t if caps.offline else None
    return config, ProblemSpec.from_transitions(t), data, t.obs[:5].astype(np.float32)


def _fit(config: AgentConfig, spec: ProblemSpec, data: Any) -> Agent:
    agent = config.create(spec)
    if data is not None:
        agent.fit(data, steps=3, trainer=QUIET)
    return agent


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_fit_act_save_load(algo: str, tmp_path: Path) -> None:
    config, spec, data, obs = _problem(algo)
    agent = _fit(config, spec, data)
    obs_t = torch.as_tensor(obs)
    actions = agent.act(obs_t)
    assert actions.shape == (len(obs),)
    assert actions.dtype == torch.int64
    assert int(actions.min()) >= 0 and int(actions.max()) < spec.n_actions
    scores = agent.scores(obs_t)
    assert scores.shape == (len(obs), spec.n_actions)
    agent.save(tmp_path / algo)
    loaded = Agent.load(tmp_path / algo, device="cpu")
    assert type(loaded) is type(agent)
    assert torch.equal(loaded.act(obs_t), actions)
    torch.testing.assert_close(loaded.scores(obs_t), scores, rtol=0, atol=0)


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_same_seed_same_weights(algo: str) -> None:
    config, spec, data, _ = _problem(algo)
    first = _fit(config, spec, data).state_dict()
    config, spec, data, _ = _problem(algo)
    second = _fit(config, spec, data).state_dict()
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_another_seed_other_weights(algo: str) -> None:
    config, spec, data, _ = _problem(algo)
    agent = _fit(config, spec, data)
    if not any(p.requires_grad for p in agent.parameters()):
        pytest.skip(f"{algo} has no learned weights")
    other = _fit(config.replace(seed=8), spec, data).state_dict()
    assert any(not torch.equal(v, other[k]) for k, v in agent.state_dict().items())


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_declared_capabilities_hold(algo: str) -> None:
    config, spec, data, obs = _problem(algo)
    agent = _fit(config, spec, data).eval()
    caps = agent.capabilities
    own = [k for k in type(agent).__mro__ if k is not Agent and "capabilities" in vars(k)]
    assert own, f"{algo} does not declare its capabilities"
    obs_t = torch.as_tensor(obs)
    b, n = len(obs), spec.n_actions
    scores = agent.scores(obs_t)
    assert caps.learned == any(p.requires_grad for p in agent.parameters())
    assert not (caps.online and caps.offline)
    if caps.q_values:
        q_all = agent.q_values(obs_t)
        assert q_all.shape == (b, n) and bool(torch.isfinite(q_all).all())
        actions = torch.arange(b) % n
        q = agent.q_values(obs_t, None, actions)
        assert q.shape == (b,) and q.dtype == torch.float32 and bool(torch.isfinite(q).all())
        torch.testing.assert_close(q, q_all[torch.arange(b), actions])
    else:
        with pytest.raises(ConfigError, match="Q values"):
            agent.q_values(obs_t)
    if caps.q_scores:
        assert caps.q_values
        torch.testing.assert_close(scores, agent.q_values(obs_t))
    if caps.policy_logits:
        assert bool(torch.isfinite(scores).all())
        torch.testing.assert_close(torch.softmax(scores, -1).sum(-1), torch.ones(b))
        assert torch.equal(agent.act(obs_t), scores.argmax(-1))
        torch.testing.assert_close(agent.policy_log_probs(obs_t), torch.log_softmax(scores, -1))
    else:
        with pytest.raises(ConfigError, match="policy logits"):
            agent.policy_log_probs(obs_t)
    if caps.learned:  # trained above on what it declares; refuses the other kind of data
        other = tiny_transitions() if caps.online else _envs()
        with pytest.raises(ConfigError):
            agent.make_source(other)


def _envs() -> Any:
    return gym.make_vec("noetik/RECEnv-v0", num_envs=2, vectorization_mode="vector_entry_point")
