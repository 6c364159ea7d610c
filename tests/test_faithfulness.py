"""Faithfulness metrics with known answers: an additive network whose target is a sum of
per-position (and per-slice) contributions, and hand-computed curve metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from noetik.agents.algorithms.bc import BCConfig
from noetik.agents.core.base import ProblemSpec
from noetik.agents.networks.encoders import EncoderConfig, History
from noetik.data.state_layout import STATE_SLICES
from noetik.errors import ConfigError
from noetik.explain.faithfulness import (
    FaithfulnessConfig,
    FaithfulnessCurves,
    Perturbation,
    curve_metrics,
    deletion_curve,
    faithfulness,
    faithfulness_curves,
    summarize,
)
from noetik.utils.bootstrap import bootstrap_means
from tests.test_attribute import A, AdditiveAgent, K, make_history

D = 128


def _sorted_cumsum(contrib: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(B, U + 1) cumulative sums of each row's valid contributions, largest first, padded."""
    keyed = np.where(valid, -contrib, np.inf)
    ordered = np.take_along_axis(np.where(valid, contrib, 0.0), np.argsort(keyed, 1), 1)
    return np.concatenate([np.zeros((len(contrib), 1)), np.cumsum(ordered, 1)], axis=1)


def _agent_and_data(b: int = 8) -> tuple[AdditiveAgent, torch.Tensor, History, torch.Tensor]:
    agent = AdditiveAgent(torch.randn(D, generator=torch.Generator().manual_seed(0))).double()
    obs = torch.randn(b, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    h = make_history(b, seed=2)
    h = History(h.items, h.signals.double(), h.gap_s.double(), h.mask)
    return agent, obs, h, torch.zeros(b, dtype=torch.int64)


@pytest.mark.parametrize("removal", ["mask", "baseline"])
def test_ig_deletion_is_the_sorted_cumulative_sum(removal: str) -> None:
    agent, obs, h, actions = _agent_and_data()
    config = FaithfulnessConfig(history_removal=removal)  # type: ignore[arg-type]
    curves = faithfulness_curves(
        agent, obs, h, "integrated_gradients", "q", config=config, actions=actions
    )
    contrib = agent.position_terms(h).detach().numpy()
    full = agent.q_values(obs, h)[:, 0].detach().numpy()
    steps = _sorted_cumsum(contrib, h.mask.numpy())
    np.testing.assert_allclose(curves.deletion, full[:, None] - steps, rtol=1e-9, atol=1e-9)
    empty = full - contrib.sum(1)
    np.testing.assert_allclose(curves.insertion, empty[:, None] + steps, rtol=1e-9, atol=1e-9)
    assert curves.n_units.tolist() == h.mask.sum(1).tolist()
    rand = faithfulness_curves(agent, obs, h, "random", "q", config=config, actions=actions)
    ig_m, rand_m = curve_metrics(curves, config.ks), curve_metrics(rand, config.ks)
    # largest-first removal lowers the curve at least as fast as any order, at every step
    assert np.all(curves.deletion <= rand.deletion + 1e-9)
    assert np.all(ig_m["deletion_area"] <= rand_m["deletion_area"] + 1e-9)
    assert ig_m["deletion_area"].sum() < rand_m["deletion_area"].sum() - 1e-3
    assert ig_m["insertion_area"].sum() > rand_m["insertion_area"].sum() + 1e-3
    np.testing.assert_allclose(rand.deletion[:, 0], curves.deletion[:, 0])  # shared endpoints


def test_state_slices_deletion() -> None:
    agent, obs, h, actions = _agent_and_data(4)
    curves = faithfulness_curves(
        agent, obs, h, "input_x_gradient", "q", unit="state", actions=actions
    )
    terms = (obs * agent.w).detach().numpy()
    groups = np.stack([terms[:, s].sum(1) for s in STATE_SLICES.values()], axis=1)
    full = curves.deletion[:, 0]
    steps = _sorted_cumsum(groups, np.ones_like(groups, dtype=bool))
    np.testing.assert_allclose(curves.deletion, full[:, None] - steps, rtol=1e-9, atol=1e-9)
    assert curves.deletion.shape == (4, len(STATE_SLICES) + 1)
    base = torch.ones(D, dtype=torch.float64)  # removed slices set to 1 instead of 0
    how = Perturbation(unit="state", baseline=base)
    scorer = lambda x, hist, rows: agent.q_values(x, hist)[:, 0]  # noqa: E731
    one = deletion_curve(scorer, obs, h, groups, how)
    w_groups = np.stack([agent.w.detach().numpy()[s].sum() for s in STATE_SLICES.values()])
    expected_last = full - groups.sum(1) + w_groups.sum()  # every slice at 1: w·1 + history
    np.testing.assert_allclose(one[:, -1], expected_last, rtol=1e-9)


def test_curve_metrics_hand_computed() -> None:
    deletion = np.array([[10.0, 7.0, 5.0, 6.0], [5.0, 2.0, 2.0, 2.0], [1.0, 1.0, 1.0, 1.0]])
    insertion = np.array([[6.0, 9.0, 11.0, 10.0], [2.0, 5.0, 5.0, 5.0], [1.0, 1.0, 1.0, 1.0]])
    curves = FaithfulnessCurves(deletion, insertion, np.array([3, 1, 0]))
    m = curve_metrics(curves, (1, 2, 3, 5))
    # row 0: del - f_empty = (4, 1, -1, 0): area ((4+1)/2 + 0 + (-1)/2)/3 = 2/3; ins: 10/3
    np.testing.assert_allclose(m["deletion_area"], [2 / 3, 1.5])
    np.testing.assert_allclose(m["insertion_area"], [10 / 3, 1.5])
    np.testing.assert_allclose(m["span"], [4.0, 3.0])
    np.testing.assert_allclose(m["comprehensiveness"], [(3 + 5 + 4 + 4) / 4, 3.0])
    np.testing.assert_allclose(m["sufficiency"], [(1 - 1 + 0 + 0) / 4, 0.0])
    out = summarize(curves, FaithfulnessConfig(n_bootstrap=200))
    assert out["n"] == 2.0  # the decision without units is dropped
    assert out["deletion_auc"] == pytest.approx((2 / 3 + 1.5) / 7)
    assert out["insertion_auc"] == pytest.approx((10 / 3 + 1.5) / 7)
    assert out["comprehensiveness"] == pytest.approx(3.5) and out["span"] == pytest.approx(3.5)
    assert out["deletion_auc_lo"] <= out["deletion_auc"] <= out["deletion_auc_hi"]


def _interval(num: np.ndarray, den: np.ndarray | None = None, seed: int = 0) -> tuple[float, float]:
    """The faithfulness interval of ``mean(num)`` (or ``mean(num) / mean(den)``)."""
    est = bootstrap_means({"x": num}, None if den is None else {"x": den}, n_boot=1000, seed=seed)
    return est["x"].low, est["x"].high


def test_bootstrap_interval() -> None:
    assert _interval(np.full(10, 2.5)) == (2.5, 2.5)
    values = np.random.default_rng(0).normal(1.0, 1.0, size=400)
    low, high = _interval(values, seed=3)
    assert low < values.mean() < high and high - low == pytest.approx(0.196, abs=0.03)
    assert _interval(values, seed=3) == (low, high)
    ratio = _interval(np.full(5, 2.0), np.full(5, 4.0))
    assert ratio == (0.5, 0.5)


def test_faithfulness_beats_random_and_is_seeded() -> None:
    agent, obs, h, actions = _agent_and_data(24)
    config = FaithfulnessConfig(n_bootstrap=300, n_random=3)
    out = faithfulness(agent, obs, h, "integrated_gradients", "q", config=config, actions=actions)
    assert out["deletion_auc"] < out["random_deletion_auc"]
    assert out["insertion_auc"] > out["random_insertion_auc"]
    assert out["deletion_auc_gain_lo"] > 0 and out["insertion_auc_gain_lo"] > 0
    assert out["comprehensiveness_gain"] > 0 and out["mean_abs_delta"] < 1e-4
    again = faithfulness(agent, obs, h, "integrated_gradients", "q", config=config, actions=actions)
    assert again == out
    seeded = FaithfulnessConfig(n_bootstrap=300, n_random=3, seed=1)
    other = faithfulness(agent, obs, h, "integrated_gradients", "q", config=seeded, actions=actions)
    assert other["random_deletion_auc"] != out["random_deletion_auc"]


def test_real_transformer_methods_share_endpoints_and_errors() -> None:
    enc = EncoderConfig(kind="transformer", d_model=8, n_heads=2, n_layers=2, history_len=K)
    agent = BCConfig(encoder=enc, device="cpu").create(ProblemSpec(A, D))
    obs, h = torch.randn(3, D, generator=torch.Generator().manual_seed(4)), make_history()
    ig = faithfulness_curves(agent, obs, h, "integrated_gradients")
    roll = faithfulness_curves(agent, obs, h, "attention_rollout")
    layer = faithfulness_curves(agent, obs, h, "layer_integrated_gradients")
    for c in (roll, layer):
        np.testing.assert_allclose(c.deletion[:, 0], ig.deletion[:, 0], rtol=1e-5)
        np.testing.assert_allclose(c.deletion[:, -1], ig.deletion[:, -1], rtol=1e-5)
        np.testing.assert_allclose(c.insertion[:, 0], ig.deletion[:, -1], rtol=1e-5)
    with pytest.raises(ConfigError, match="attention_rollout"):
        faithfulness_curves(agent, obs, h, "attention_rollout", unit="state")
    with pytest.raises(ConfigError, match="history positions only"):
        faithfulness_curves(agent, obs, h, "layer_integrated_gradients", unit="state")
    with pytest.raises(ConfigError, match="method"):
        faithfulness_curves(agent, obs, h, "shap")
    with pytest.raises(ConfigError, match="pad_index"):
        deletion_curve(
            lambda x, hh, r: x[:, 0], obs, h, np.ones((3, K)), Perturbation(removal="baseline")
        )
    with pytest.raises(ConfigError, match="ks"):
        FaithfulnessConfig(ks=())
