"""`noetik.agents.fast.threads`: the on-policy agents' thread count, applied and restored."""

from __future__ import annotations

from typing import ClassVar

import gymnasium as gym
import pytest
import torch

from noetik.agents import ProblemSpec
from noetik.agents.algorithms.a2c import A2CConfig
from noetik.agents.algorithms.ppo import PPOConfig
from noetik.agents.fast.linear import MIN_MACS
from noetik.agents.fast.threads import auto_threads, intra_op_threads, largest_product
from noetik.agents.networks.encoders import EncoderConfig
from noetik.errors import ConfigError

CPU = torch.device("cpu")


def test_largest_product_and_auto_rule() -> None:
    net = torch.nn.Sequential(torch.nn.Linear(128, 64), torch.nn.Linear(64, 1000))
    assert largest_product(net, 64) == 64 * 64 * 1000
    assert auto_threads(net, 64, CPU) == 1  # 4.1M multiply-adds: one thread
    rows = -(-MIN_MACS // (64 * 1000))
    assert auto_threads(net, rows, CPU) == 0  # large enough to keep torch's threads
    assert auto_threads(net, 64, torch.device("meta")) == 0  # not a CPU network
    assert largest_product(torch.nn.ReLU(), 64) == 0


def test_intra_op_threads_restores_the_setting() -> None:
    before = torch.get_num_threads()
    with intra_op_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), intra_op_threads(1):
        raise RuntimeError("restored even on errors")
    assert torch.get_num_threads() == before
    with intra_op_threads(0):
        assert torch.get_num_threads() == before


class _ThreadProbe(gym.Env[object, int]):
    """A one-state env that records torch's thread count at every step."""

    seen: ClassVar[list[int]] = []

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (8,))
        self.action_space = gym.spaces.Discrete(5)

    def reset(self, *, seed: int | None = None, options: object = None) -> tuple[object, dict]:
        super().reset(seed=seed)
        return self.observation_space.sample() * 0, {}

    def step(self, action: int) -> tuple[object, float, bool, bool, dict]:
        _ThreadProbe.seen.append(torch.get_num_threads())
        return self.observation_space.sample() * 0, 1.0, False, False, {}


@pytest.mark.parametrize("cls", [PPOConfig, A2CConfig])
def test_small_agents_roll_out_and_update_on_one_thread(cls: type) -> None:
    env = gym.vector.SyncVectorEnv([_ThreadProbe])
    config = cls(n_steps=8, batch_size=4, encoder=EncoderConfig(kind="mlp", hidden=(8,)))
    agent = config.create(ProblemSpec.from_env(env))
    assert agent.intra_op_threads == 1
    _ThreadProbe.seen = []
    in_forward: list[int] = []  # 8 rollout steps, then the update
    agent.encoder.register_forward_pre_hook(lambda *_: in_forward.append(torch.get_num_threads()))
    with intra_op_threads(2):  # the caller's setting, restored after each call
        agent.update(agent.make_source(env).sample())
        assert torch.get_num_threads() == 2
    assert _ThreadProbe.seen == [1] * 8
    assert len(in_forward) > 8 and set(in_forward) == {1}
    fixed = cls(n_steps=8, batch_size=4, threads=-1, encoder=EncoderConfig(kind="mlp", hidden=(8,)))
    assert fixed.create(ProblemSpec.from_env(env)).intra_op_threads == -1
    with pytest.raises(ConfigError, match="threads must be >= -1"):
        cls(threads=-2)


def test_sequence_threads_policy() -> None:
    """Recurrent networks on the CPU: one thread whatever the rows; others follow auto_threads."""
    from noetik.agents.fast.threads import sequence_threads

    gru = torch.nn.GRU(8, 32)
    assert sequence_threads(gru, 10**9, CPU, recurrent=True) == 1
    assert sequence_threads(gru, 10**9, CPU, recurrent=False) == 0  # large: torch's setting
    assert sequence_threads(gru, 4, CPU, recurrent=False) == 1
    assert sequence_threads(gru, 4, torch.device("meta"), recurrent=True) == 0
