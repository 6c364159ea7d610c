"""Engagement versus interpretability: the regularisers by hand, and training with them."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from noetik.agents.algorithms.bc import BCConfig
from noetik.agents.algorithms.iql import (
    IQLAgent,
    IQLConfig,
    _cat_history,
    awr_weights,
    expectile_loss,
)
from noetik.agents.algorithms.ppo import PPOConfig
from noetik.agents.core.base import Agent, ProblemSpec
from noetik.agents.core.batches import Batch, DeviceReplay
from noetik.agents.core.target import soft_update
from noetik.agents.networks.encoders import EncoderConfig, History
from noetik.agents.regularisers.terms import (
    InterpretabilityConfig,
    agreement_loss,
    attention_entropy,
    attention_rollout,
    attribution_stability,
    input_attribution,
    mean_attention_entropy,
    query_attention,
)
from noetik.data.dataset import load_kuairand
from noetik.data.transitions import build_transitions
from noetik.errors import ConfigError
from tests.test_agent_core import tiny_transitions
from tests.test_online_agents import Bandit

TRANSFORMER = EncoderConfig(kind="transformer", d_model=16, n_heads=2, n_layers=2, history_len=5)
LOG4 = math.log(4.0)

# -- 1. the terms on hand-made tensors ----------------------------------------------------------


def test_attention_entropy_by_hand() -> None:
    attn = torch.tensor(
        [
            [0.1, 0.1, 0.1, 0.1, 0.3, 0.3],  # uniform over the 4 valid positions -> log 4
            [0.0, 0.0, 1.0, 0.0, 0.0, 0.0],  # one-hot -> 0
            [0.2, 0.2, 0.2, 0.2, 0.1, 0.1],  # no valid position: left out of the mean
        ]
    )
    mask = torch.tensor([[True] * 4 + [False] * 2, [True] * 6, [False] * 6])
    torch.testing.assert_close(attention_entropy(attn, mask), torch.tensor(LOG4 / 2))
    torch.testing.assert_close(attention_entropy(attn[:1], mask[:1]), torch.tensor(LOG4))
    torch.testing.assert_close(attention_entropy(attn[1:2], mask[1:2]), torch.tensor(0.0))
    # (B, L, H, K): layer 0 uniform over 4, layer 1 one-hot -> mean over layers log(4) / 2
    per_layer = torch.stack([torch.full((4,), 0.25), torch.tensor([0.0, 1.0, 0.0, 0.0])])
    torch.testing.assert_close(
        attention_entropy(per_layer[None, :, None], torch.ones(1, 4, dtype=torch.bool)),
        torch.tensor(LOG4 / 2),
    )


def test_query_attention_and_rollout_by_hand() -> None:
    w = torch.tensor([[1.0, 0.0], [0.5, 0.5]])  # T = 2: one history token, then the query
    weights = w.expand(1, 1, 1, 2, 2)  # (L=1, B=1, H=1, T, T)
    torch.testing.assert_close(query_attention(weights), torch.tensor([[[[0.5]]]]))
    # Ã = ½ W + ½ I = [[1, 0], [0.25, 0.75]]; Ã² has query row [0.4375, 0.5625]
    torch.testing.assert_close(attention_rollout(weights), torch.tensor([[0.25]]))
    two = torch.cat([weights, weights])
    torch.testing.assert_close(attention_rollout(two), torch.tensor([[0.4375]]))


def test_agreement_loss_by_hand() -> None:
    mask = torch.tensor([[True, True, False], [True, True, True], [True, True, True]])
    attn = torch.tensor([[0.5, 0.5, 0.9], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    attr = torch.tensor([[-2.0, 2.0, 7.0], [0.0, 3.0, 1.0], [1.0, 1.0, 0.0]])
    # row 0: |attr| = (2, 2) on the valid positions, proportional -> 0 (position 2 masked)
    # row 1: disjoint supports -> 1; row 2: cos((1, 0), (1, 1)) = 1 / sqrt(2)
    per_row = [0.0, 1.0, 1.0 - 1.0 / math.sqrt(2.0)]
    for i, expected in enumerate(per_row):
        got = agreement_loss(attn[i : i + 1], attr[i : i + 1], mask[i : i + 1])
        torch.testing.assert_close(got, torch.tensor(expected))
    torch.testing.assert_close(agreement_loss(attn, attr, mask), torch.tensor(sum(per_row) / 3))


def test_stability_of_a_linear_model() -> None:
    g = torch.Generator().manual_seed(0)
    w = torch.randn(4, 3, generator=g)  # f(x) = x W: gradient W[:, a], gradient x input x * W
    obs, actions = torch.randn(5, 4, generator=g), torch.tensor([0, 1, 2, 0, 1])
    noise = 0.1 * torch.randn(5, 4, generator=g)

    def score(x: Tensor) -> Tensor:
        return x @ w

    torch.testing.assert_close(input_attribution(score, obs, actions), obs * w.T[actions])
    zero = attribution_stability(score, obs, actions, torch.zeros_like(obs))
    assert float(zero.detach()) == 0.0
    assert float(attribution_stability(score, obs, actions, noise, kind="gradient").detach()) == 0
    expected = (noise * w.T[actions]).square().sum(-1).mean()  # x*w moves by noise*w
    torch.testing.assert_close(attribution_stability(score, obs, actions, noise), expected)


def test_stability_of_a_quadratic_by_hand_and_its_gradient() -> None:
    # f_a(x) = sum_i c_ai x_i^2: grad 2 c x, grad x input 2 c x^2
    c = torch.tensor([[1.0, 0.5], [3.0, 3.0]], requires_grad=True)  # (A, D), action 0 used
    obs, noise, actions = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.5, -1.0]]), torch.tensor([0])

    def score(x: Tensor) -> Tensor:
        return x.square() @ c.T

    # phi(x) = 2 (1, .5) (1, 4) = (2, 4); phi(x + d) = 2 (1, .5) (2.25, 1) = (4.5, 1)
    s = attribution_stability(score, obs, actions, noise)
    torch.testing.assert_close(s, torch.tensor(2.5**2 + 3.0**2))
    # gradients (2, 2) -> (3, 1): squared change 1 + 1
    grad_kind = attribution_stability(score, obs, actions, noise, kind="gradient")
    torch.testing.assert_close(grad_kind, torch.tensor(2.0))
    # double backprop: S = sum_i (2 c_i (2 x_i d_i + d_i^2))^2, dS/dc_i = 8 c_i (2 x d + d^2)^2
    (grad,) = torch.autograd.grad(s, c)
    torch.testing.assert_close(grad, torch.tensor([[8 * 1.25**2, 8 * 0.5 * 9.0], [0.0, 0.0]]))


def test_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="stability"):
        InterpretabilityConfig(stability=-1.0)
    with pytest.raises(ConfigError, match="samples"):
        InterpretabilityConfig(samples=0)
    with pytest.raises(ConfigError, match="transformer"):
        BCConfig(interpretability=InterpretabilityConfig(attention_entropy=0.1)).create(
            ProblemSpec(7, 128)
        )
    cfg = IQLConfig(interpretability=InterpretabilityConfig(stability=0.5, samples=8))
    assert IQLConfig.from_dict(cfg.to_dict()) == cfg


# -- 2. weights 0: exactly the plain update; weights > 0: reported, seeded, resumable ------------


def _batches(n: int) -> tuple[list[Batch], ProblemSpec]:
    t = tiny_transitions(80)
    replay = DeviceReplay(t, 16, history_len=TRANSFORMER.history_len, seed=3)
    return [replay.sample() for _ in range(n)], ProblemSpec.from_transitions(t)


def _same(a: Agent, b: Agent) -> bool:
    sb = b.state_dict()
    return a.state_dict().keys() == sb.keys() and all(
        torch.equal(v, sb[k]) for k, v in a.state_dict().items()
    )


def _bc_plain_step(agent: Agent, batch: Batch) -> None:
    """The behaviour-cloning step written out: cross-entropy, one AdamW step."""
    logits = agent.head(agent.encoder(batch.obs, batch.history))
    loss = F.cross_entropy(logits, batch.action)
    agent.optimizers["policy"].zero_grad(set_to_none=True)
    loss.backward()
    agent.optimizers["policy"].step()


def _iql_plain_step(agent: IQLAgent, b: Batch) -> None:
    """The IQL step written out from the formulas (V, then π and Q, then Polyak)."""
    cfg = agent.config
    with torch.no_grad():
        q_hat = agent.q_target(b.obs, b.history, b.action).amin(dim=0)
    v_loss = expectile_loss(q_hat - agent.v_net(b.obs, b.history), cfg.expectile).mean()
    agent._step(("value",), v_loss)
    with torch.no_grad():
        both = agent.v_net(torch.cat([b.obs, b.next_obs]), _cat_history(b.history, b.next_history))
        v_now, v_next = both.chunk(2)
        weight = awr_weights(q_hat - v_now, cfg.temperature, cfg.weight_clip)
        target = agent.reward_scale * b.reward + cfg.gamma * (1.0 - b.done) * v_next
    log_prob = -F.cross_entropy(
        agent.actor_head(agent.encoder(b.obs, b.history)), b.action, reduction="none"
    )
    q_loss = (agent.q_net(b.obs, b.history, b.action) - target).square().mean(dim=1).sum()
    agent._step(("actor", "q"), -(weight * log_prob).mean() + q_loss)
    soft_update(agent.q_target.parameters(), agent.q_net.parameters(), cfg.tau)


@pytest.mark.parametrize("algo", ["bc", "iql"])
def test_zero_weights_train_exactly_like_the_plain_update(algo: str) -> None:
    batches, spec = _batches(4)
    config = (BCConfig if algo == "bc" else IQLConfig)(device="cpu", encoder=TRANSFORMER)
    assert not config.interpretability.enabled
    agent, plain = config.create(spec), config.create(spec)
    assert _same(agent, plain) and not any(k.startswith("interp") for k in agent.state_dict())
    for batch in batches:
        metrics = agent.update(batch)
        if algo == "bc":
            _bc_plain_step(plain, batch)
        else:
            assert isinstance(plain, IQLAgent)
            _iql_plain_step(plain, batch)
    assert not any(k.startswith("interp") for k in metrics)
    assert _same(agent, plain)


ALL_TERMS = InterpretabilityConfig(
    attention_entropy=0.3, stability=2.0, agreement=0.5, l1_state=0.01, samples=6
)


@pytest.mark.parametrize("algo", ["bc", "iql"])
def test_terms_are_reported_seeded_and_resumable(algo: str) -> None:
    batches, spec = _batches(4)
    config = (BCConfig if algo == "bc" else IQLConfig)(
        device="cpu", encoder=TRANSFORMER, interpretability=ALL_TERMS
    )
    agent = config.create(spec)
    metrics = [agent.update(b) for b in batches]
    last = metrics[-1]
    weighted = sum(w * float(last[f"interp_{k}"]) for k, w in ALL_TERMS.weights.items())
    assert float(last["interp_penalty"]) == pytest.approx(weighted, rel=1e-5)
    assert 0.0 < float(last["interp_attention_entropy"]) <= math.log(TRANSFORMER.history_len)
    assert float(last["interp_stability"]) > 0.0 and 0.0 <= float(last["interp_agreement"]) <= 2
    assert int(agent.state_dict()["interp.step"]) == 4
    # resume after 2 updates from the saved tensors: the same noise, the same weights
    first = config.create(spec)
    for b in batches[:2]:
        first.update(b)
    resumed = config.create(spec)
    resumed.load_state_tensors(first.state_tensors(), first.state_meta())
    for b in batches[2:]:
        resumed.update(b)
    assert _same(agent, resumed)
    other = config.replace(seed=1).create(spec)
    other.load_state_tensors(first.state_tensors(), first.state_meta())
    for b in batches[2:]:
        other.update(b)  # another seed draws other perturbations
    assert not _same(agent, other)


def test_ppo_reports_the_terms() -> None:
    env = Bandit(num_envs=4)
    interp = InterpretabilityConfig(stability=1.0, l1_state=0.1, samples=4)
    agent = PPOConfig(n_steps=4, batch_size=8, device="cpu", interpretability=interp).create(
        ProblemSpec.from_env(env)
    )
    out = agent.update(agent.make_source(env).sample())
    assert {"interp_stability", "interp_l1_state", "interp_penalty", "pg_loss"} <= out.keys()
    expected = float(out["interp_stability"]) + 0.1 * float(out["interp_l1_state"])
    assert float(out["interp_penalty"]) == pytest.approx(expected, rel=1e-5)


# -- 3. training with the entropy term sparsifies the attention ----------------------------------


def test_entropy_weight_lowers_the_attention_entropy_of_a_trained_bc() -> None:
    t = build_transitions(load_kuairand(None))
    spec = ProblemSpec.from_transitions(t)
    enc = EncoderConfig(kind="transformer", d_model=16, n_heads=2, n_layers=1, history_len=6)
    rows = torch.arange(0, len(t), len(t) // 256)[:256]
    result = {}
    for weight in (0.0, 0.1):
        interp = InterpretabilityConfig(attention_entropy=weight)
        agent = BCConfig(
            device="cpu", encoder=enc, batch_size=64, lr=3e-3, interpretability=interp
        ).create(spec)
        replay = agent.make_source(t)
        assert isinstance(replay, DeviceReplay)
        held = replay.batch(rows)
        for _ in range(200):
            agent.update(replay.sample())
        assert isinstance(held.history, History)
        result[weight] = mean_attention_entropy(agent.encoder, held.obs, held.history)
    # uniform attention over 6 positions is log 6 = 1.79; without the term it stays spread out
    assert result[0.0] > 1.0
    assert result[0.1] < 0.5 * result[0.0], result


def test_algorithms_without_the_terms_refuse_non_zero_weights() -> None:
    from noetik.agents import ALGOS
    from noetik.agents.regularisers.terms import InterpretabilityConfig
    from noetik.errors import ConfigError

    terms = InterpretabilityConfig(l1_state=0.1)
    for algo in ("dqn", "cql", "a2c"):
        with pytest.raises(ConfigError, match="only trained by IQL, BC and PPO"):
            ALGOS[algo](interpretability=terms)
    for algo in ("iql", "bc", "ppo"):
        assert ALGOS[algo](interpretability=terms).interpretability.enabled
