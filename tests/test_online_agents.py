"""PPO and A2C: GAE and n-step returns by hand, the clipped loss by hand, a bandit, the contract."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

import noetik.envs  # noqa: F401
from noetik.agents.algorithms.a2c import A2CConfig
from noetik.agents.algorithms.ppo import PPOConfig
from noetik.agents.core.base import Agent, ProblemSpec
from noetik.agents.core.trainer import TrainerConfig
from noetik.agents.fast.ppo_objective import ppo_losses
from noetik.agents.networks.encoders import EncoderConfig
from noetik.agents.onpolicy.rollout import ActorCriticAgent, Rollout, gae, nstep_returns

QUIET = TrainerConfig(progress=False, tensorboard=False, log_every=5)


class Bandit(VectorEnv):  # type: ignore[type-arg]
    """Contextual-free bandit: reward 1 for action ``best``; episodes of ``horizon`` steps."""

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.NEXT_STEP}  # noqa: RUF012

    def __init__(
        self, num_envs: int, n_actions: int = 5, obs_dim: int = 4, horizon: int = 3, best: int = 2
    ) -> None:
        self.num_envs, self.best, self.horizon, self.obs_dim = num_envs, best, horizon, obs_dim
        self.single_action_space = spaces.Discrete(n_actions)
        self.single_observation_space = spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.t = np.zeros(num_envs, dtype=np.int64)
        self.done = np.zeros(num_envs, dtype=bool)

    def _obs(self) -> np.ndarray:
        return self.np_random.standard_normal((self.num_envs, self.obs_dim)).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[Any, Any]:
        super().reset(seed=seed)
        self.t[:], self.done[:] = 0, False
        return self._obs(), {"autoreset": np.ones(self.num_envs, dtype=bool)}

    def step(self, actions: Any) -> tuple[Any, ...]:
        restart = self.done.copy()
        reward = np.where(restart, 0.0, (np.asarray(actions) == self.best).astype(np.float64))
        self.t = np.where(restart, 0, self.t + 1)
        term = (self.t >= self.horizon) & ~restart
        self.done = term
        return self._obs(), reward, term, np.zeros_like(term), {"autoreset": restart}


def _rollout(t_max: int = 4) -> Rollout:
    """Three envs, T = 4. Env 0: terminates at t=1, autoreset row at t=2. Env 1: truncated at
    t=0 (autoreset at t=1, its value 6 is V(final obs)), terminates at t=3. Env 2: no ends."""
    f = torch.tensor
    reward = f([[1.0, 1.0, 1.0], [2.0, 0.0, 1.0], [0.0, 3.0, 1.0], [1.0, 0.0, 1.0]])
    value = f([[1.0, 2.0, 1.0], [1.0, 6.0, 2.0], [3.0, 1.0, 3.0], [4.0, 1.0, 4.0]])
    term = f([[0, 0, 0], [1, 0, 0], [0, 0, 0], [0, 1, 0]]).bool()
    trunc = f([[0, 1, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]]).bool()
    valid = f([[1, 1, 1], [1, 0, 1], [0, 1, 1], [1, 1, 1]]).bool()
    zeros = torch.zeros(t_max, 3)
    return Rollout(
        obs=torch.zeros(t_max, 3, 2),
        action=zeros.long(),
        logp=zeros,
        value=value,
        reward=reward,
        terminated=term,
        truncated=trunc,
        valid=valid,
        last_value=f([5.0, 7.0, 8.0]),
    )


def test_gae_by_hand_with_interleaved_boundaries() -> None:
    adv, ret = gae(_rollout(), gamma=0.5, lam=0.5)
    expected = torch.tensor(
        [[0.75, 2.0, 1.140625], [1.0, 0.0, 0.5625], [0.0, 2.25, 0.25], [-0.5, -1.0, 1.0]]
    )
    torch.testing.assert_close(adv, expected)
    value = _rollout().value
    torch.testing.assert_close(ret, (expected + value) * _rollout().valid)


def test_nstep_returns_by_hand() -> None:
    r = _rollout()
    expected = torch.tensor([[2.0, 4.0, 2.25], [2.0, 0.0, 2.5], [0.0, 3.0, 3.5], [3.5, 0.0, 5.0]])
    torch.testing.assert_close(nstep_returns(r, gamma=0.5, n=2), expected)
    # n = 1 is the TD(0) target (GAE lambda = 0); n >= T the rollout's lambda = 1 return.
    torch.testing.assert_close(nstep_returns(r, 0.5, 1), gae(r, 0.5, 0.0)[1])
    torch.testing.assert_close(nstep_returns(r, 0.5, 10), gae(r, 0.5, 1.0)[1])


def test_ppo_clipped_loss_by_hand() -> None:
    logp = torch.log(torch.tensor([0.5, 0.225]))
    old = torch.log(torch.tensor([0.25, 0.25]))  # ratios 2.0 and 0.9
    args = {
        "advantage": torch.tensor([1.0, -1.0]),
        "value": torch.tensor([1.0, 0.0]),
        "old_value": torch.tensor([0.5, 0.5]),
        "returns": torch.tensor([2.0, 0.0]),
    }
    out = ppo_losses(logp, old, clip_coef=0.2, **args)
    # max(-A r, -A clip(r)) = [max(-2, -1.2), max(0.9, 0.9)] -> mean -0.15
    torch.testing.assert_close(out["pg_loss"], torch.tensor(-0.15))
    # clipped values [0.7, 0.3]: max([1, 0], [1.69, 0.09]) -> 0.5 * mean = 0.445
    torch.testing.assert_close(out["v_loss"], torch.tensor(0.445))
    kl = ((1.0 - math.log(2.0)) + (-0.1 - math.log(0.9))) / 2
    torch.testing.assert_close(out["approx_kl"], torch.tensor(kl))
    torch.testing.assert_close(out["clipfrac"], torch.tensor(0.5))
    unclipped = ppo_losses(logp, old, clip_coef=0.2, clip_vloss=False, **args)
    torch.testing.assert_close(unclipped["v_loss"], torch.tensor(0.25))


def _best_arm_prob(agent: Agent, env: Bandit) -> float:
    obs = torch.as_tensor(env._obs())
    with torch.no_grad():
        return float(torch.softmax(agent.scores(obs), -1)[:, env.best].mean())


@pytest.mark.parametrize(
    "config",
    [
        PPOConfig(n_steps=16, batch_size=32, lr=3e-3, ent_coef=0.0, device="cpu", update_epochs=4),
        A2CConfig(n_steps=8, lr=3e-3, ent_coef=0.0, device="cpu", norm_adv=True),
    ],
    ids=["ppo", "a2c"],
)
def test_solves_a_bandit(config: PPOConfig | A2CConfig) -> None:
    env = Bandit(num_envs=8)
    agent = config.create(ProblemSpec.from_env(env))
    assert _best_arm_prob(agent, env) < 0.3
    result = agent.fit(env, steps=60, trainer=QUIET)
    assert _best_arm_prob(agent, env) > 0.9
    assert result.metrics["episodes"] > 0 and result.metrics["episode_return"] > 2.0


@pytest.mark.parametrize("algo", ["ppo", "a2c"])
def test_contract_fit_act_save_load_and_seed(algo: str, tmp_path: Path) -> None:
    def make_env() -> Any:
        return gym.make_vec(
            "noetik/RECEnv-v0", num_envs=4, vectorization_mode="vector_entry_point", n_items=20
        )

    config = (PPOConfig(n_steps=8, batch_size=8) if algo == "ppo" else A2CConfig()).replace(
        device="cpu", anneal_updates=10
    )
    env = make_env()
    agent = config.create(ProblemSpec.from_env(env))
    agent.fit(env, steps=3, out_dir=tmp_path / "run", trainer=QUIET)
    assert isinstance(agent, ActorCriticAgent) and int(agent.n_updates) == 3
    lr = agent.optimizers["main"].param_groups[0]["lr"]
    assert lr == pytest.approx(config.lr * (1 - 2 / 10))
    obs = torch.randn(6, 5)
    loaded = Agent.load(tmp_path / "run" / "checkpoint")
    assert type(loaded) is type(agent)
    assert torch.equal(loaded.act(obs), agent.act(obs))
    agent.save(tmp_path / "saved")
    assert torch.equal(Agent.load(tmp_path / "saved").act(obs), agent.act(obs))
    again = config.create(ProblemSpec.from_env(env))
    again.fit(make_env(), steps=3, trainer=QUIET)
    for k, v in agent.state_dict().items():
        assert torch.equal(v, again.state_dict()[k]), k
    other = config.replace(seed=1).create(ProblemSpec.from_env(env))
    other.fit(make_env(), steps=3, trainer=QUIET)
    assert not torch.equal(other.head.linear.weight, agent.head.linear.weight)


def test_autoreset_rows_are_not_transitions() -> None:
    env = Bandit(num_envs=3, horizon=2)
    agent = PPOConfig(n_steps=7, device="cpu").create(ProblemSpec.from_env(env))
    rollout = agent.make_source(env).sample()
    # episodes of 2 steps then one autoreset row: valid pattern 1,1,0 repeating
    expected = torch.tensor([True, True, False] * 2 + [True])[:, None].expand(7, 3)
    assert torch.equal(rollout.valid, expected)
    assert torch.equal(
        rollout.terminated, torch.tensor([0, 1, 0] * 2 + [0]).bool()[:, None].expand(7, 3)
    )
    assert float(rollout.reward[~rollout.valid].abs().sum()) == 0.0


class Chain(gym.Env):  # type: ignore[type-arg]
    """A single env: reward 1 per step, observation = step count, terminates after 2 steps."""

    action_space = spaces.Discrete(5)
    observation_space = spaces.Box(-np.inf, np.inf, (4,), np.float32)

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[Any, Any]:
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(4, np.float32), {}

    def step(self, action: Any) -> tuple[Any, ...]:
        self.t += 1
        return np.full(4, self.t, np.float32), 1.0, self.t >= 2, False, {}


def test_autoreset_rows_of_a_gymnasium_sync_vector_env() -> None:
    # Gymnasium's SyncVectorEnv (next-step autoreset) reports no info["autoreset"]: the
    # restarted rows must come from the previous step's terminated | truncated
    env = gym.vector.SyncVectorEnv([Chain for _ in range(3)])
    agent = PPOConfig(n_steps=7, batch_size=4, device="cpu").create(ProblemSpec.from_env(env))
    rollout = agent.make_source(env).sample()
    expected = torch.tensor([True, True, False] * 2 + [True])[:, None].expand(7, 3)
    assert torch.equal(rollout.valid, expected)
    assert torch.equal(rollout.obs[2::3, :, 0], torch.full((2, 3), 2.0))  # final observations
    assert float(rollout.reward[~rollout.valid].abs().sum()) == 0.0
    assert float(rollout.reward.sum()) == 15.0
    assert rollout.episodes is not None and float(rollout.episodes) == 6.0
    assert rollout.episode_return is not None and float(rollout.episode_return) == 2.0
    assert torch.isfinite(agent.update(rollout)["loss"])


def test_ppo_transformer_reads_history_from_info(sim_dir: str) -> None:
    env = gym.make_vec(
        "noetik/KuaiRand-v0",
        num_envs=4,
        vectorization_mode="vector_entry_point",
        sim_dir=sim_dir,
        return_history=True,
    )
    enc = EncoderConfig(kind="transformer", d_model=16, n_heads=2, n_layers=1, history_len=4)
    agent = PPOConfig(n_steps=12, batch_size=16, encoder=enc, device="cpu").create(
        ProblemSpec.from_env(env)
    )
    source = agent.make_source(env)
    rollout = source.sample()
    assert rollout.history is not None and rollout.history.items.shape == (12, 4, 4)
    pool = env.unwrapped.simulator.item_model.pool
    items = rollout.history.items[rollout.history.mask]
    assert int(items.max()) <= len(pool)  # action indices (padding id for non-pool past items)
    shown = rollout.action[:-1][rollout.valid[1:] & rollout.valid[:-1]]
    newest = rollout.history.items[1:, :, -1][rollout.valid[1:] & rollout.valid[:-1]]
    assert torch.equal(shown, newest)  # the previous action is the newest history item
    metrics = agent.update(rollout)
    assert torch.isfinite(metrics["loss"])


@pytest.mark.parametrize("algo", ["ppo", "a2c"])
def test_bf16_precision_solves_a_bandit(algo: str) -> None:
    # the opt-in bf16 autocast (update forward passes only; acting stays float32)
    config = (
        PPOConfig(n_steps=16, batch_size=32, update_epochs=4)
        if algo == "ppo"
        else A2CConfig(n_steps=8, norm_adv=True)
    )
    env = Bandit(num_envs=8)
    agent = config.replace(lr=3e-3, ent_coef=0.0, precision="bf16", device="cpu").create(
        ProblemSpec.from_env(env)
    )
    agent.fit(env, steps=60, trainer=QUIET)
    assert _best_arm_prob(agent, env) > 0.9
    assert all(p.dtype == torch.float32 for p in agent.parameters())
