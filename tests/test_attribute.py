"""Attributions with known answers: hand-built linear/quadratic/additive networks, and IG
completeness (sum of attributions = target(x) - target(baseline)) on the real agents."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from noetik.agents.algorithms.bc import BCConfig
from noetik.agents.algorithms.dqn import DQNConfig
from noetik.agents.algorithms.iql import IQLConfig
from noetik.agents.core.base import Agent, AgentConfig, Capabilities, ProblemSpec
from noetik.agents.networks.encoders import EncoderConfig, History
from noetik.data.state_layout import STATE_SLICES
from noetik.data.transitions import ItemVocab
from noetik.errors import ConfigError
from noetik.explain.attributions import attribute
from noetik.simulators.kuairand.examples import HEADS, ItemTable
from noetik.simulators.kuairand.model import FittedSimulator, ResponseModelConfig, ResponseNet

A, K, D = 6, 4, 128


class AdditiveEncoder(nn.Module):
    """A 'history encoder' (has ``uses_history`` and ``item_emb``) with fixed weights."""

    uses_history = True

    def __init__(self, d: int = 3) -> None:
        super().__init__()
        self.item_emb = nn.Embedding(A + 1, d, padding_idx=A)
        with torch.no_grad():
            self.item_emb.weight.copy_(torch.arange((A + 1) * d).view(A + 1, d) / 10.0 - 1.0)
            self.item_emb.weight[A] = 0.0


class AdditiveAgent(Agent):
    """``Q(s, a) = (a + 1) (w·s + sum_k mask_k (emb_k·u + symlog(signals_k)·v + g log1p(gap_k)))``.

    Linear in the state and in every history input as the encoders read them (item embedding,
    symlog signals, log1p gaps), so IG with a zero baseline is exact and each position's
    attribution is its term.
    """

    capabilities = Capabilities(q_values=True, q_scores=True)

    def __init__(self, w: Tensor) -> None:
        super().__init__(AgentConfig(device="cpu"), ProblemSpec(A, D))
        self.encoder = AdditiveEncoder()
        self.w = nn.Parameter(w.clone())
        self.register_buffer("u", torch.tensor([1.0, -2.0, 0.5]))
        self.register_buffer("v", torch.linspace(-1.0, 1.0, 12))
        self.g = 0.3

    def position_terms(self, h: History) -> Tensor:
        """(B, K) each position's contribution to Q of action 0."""
        emb = self.encoder.item_emb(h.items.clamp(0, A))
        signals = torch.sign(h.signals) * torch.log1p(h.signals.abs())
        terms = emb @ self.u + signals @ self.v + self.g * torch.log1p(h.gap_s)
        return terms * h.mask

    def q_values(
        self, obs: Tensor, history: History | None = None, actions: Tensor | None = None
    ) -> Tensor:
        base = obs @ self.w
        if history is not None:
            base = base + self.position_terms(history).sum(1)
        if actions is not None:
            return base * (actions + 1.0)
        return base[:, None] * torch.arange(1.0, A + 1.0)

    def scores(self, obs: Tensor, history: History | None = None) -> Tensor:
        return self.q_values(obs, history)


def make_history(b: int = 3, seed: int = 0) -> History:
    """B histories of K positions; row 0 has 2 padding positions, row 1 one."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(b, K, dtype=torch.bool)
    mask[0, :2] = False
    mask[1, 0] = False
    items = torch.randint(0, A, (b, K), generator=g).masked_fill(~mask, A)
    signals = torch.rand(b, K, 12, generator=g) * mask[..., None]
    gaps = torch.rand(b, K, generator=g) * 500 * mask
    return History(items, signals, gaps, mask)


def test_linear_network_known_values() -> None:
    torch.manual_seed(0)
    w, obs = torch.randn(D), torch.randn(2, D)
    agent = AdditiveAgent(w)
    actions = torch.tensor([0, 2])
    scale = np.array([[1.0], [3.0]])
    ig = attribute(agent, obs, actions=actions, n_steps=8)
    expected = scale * (w * obs).numpy()
    np.testing.assert_allclose(ig.state, expected, rtol=1e-5, atol=1e-6)
    sal = attribute(agent, obs, actions=actions, method="saliency")
    np.testing.assert_allclose(sal.state, scale * np.abs(w.numpy()), rtol=1e-6)
    ixg = attribute(agent, obs, actions=actions, method="input_x_gradient")
    np.testing.assert_allclose(ixg.state, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ig.target, scale[:, 0] * (obs @ w).numpy(), rtol=1e-5)
    np.testing.assert_allclose(ig.baseline_target, 0.0, atol=1e-7)
    assert ig.history is None and ig.actions.tolist() == [0, 2] and ig.target_kind == "q"
    assert sal.delta is None and ig.delta is not None and np.abs(ig.delta).max() < 1e-4


class Quadratic(Agent):
    """``Q(s, 0) = s_0 s_1``, ``Q(s, 1) = 0``."""

    capabilities = Capabilities(q_values=True, q_scores=True)

    def __init__(self) -> None:
        super().__init__(AgentConfig(device="cpu"), ProblemSpec(2, D))
        self.dummy = nn.Parameter(torch.zeros(()))

    def q_values(
        self, obs: Tensor, history: History | None = None, actions: Tensor | None = None
    ) -> Tensor:
        q = obs[:, 0] * obs[:, 1] + self.dummy
        both = torch.stack([q, torch.zeros_like(q)], dim=1)
        return both if actions is None else both.gather(1, actions.view(-1, 1)).squeeze(1)

    def scores(self, obs: Tensor, history: History | None = None) -> Tensor:
        return self.q_values(obs, history)


def test_quadratic_hand_computed_ig() -> None:
    # IG_i = (x_i - b_i) * mean over the path of d(x0 x1)/dx_i; with x = (3, 4), b = (1, 2):
    # IG_0 = (3 - 1)(4 + 2)/2 = 6, IG_1 = (4 - 2)(3 + 1)/2 = 4, sum 10 = 12 - 2.
    obs = torch.zeros(1, D, dtype=torch.float64)
    obs[0, :2] = torch.tensor([3.0, 4.0])
    base = torch.zeros(D, dtype=torch.float64)
    base[:2] = torch.tensor([1.0, 2.0])
    agent = Quadratic().double()
    a = attribute(agent, obs, actions=torch.tensor([0]), baseline=base, n_steps=4)
    assert a.state[0, :2].tolist() == pytest.approx([6.0, 4.0], abs=1e-6)
    assert np.all(a.state[0, 2:] == 0.0)
    zero = attribute(agent, obs, actions=torch.tensor([0]), n_steps=4)  # zero baseline: 6, 6
    assert zero.state[0, :2].tolist() == pytest.approx([6.0, 6.0], abs=1e-6)
    assert a.baseline_target[0] == pytest.approx(2.0) and a.target[0] == pytest.approx(12.0)


def test_history_positions_and_groups_sum_the_right_slices() -> None:
    torch.manual_seed(1)
    agent = AdditiveAgent(torch.randn(D))
    obs, h = torch.randn(3, D), make_history()
    a = attribute(agent, obs, h, actions=torch.zeros(3, dtype=torch.int64), n_steps=4)
    assert a.history is not None and a.history_mask is not None and a.history_parts is not None
    assert a.history.shape == (3, K) and a.history_mask.tolist() == h.mask.tolist()
    np.testing.assert_allclose(
        a.history, agent.position_terms(h).detach().numpy(), rtol=1e-5, atol=1e-5
    )
    assert np.all(a.history[~a.history_mask] == 0.0)
    parts = a.history_parts
    np.testing.assert_allclose(
        parts["item"] + parts["signals"] + parts["gap"], a.history, atol=1e-5
    )
    np.testing.assert_allclose(
        parts["gap"], (0.3 * torch.log1p(h.gap_s) * h.mask).numpy(), rtol=1e-5
    )
    assert a.signal_attr is not None and a.signal_attr.shape == (3, K, 12)
    assert len(a.feature_names) == D and a.feature_names[0].startswith("user.active_degree=")
    assert set(a.groups) == set(STATE_SLICES)
    for name, cols in STATE_SLICES.items():
        np.testing.assert_allclose(a.groups[name], a.state[:, cols].sum(1), rtol=1e-6)
    total = a.state.sum(1) + a.history.sum(1)
    np.testing.assert_allclose(total, a.target - a.baseline_target, rtol=1e-4)
    only = attribute(
        agent, obs, h, actions=torch.zeros(3, dtype=torch.int64), n_steps=4, vary="history"
    )
    assert np.all(only.state == 0.0) and only.history is not None
    np.testing.assert_allclose(only.history, a.history, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(only.baseline_target, (obs @ agent.w).detach().numpy(), rtol=1e-5)
    held = attribute(
        agent, obs, h, actions=torch.zeros(3, dtype=torch.int64), method="saliency", vary="state"
    )
    assert held.history is not None and np.all(held.history == 0.0)
    np.testing.assert_allclose(held.state, np.abs(agent.w.detach().numpy())[None].repeat(3, 0))
    layer = attribute(
        agent,
        obs,
        h,
        actions=torch.zeros(3, dtype=torch.int64),
        method="layer_integrated_gradients",
        n_steps=4,
    )
    emb = agent.encoder.item_emb(h.items) @ agent.u * h.mask
    assert layer.history is not None and np.all(layer.state == 0.0)
    np.testing.assert_allclose(layer.history, emb.detach().numpy(), rtol=1e-5, atol=1e-6)


def _tiny_spec() -> ProblemSpec:
    return ProblemSpec(n_actions=12, obs_dim=D, video_ids=np.arange(12, dtype=np.int64) * 10)


def _transformer(k: int = K, layers: int = 2) -> EncoderConfig:
    return EncoderConfig(kind="transformer", d_model=8, n_heads=2, n_layers=layers, history_len=k)


def _complete(a: object) -> float:
    """Largest |sum of attributions - (target - baseline target)| / |target - baseline|."""
    state, hist = a.state, a.history  # type: ignore[attr-defined]
    total = state.sum(1) + (hist.sum(1) if hist is not None else 0.0)
    diff = a.target - a.baseline_target  # type: ignore[attr-defined]
    return float(np.max(np.abs(total - diff) / np.maximum(np.abs(diff), 1e-3)))


@pytest.mark.parametrize(
    ("config", "target"),
    [(BCConfig(encoder=_transformer()), "logp"), (IQLConfig(encoder=_transformer()), "logp")],
)
def test_ig_completeness_on_smooth_transformers(config: AgentConfig, target: str) -> None:
    agent = config.replace(device="cpu").create(_tiny_spec()).double()
    obs = torch.randn(3, D, generator=torch.Generator().manual_seed(2))
    a = attribute(agent, obs, make_history(), target=target, n_steps=256)  # type: ignore[arg-type]
    assert _complete(a) < 1e-3
    assert a.delta is not None and np.abs(a.delta).max() < 1e-3 * np.abs(a.target).max()
    assert a.history is not None and np.all(a.history[~make_history().mask.numpy()] == 0.0)


@pytest.mark.parametrize(
    ("config", "history", "steps"),
    [
        (IQLConfig(encoder=EncoderConfig(hidden=(16, 16))), False, 16384),
        (BCConfig(encoder=EncoderConfig(hidden=(16, 16))), False, 16384),
        (IQLConfig(encoder=_transformer(2, layers=1)), True, 4096),
        (DQNConfig(encoder=EncoderConfig(hidden=(16, 16)), n_critics=2), False, 16384),
    ],
)
def test_ig_completeness_with_kinks(config: AgentConfig, history: bool, steps: int) -> None:
    """ReLU networks and IQL's min over twin critics have kinks: many trapezoid steps."""
    agent = config.replace(device="cpu").create(_tiny_spec()).double()
    obs = torch.randn(2, D, generator=torch.Generator().manual_seed(3))
    h = None
    if history:
        full = make_history(2)
        h = History(full.items[:, 2:], full.signals[:, 2:], full.gap_s[:, 2:], full.mask[:, 2:])
    a = attribute(agent, obs, h, n_steps=steps, ig_method="riemann_trapezoid")
    assert a.target_kind == ("logp" if isinstance(config, BCConfig) else "q")
    assert _complete(a) < 1e-3


def test_layer_ig_completeness_and_q_matches_agent() -> None:
    agent = IQLConfig(encoder=_transformer(), device="cpu").create(_tiny_spec()).double()
    obs, h = torch.randn(3, D, generator=torch.Generator().manual_seed(4)), make_history()
    a = attribute(agent, obs, h, method="layer_integrated_gradients", target="logp", n_steps=64)
    assert a.history is not None and a.delta is not None
    np.testing.assert_allclose(a.history.sum(1), a.target - a.baseline_target, rtol=1e-3, atol=1e-6)
    q = attribute(agent, obs, h, method="saliency")  # target "q": min of the twin critics
    with torch.no_grad():
        hh = History(h.items, h.signals.double(), h.gap_s.double(), h.mask)
        expected = agent.q_values(obs.double(), hh).gather(1, torch.as_tensor(q.actions)[:, None])
        best = agent.scores(obs.double(), hh).argmax(-1)
    np.testing.assert_allclose(q.target, expected[:, 0].numpy(), rtol=1e-5)
    assert q.actions.tolist() == best.tolist()


def test_same_input_same_output_and_errors() -> None:
    agent = BCConfig(encoder=_transformer(), device="cpu").create(_tiny_spec())
    obs, h = torch.randn(3, D, generator=torch.Generator().manual_seed(5)), make_history()
    first, second = attribute(agent, obs, h), attribute(agent, obs, h)
    assert np.array_equal(first.state, second.state)
    assert np.array_equal(first.history, second.history)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="method"):
        attribute(agent, obs, h, method="lime")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="Q values"):
        attribute(agent, obs, h, target="q")
    with pytest.raises(ConfigError, match="simulator"):
        attribute(agent, obs, h, target="signal")
    with pytest.raises(ConfigError, match="baseline"):
        attribute(agent, obs, h, baseline="median")


def _simulator(video_ids: np.ndarray) -> FittedSimulator:
    torch.manual_seed(6)
    n, f = len(video_ids), 30
    feats = np.random.default_rng(0).normal(size=(n, f)).astype(np.float32)
    config = ResponseModelConfig(hidden=8, layers=1, dropout=0.0)
    net = ResponseNet(feats, config, np.zeros(D, np.float32), np.ones(D, np.float32)).eval()
    return FittedSimulator(
        config,
        ItemVocab.from_ids(video_ids),
        ItemTable(feats, ()),
        net,
        None,
        np.zeros((n, 1 + len(HEADS))),
    )


def test_signal_target_maps_videos_to_the_simulator() -> None:
    agent = BCConfig(encoder=_transformer(), device="cpu").create(_tiny_spec())
    sim = _simulator(np.array([5, 10, 20, 30, 40], dtype=np.int64))  # agent action 2 = video 20
    obs, h = torch.randn(2, D, generator=torch.Generator().manual_seed(7)), make_history(2)
    a = attribute(
        agent,
        obs,
        h,
        actions=torch.tensor([2, 3]),
        target="signal",
        simulator=sim,
        signal="is_like",
        n_steps=2048,
        ig_method="riemann_trapezoid",
    )
    expected = sim.predict(obs.numpy(), np.array([2, 3]))["is_like"]
    np.testing.assert_allclose(a.target, expected, rtol=1e-5)
    assert a.history is not None and np.all(a.history == 0.0)  # the simulator reads no history
    assert _complete(a) < 1e-3
    with pytest.raises(ConfigError, match="video_id 50"):
        attribute(agent, obs, h, actions=torch.tensor([5, 5]), target="signal", simulator=sim)
