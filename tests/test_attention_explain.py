"""Attention maps, rollout and attention-attribution agreement: hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from noetik.agents.algorithms.bc import BCConfig
from noetik.agents.core.base import ProblemSpec
from noetik.agents.networks.encoders import EncoderConfig
from noetik.errors import ConfigError
from noetik.explain.attention import (
    attention_agreement,
    attention_maps,
    attention_rollout,
    attention_weights,
    rank_average,
    state_share,
)
from tests.test_attribute import make_history


def test_rollout_of_uniform_and_identity_attention() -> None:
    t = 5  # K = 4 history tokens + the query
    uniform = np.full((1, 2, 3, t, t), 1.0 / t)
    # each layer: (U + I) / 2, two layers: (U + I)^2 / 4 = 0.75 U + 0.25 I -> 0.75 / 5 per token
    raw = attention_rollout(uniform, normalize=False)
    np.testing.assert_allclose(raw, np.full((1, 4), 0.15), rtol=1e-6)
    np.testing.assert_allclose(attention_rollout(uniform), np.full((1, 4), 0.25), rtol=1e-6)
    identity = np.broadcast_to(np.eye(t), (2, 3, 4, t, t))  # nothing mixes: R = I
    assert np.all(attention_rollout(identity, normalize=False) == 0.0)
    assert np.all(attention_rollout(identity) == 0.0)  # no flow from the history at all
    mask = np.array([[True, True, False, False]])  # padding is left out of the normalisation
    np.testing.assert_allclose(attention_rollout(uniform, mask), [[0.5, 0.5, 0.0, 0.0]])


def test_rollout_two_layers_hand_computed() -> None:
    a1 = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.2, 0.2, 0.6]])
    a2 = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.4, 0.4, 0.2]])
    spread = np.array([[0.0, 0.0, 0.0], [0.1, -0.1, 0.0], [0.1, 0.0, -0.1]])
    heads1 = np.stack([a1 + spread, a1 - spread])  # two heads whose mean is a1
    weights = np.stack([heads1, np.stack([a2, a2])])[None]  # (1, L=2, H=2, 3, 3)
    # Â1 = (A1 + I)/2, Â2 = (A2 + I)/2; query row of Â2 Â1 = [0.31, 0.21, 0.48]
    np.testing.assert_allclose(attention_rollout(weights, normalize=False), [[0.31, 0.21]])
    np.testing.assert_allclose(attention_rollout(weights), [[31 / 52, 21 / 52]], rtol=1e-6)
    with pytest.raises(ConfigError, match="full weights"):
        attention_rollout(weights[:, :, :, -1, :-1])


def test_agreement_identical_reversed_ties_and_masks() -> None:
    attn = np.array([[0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4], [0.5, 0.1, 9.0, 9.0]])
    attr = np.array([[1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0], [2.0, 1.0, -7.0, 3.0]])
    mask = np.array([[True] * 4, [True] * 4, [True, True, False, False]])
    rho = attention_agreement(attn, attr, mask)
    assert rho[0] == pytest.approx(1.0) and rho[1] == pytest.approx(-1.0)
    assert rho[2] == pytest.approx(1.0)  # only the 2 valid positions count
    x, y = np.array([[1.0, 2.0, 2.0, 3.0]]), np.array([[1.0, 2.0, 3.0, 4.0]])
    tied = attention_agreement(x, y, np.ones((1, 4), bool))
    assert tied[0] == pytest.approx(4.5 / np.sqrt(22.5)) == pytest.approx(spearmanr(x[0], y[0])[0])
    signed = np.array([[-4.0, 1.0, 2.0, 3.0]])  # |-4| ranks first with absolute=True
    assert attention_agreement(y, signed, np.ones((1, 4), bool))[0] == pytest.approx(-0.2)
    assert attention_agreement(y, signed, np.ones((1, 4), bool), absolute=False)[0] == 1.0
    few = attention_agreement(attn[:1], attr[:1], np.array([[True, False, False, False]]))
    assert np.isnan(few[0])
    ranks = rank_average(np.array([[5.0, 1.0, 5.0, 0.0]]), np.array([[True, True, True, False]]))
    np.testing.assert_array_equal(ranks[0, :3], [2.5, 1.0, 2.5])
    assert np.isnan(ranks[0, 3])


def test_maps_of_a_real_transformer() -> None:
    enc = EncoderConfig(kind="transformer", d_model=8, n_heads=2, n_layers=3, history_len=4)
    agent = BCConfig(encoder=enc, device="cpu").create(ProblemSpec(6, 128))
    obs, h = torch.randn(3, 128, generator=torch.Generator().manual_seed(0)), make_history()
    maps = attention_maps(agent, obs, h)
    raw = attention_maps(agent, obs, h, normalize=False)
    share = state_share(agent, obs, h)
    full = attention_weights(agent, obs, h)
    assert maps is not None and raw is not None and share is not None and full is not None
    assert maps.shape == (3, 3, 2, 4) and full.shape == (3, 3, 2, 5, 5)
    mask = h.mask.numpy()[:, None, None, :]
    np.testing.assert_allclose(maps.sum(-1), 1.0, rtol=1e-5)
    assert np.all(maps[~np.broadcast_to(mask, maps.shape)] == 0.0)
    np.testing.assert_allclose(raw.sum(-1) + share, 1.0, rtol=1e-5)
    direct = agent.attention(obs, h)
    assert direct is not None
    np.testing.assert_allclose(raw, direct.permute(1, 0, 2, 3, 4)[..., -1, :-1].numpy(), atol=1e-7)
    roll = attention_rollout(full, h.mask.numpy())
    np.testing.assert_allclose(roll.sum(1), 1.0, rtol=1e-5)
    assert np.all(roll[~h.mask.numpy()] == 0.0)
    mlp = BCConfig(device="cpu").create(ProblemSpec(6, 128))
    assert attention_maps(mlp, obs, None) is None and attention_maps(mlp, obs, h) is None
