"""Agent foundation: encoders, heads, batches, config round trips, save/load, trainer resume."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from noetik.agents import (
    ALGOS,
    Agent,
    AgentConfig,
    Capabilities,
    DeviceReplay,
    EncoderConfig,
    EnsembleMLP,
    FusedEnsemble,
    History,
    HistoryTransformerEncoder,
    HostReplay,
    ItemScorer,
    ProblemSpec,
    TrainerConfig,
    make_encoder,
    register,
)
from noetik.agents.core.batches import Batch
from noetik.data.rewards import RewardConfig
from noetik.data.transitions import ItemVocab, Transitions, episode_links
from noetik.errors import ConfigError

A, F = 7, 3


def tiny_transitions(n: int = 60, seed: int = 0) -> Transitions:
    """N rows of 4 users (sorted by user and time), random states and signals."""
    rng = np.random.default_rng(seed)
    user_id = np.sort(rng.integers(0, 4, n)).astype(np.int32)
    episode_id = user_id.astype(np.int64)
    done, next_index = episode_links(episode_id)
    signals = rng.random((n, 12), dtype=np.float32)
    action = rng.integers(0, A, n)
    return Transitions(
        obs=rng.standard_normal((n, 128)).astype(np.float16),
        action=action,
        reward=(action % 3 == 0).astype(np.float32) + signals[:, 0],
        done=done,
        next_index=next_index,
        episode_id=episode_id,
        step=np.zeros(n, dtype=np.int32),
        user_id=user_id,
        time_ms=np.cumsum(rng.integers(1000, 60_000, n)).astype(np.int64),
        signals=signals,
        vocab=ItemVocab.from_ids(np.arange(100, 100 + A)),
        reward_config=RewardConfig(),
    )


class TinyQ(Agent):
    """Test agent: Q(s, a) regressed onto the reward (a contextual-bandit critic)."""

    config: TinyQConfig
    capabilities = Capabilities(offline=True, learned=True)

    def __init__(self, config: TinyQConfig, spec: ProblemSpec) -> None:
        super().__init__(config, spec)
        self.encoder = make_encoder(config.encoder, spec)
        self.head = ItemScorer(
            self.encoder.out_dim, spec.n_actions, 8, config.dense_max_actions, spec.item_features
        )
        self.add_optimizer("q", torch.optim.Adam(self.parameters(), lr=config.lr))

    def scores(self, obs: Tensor, history: History | None = None) -> Tensor:
        return self.head(self.encoder(obs, history))

    def update(self, batch: Batch) -> dict[str, Tensor]:
        q = self.head.score_actions(self.encoder(batch.obs, batch.history), batch.action)
        loss = ((q - batch.reward) ** 2).mean()
        opt = self.optimizers["q"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.detach(), "q_mean": q.detach().mean()}


@register("test_tiny_q")
@dataclass(frozen=True)
class TinyQConfig(AgentConfig):
    """Config of :class:`TinyQ`."""

    agent_class = TinyQ
    extra: tuple[float, ...] = (1.0, 2.0)
    """A tuple field, to test JSON round trips."""
    encoder: EncoderConfig = field(default_factory=lambda: EncoderConfig(hidden=(32, 32)))
    """Small MLP by default."""


TRANSFORMER = EncoderConfig(kind="transformer", d_model=16, n_heads=2, n_layers=2, history_len=5)


def _spec(features: bool = False) -> ProblemSpec:
    feats = np.random.default_rng(1).random((A, F), dtype=np.float32) if features else None
    return ProblemSpec(A, 128, feats)


def _history(b: int, k: int, seed: int = 0) -> tuple[Tensor, History]:
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(b, k, generator=g) > 0.4
    mask[0] = False  # a user without history
    items = torch.where(mask, torch.randint(0, A, (b, k), generator=g), A)
    h = History(
        items,
        torch.rand(b, k, 12, generator=g) * mask[..., None],
        torch.rand(b, k, generator=g) * 1e4 * mask,
        mask,
    )
    return torch.randn(b, 128, generator=g), h


def test_encoder_shapes() -> None:
    obs, h = _history(6, 5)
    mlp = make_encoder(EncoderConfig(hidden=(64, 32)), _spec())
    assert mlp(obs).shape == (6, 32) and mlp.out_dim == 32
    tr = make_encoder(TRANSFORMER, _spec(features=True))
    assert tr(obs, h).shape == (6, 16) and tr.out_dim == 16
    with pytest.raises(ConfigError):
        EncoderConfig(kind="transformer", d_model=10, n_heads=3)


@pytest.mark.parametrize("causal", [False, True])
def test_attention_weights(causal: bool) -> None:
    torch.manual_seed(0)
    enc = HistoryTransformerEncoder(
        EncoderConfig(**{**TRANSFORMER.__dict__, "causal": causal}), _spec(features=True)
    ).eval()
    obs, h = _history(6, 5)
    w = enc.attention(obs, h)
    assert w.shape == (2, 6, 2, 6, 6)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 6, 2, 6))
    key_exists = torch.cat([h.mask, torch.ones(6, 1, dtype=torch.bool)], 1)
    valid_rows = key_exists[None, :, None, :, None]  # rows of existing tokens
    assert torch.all(w.masked_select(valid_rows & ~key_exists[None, :, None, None, :]) == 0)
    k = 5
    upper = torch.ones(k + 1, k + 1, dtype=torch.bool).triu(1)
    history_rows = torch.zeros(k + 1, k + 1, dtype=torch.bool)
    history_rows[:k] = True
    future = w[..., upper & history_rows]
    assert bool(torch.all(future == 0)) == causal
    # padding contents never change the output
    items = torch.where(h.mask, h.items, 3)
    changed = History(items, h.signals + (~h.mask)[..., None] * 5.0, h.gap_s + ~h.mask, h.mask)
    torch.testing.assert_close(enc(obs, changed), enc(obs, h), rtol=0, atol=0)


def test_user_context_query_ignores_history_dims() -> None:
    cfg = EncoderConfig(**{**TRANSFORMER.__dict__, "state_input": "user_context"})
    enc = HistoryTransformerEncoder(cfg, _spec()).eval()
    obs, h = _history(4, 5)
    hist_dims = obs.clone()
    hist_dims[:, 60:70] += 1.0  # hist.* block of the state
    torch.testing.assert_close(enc(hist_dims, h), enc(obs, h), rtol=0, atol=0)


@pytest.mark.parametrize("dense", [True, False])
def test_item_scorer_is_a_matmul(dense: bool) -> None:
    torch.manual_seed(0)
    feats = np.random.default_rng(0).random((A, F), dtype=np.float32)
    scorer = ItemScorer(
        10, A, embed_dim=4, dense_max_actions=A if dense else 2, item_features=feats
    )
    h = torch.randn(5, 10)
    if dense:
        expected = h @ scorer.linear.weight.T + scorer.linear.bias
    else:
        items = scorer.item_emb + torch.as_tensor(feats) @ scorer.feat.weight.T  # type: ignore[union-attr]
        expected = scorer.proj(h) @ items.T + scorer.bias
    torch.testing.assert_close(scorer(h), expected)
    actions = torch.tensor([0, 3, 6, 1, 1])
    torch.testing.assert_close(scorer.score_actions(h, actions), expected[torch.arange(5), actions])


def test_fused_ensembles_equal_separate_networks() -> None:
    torch.manual_seed(0)
    members = [nn.Sequential(nn.Linear(128, 16), nn.ReLU(), nn.Linear(16, A)) for _ in range(2)]
    fused = FusedEnsemble(members)
    obs = torch.randn(4, 128)
    torch.testing.assert_close(fused(obs), torch.stack([m(obs) for m in members]))
    torch.testing.assert_close(fused.member(1)(obs), members[1](obs))
    spec = _spec()
    nets = [TinyQConfig(encoder=TRANSFORMER).create(spec) for _ in range(2)]
    for net in nets:
        net.eval()
    twin = FusedEnsemble([n.encoder for n in nets]).eval()
    obs, h = _history(4, 5)
    torch.testing.assert_close(twin(obs, h), torch.stack([n.encoder(obs, h) for n in nets]))
    mlp = EnsembleMLP(2, 128, (32, 32), A)
    sep = [
        torch.relu(
            torch.relu(obs @ mlp.layers[0].weight[i] + mlp.layers[0].bias[i])
            @ mlp.layers[1].weight[i]
            + mlp.layers[1].bias[i]
        )
        @ mlp.layers[2].weight[i]
        + mlp.layers[2].bias[i]
        for i in range(2)
    ]
    torch.testing.assert_close(mlp(obs), torch.stack(sep))


def test_fused_member_views_share_the_stacked_parameters() -> None:
    """``member(i)`` equals the fused forward's row i, follows weight updates (no copy) and
    passes its gradients to the stacked parameters; ``unfused`` runs through such views."""
    spec = _spec()
    nets = [TinyQConfig(encoder=TRANSFORMER).create(spec).encoder for _ in range(3)]
    fused = FusedEnsemble(nets).eval()
    obs, h = _history(4, 5)
    views = fused.members()
    for i, view in enumerate(views):
        assert type(view).__mro__[1] is type(nets[i]) and not view.training
        torch.testing.assert_close(view(obs, h), fused(obs, h)[i])
    stacked = next(p for k, p in fused.params.items() if k.endswith("item_emb__weight"))
    views[1](obs, h).square().sum().backward()
    assert stacked.grad is not None
    assert stacked.grad[1].abs().sum() > 0
    assert stacked.grad[0].abs().sum() == 0 and stacked.grad[2].abs().sum() == 0
    assert {id(p) for p in views[1].parameters()} <= {id(p) for p in fused.parameters()}
    with torch.no_grad():  # an in-place update (as optimizers do) is seen by the view
        stacked[1].add_(0.5)
    torch.testing.assert_close(views[1](obs, h), fused(obs, h)[1])
    fused.double()  # so is a dtype change (buffers are replaced by new tensors)
    obs, h = obs.double(), History(h.items, h.signals.double(), h.gap_s.double(), h.mask)
    assert views[2](obs, h).dtype == torch.float64
    calls: list[int] = []
    with fused.unfused() as members:
        assert fused.unfused_members is members and len(members) == 3
        members[2].item_emb.register_forward_hook(lambda *_: calls.append(2))
        out = fused(obs, h)
    assert calls == [2] and fused.unfused_members is None
    torch.testing.assert_close(out, fused(obs, h))
    with pytest.raises(IndexError):
        fused.member(3)


def test_config_round_trip() -> None:
    cfg = TinyQConfig(lr=1e-3, extra=(0.5,), encoder=TRANSFORMER)
    data = cfg.to_dict()
    assert data["encoder"]["kind"] == "transformer" and data["extra"] == [0.5]
    back = TinyQConfig.from_dict(data)
    assert back == cfg and isinstance(back.encoder.hidden, tuple)
    assert cfg.replace(seed=3).seed == 3 and ALGOS["test_tiny_q"] is TinyQConfig
    with pytest.raises(ConfigError, match="nope"):
        TinyQConfig.from_dict({**data, "nope": 1})


def test_replays_match_transitions_history() -> None:
    t = tiny_transitions()
    rows = torch.arange(len(t))
    dev = DeviceReplay(t, 8, history_len=4).batch(rows)
    host = HostReplay(t, 8, history_len=4).batch(rows)
    expected = History.from_numpy(t.history(rows.numpy(), 4))
    for got in (dev, host):
        assert got.history is not None and got.next_history is not None
        for a, b in zip(vars(got.history).values(), vars(expected).values(), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        next_expected = History.from_numpy(t.history(t.next_index, 4))
        torch.testing.assert_close(got.next_history.items, next_expected.items)
        torch.testing.assert_close(got.next_obs, torch.as_tensor(t.next_obs(rows.numpy())).float())
        torch.testing.assert_close(got.done, torch.as_tensor(t.done).float())


def test_save_load_round_trip(tmp_path: Path) -> None:
    t = tiny_transitions()
    agent = TinyQConfig(encoder=TRANSFORMER, device="cpu").create(ProblemSpec.from_transitions(t))
    agent.fit(t, steps=3, trainer=TrainerConfig(progress=False))
    agent.save(tmp_path / "m")
    loaded = Agent.load(tmp_path / "m")
    assert isinstance(loaded, TinyQ) and loaded.config == agent.config
    batch = DeviceReplay(t, 16, history_len=5).sample()
    agent.eval()
    loaded.eval()
    torch.testing.assert_close(
        loaded.scores(batch.obs, batch.history),
        agent.scores(batch.obs, batch.history),
        rtol=0,
        atol=0,
    )
    assert loaded.act(batch.obs, batch.history).dtype == torch.int64
    attn = loaded.attention(batch.obs, batch.history)
    assert attn is not None and attn.shape == (2, 16, 2, 6, 6)


def _train(t: Transitions, out: Path, steps: int, resume: bool = False, kill_at: int = 0) -> Agent:
    cfg = TinyQConfig(
        encoder=EncoderConfig(**{**TRANSFORMER.__dict__, "dropout": 0.1}),
        device="cpu",
        batch_size=8,
        seed=5,
    )
    agent = cfg.create(ProblemSpec.from_transitions(t))

    def hook(agent: Agent, step: int) -> dict[str, float]:
        if step == kill_at:
            raise KeyboardInterrupt
        return {"score": float(torch.rand(()))}

    tc = TrainerConfig(log_every=4, eval_every=5, checkpoint_every=10, progress=False)
    agent.fit(t, steps, out, hooks=[hook], resume=resume, trainer=tc)
    return agent


def _same_weights(a: Agent, b: Agent) -> None:
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), name


def test_trainer_determinism_resume_and_metrics(tmp_path: Path) -> None:
    t = tiny_transitions()
    full = _train(t, tmp_path / "full", 20)
    _same_weights(full, _train(t, tmp_path / "again", 20))
    with pytest.raises(KeyboardInterrupt):
        _train(t, tmp_path / "killed", 20, kill_at=15)
    resumed = _train(t, tmp_path / "killed", 20, resume=True)
    _same_weights(full, resumed)
    for key, value in full.optimizers["q"].state_dict()["state"][0].items():
        assert torch.equal(value, resumed.optimizers["q"].state_dict()["state"][0][key])
    with (tmp_path / "killed" / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["step", "wall_s", "updates_per_s", "eval/score", "loss", "q_mean"]
    assert [int(r["step"]) for r in rows] == [4, 5, 8, 10, 12, 15, 16, 20]
    with (tmp_path / "full" / "metrics.csv").open() as f:
        full_rows = list(csv.DictReader(f))
    # the row at step 12 averages steps 11-12 only (the resumed run started after step 10)
    assert [r["loss"] for r in rows if r["step"] != "12"] == [
        r["loss"] for r in full_rows if r["step"] != "12"
    ]
    assert Agent.load(tmp_path / "killed" / "checkpoint").config == full.config
