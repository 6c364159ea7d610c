"""Explanations in plain words: their numbers agree with the agent, the text says those numbers.

Agents are tiny BC / IQL History Transformers (and an IQL MLP) trained for a few steps on a
small synthetic KuaiRand (40 users, 120 videos); a hand-built agent whose decision hinges on
one history position checks that the text names that video first.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from torch import Tensor, nn
from typer.testing import CliRunner

from noetik.agents.algorithms.bc import BCConfig
from noetik.agents.algorithms.iql import IQLAgent, IQLConfig
from noetik.agents.core.base import Agent, ProblemSpec
from noetik.agents.core.runs import read_run, recommend_for_run, train_run
from noetik.agents.core.task import DataSource, TaskConfig
from noetik.agents.networks.encoders import Encoder, EncoderConfig, History
from noetik.agents.networks.heads import ItemScorer
from noetik.cli.explain import explain
from noetik.data.schema import Release
from noetik.data.state_layout import STATE_LAYOUT
from noetik.data.synthetic import SynthConfig, synthesize
from noetik.errors import ConfigError
from noetik.explain.attributions import attribute
from noetik.explain.explain_context import DecisionContext, ItemCatalogue, run_contexts
from noetik.explain.explain_text import number, percent, share_text
from noetik.explain.explanation import Explanation, explain_recommendation

TINY = EncoderConfig(kind="transformer", d_model=16, n_heads=2, n_layers=1, history_len=6)
CONFIGS = {
    "iql": IQLConfig(batch_size=32, encoder=TINY, device="cpu"),
    "bc": BCConfig(batch_size=32, encoder=TINY, device="cpu"),
    "mlp": IQLConfig(batch_size=32, encoder=EncoderConfig(hidden=(32, 32)), device="cpu"),
}
USERS = [3, 5]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Run folders of the tiny agents (10 updates each) on a small synthetic dataset."""
    root = tmp_path_factory.mktemp("explain")
    synthesize(root / "data", SynthConfig.for_release(Release.PURE, users=40, videos=120, seed=0))
    source = TaskConfig(DataSource(str(root / "data"), str(root / "cache")))
    out = {}
    for name, config in CONFIGS.items():
        train_run(config, source, root / name, 10)
        out[name] = root / name
    return out


@pytest.fixture(scope="module")
def iql(runs: dict[str, Path]) -> tuple[Agent, list[DecisionContext]]:
    return run_contexts(runs["iql"], USERS)


def _inputs(agent: Agent, ctx: DecisionContext) -> tuple[Tensor, History | None]:
    history = ctx.history_tensors() if agent.config.encoder.uses_history else None
    return ctx.obs_tensor(), history


def test_numbers_agree_with_the_agent(iql: tuple[Agent, list[DecisionContext]]) -> None:
    agent, contexts = iql
    assert isinstance(agent, IQLAgent)
    ctx = contexts[0]
    e = explain_recommendation(agent, ctx, k_runner_ups=3)
    obs, history = _inputs(agent, ctx)
    with torch.no_grad():
        scores = agent.scores(obs, history)[0].double()
        q = agent.q_values(obs, history)[0].double()
    probs = torch.softmax(scores, 0)
    ranked = torch.argsort(scores, descending=True)[:4].tolist()
    cands = [e.recommended, *e.runner_ups]
    assert [c.item.action for c in cands] == ranked
    assert [c.item.video_id for c in cands] == agent.spec.video_ids[ranked].tolist()  # type: ignore[index]
    best = ranked[0]
    for c in cands:  # margins are score differences, confidence is the softmax probability
        a = c.item.action
        assert c.margin == pytest.approx(float(scores[best] - scores[a]), abs=1e-5)
        assert c.probability == pytest.approx(float(probs[a]), rel=1e-5)
        assert c.q_margin == pytest.approx(float(q[best] - q[a]), abs=1e-5)
        assert c.q_value == pytest.approx(float(q[a]), abs=1e-5)  # Q of the candidates only
    assert e.n_candidates == agent.spec.n_actions and e.score_kind == "logit"
    # The named drivers are those of largest |attribution| of the same attribution call.
    attr = attribute(agent, obs, history, actions=torch.tensor([best]), target="logp")
    assert attr.history is not None
    hist = np.where(ctx.mask, attr.history[0], 0.0).astype(np.float64)
    total = np.abs(attr.state[0]).sum(dtype=np.float64) + np.abs(hist).sum()
    assert e.total_attribution == pytest.approx(total, rel=1e-5)
    top_positions = np.argsort(-np.abs(hist), kind="stable")[:3]
    assert [d.past.position for d in e.history] == top_positions.tolist()
    for d in e.history:
        assert d.share == pytest.approx(hist[d.past.position] / total, rel=1e-4)
        assert d.past.item.action == ctx.items[d.past.position]
    sums = np.array([attr.groups[s.name][0] for s in STATE_LAYOUT], dtype=np.float64)
    top_groups = [STATE_LAYOUT[i].name for i in np.argsort(-np.abs(sums), kind="stable")[:3]]
    assert [d.group for d in e.state] == top_groups
    shares = [d.share for d in e.history] + [d.share for d in e.state]
    assert sum(abs(s) for s in shares) <= 1.0 + 1e-9
    assert e.delta == pytest.approx(float(attr.delta[0]), abs=1e-5)  # type: ignore[index]


def test_text_says_the_numbers(iql: tuple[Agent, list[DecisionContext]]) -> None:
    agent, contexts = iql
    e = explain_recommendation(agent, contexts[0])
    rec, ru = e.recommended, e.runner_ups[0]
    text = e.text
    assert text.startswith(f"Recommended video {rec.item.video_id} (")
    assert f"{percent(rec.probability)} of the policy's probability among 120 candidates" in text
    assert f"{number(ru.margin)} logits ahead of video {ru.item.video_id}" in text
    assert f"video {e.history[0].past.item.video_id} (" in text
    for d in [*e.history, *e.state]:
        assert share_text(d.share) in text
    # Every signed percentage in the text is the rounded share of a named driver.
    shown = re.findall(r"[+-]\d+(?:\.\d)? %", text)
    assert sorted(shown) == sorted(share_text(d.share) for d in [*e.history, *e.state])
    odds = rec.probability / ru.probability
    assert f"(odds {odds:.2f} to 1)" in text
    assert f"miss {abs(e.delta or 0.0):.2g} of that change" in text


def test_users_differ_and_the_same_seed_gives_the_same_explanation(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    agent, contexts = run_contexts(runs["bc"], USERS)
    first, second = (explain_recommendation(agent, c) for c in contexts)
    assert first.user_id == USERS[0] and second.user_id == USERS[1]
    assert first.text != second.text
    again_agent, again = run_contexts(runs["bc"], USERS[:1])
    assert explain_recommendation(again_agent, again[0]) == first
    # Retraining with the same seed gives the same agent, hence the same explanation.
    _, source = read_run(runs["bc"])
    train_run(CONFIGS["bc"], source, tmp_path / "bc", 10)
    retrained, ctx = run_contexts(tmp_path / "bc", USERS[:1])
    assert explain_recommendation(retrained, ctx[0]) == first


def test_recommendation_is_what_act_recommends(runs: dict[str, Path]) -> None:
    agent, contexts = run_contexts(runs["bc"], USERS)
    recs = recommend_for_run(runs["bc"], USERS, k=3)
    for ctx, videos in zip(contexts, recs.video_ids, strict=True):
        e = explain_recommendation(agent, ctx, k_runner_ups=2)
        assert [c.item.video_id for c in (e.recommended, *e.runner_ups)] == videos.tolist()


def test_json_round_trip(iql: tuple[Agent, list[DecisionContext]]) -> None:
    agent, contexts = iql
    e = explain_recommendation(agent, contexts[1], method="saliency")
    back = Explanation.from_dict(json.loads(json.dumps(e.to_dict())))
    assert back == e and back.delta is None and "saliency" in e.text


def test_mlp_agent_is_explained_by_its_state(runs: dict[str, Path]) -> None:
    agent, contexts = run_contexts(runs["mlp"], USERS[:1])
    e = explain_recommendation(agent, contexts[0], n_state=4)
    assert e.history == () and e.attention_agreement is None and len(e.state) == 4
    assert abs(sum(d.share for d in e.state)) <= 1.0
    assert f"video {e.recommended.item.video_id}" in e.text


class _WeightedHistory(Encoder):
    """``h = sum_k w_k * item_emb(items_k)`` over valid positions (reads no state)."""

    uses_history = True

    def __init__(self, n_actions: int, weights: list[float]) -> None:
        super().__init__()
        self.item_emb = nn.Embedding(n_actions + 1, n_actions, padding_idx=n_actions)
        with torch.no_grad():
            self.item_emb.weight.copy_(torch.eye(n_actions + 1, n_actions))
        self.register_buffer("w", torch.tensor(weights))
        self.out_dim, self.n_actions = n_actions, n_actions

    def forward(self, obs: Tensor, history: History | None = None) -> Tensor:
        assert history is not None
        emb = self.item_emb(history.items.clamp(0, self.n_actions))
        weights = self.w * history.mask  # type: ignore[operator]
        unused = obs[:, :1] + history.signals.sum((1, 2))[:, None] + history.gap_s[:, :1]
        return (emb * weights.unsqueeze(-1)).sum(1) + 0.0 * unused  # Captum needs every input


def test_hand_built_agent_names_the_dominant_video_first() -> None:
    n, k = 6, 4
    spec = ProblemSpec(n, video_ids=np.arange(100, 100 + n, dtype=np.int64))
    config = BCConfig(device="cpu", encoder=EncoderConfig(kind="transformer", history_len=k))
    agent = config.create(spec)
    agent.encoder = _WeightedHistory(n, [0.2, 0.3, 3.0, 0.1])  # position 2 dominates
    agent.head = ItemScorer(n, n)
    with torch.no_grad():  # logits = h: the video at position 2 (action 2) scores 3.0
        agent.head.linear.weight.copy_(torch.eye(n))
        agent.head.linear.bias.zero_()
    agent.eval()
    gaps = np.array([400.0, 300.0, 200.0, 100.0], dtype=np.float32)
    signals = np.zeros((k, 12), dtype=np.float32)
    signals[2, :2] = 1.0  # a click and a like on video 102
    catalogue = ItemCatalogue.empty(np.arange(100, 100 + n, dtype=np.int64))
    ctx = DecisionContext(
        7,
        np.zeros(128, dtype=np.float32),
        np.arange(k, dtype=np.int64),
        signals,
        gaps,
        np.ones(k, dtype=bool),
        catalogue,
    )
    e = explain_recommendation(agent, ctx, k_runner_ups=1)
    assert e.recommended.item.video_id == 102 and e.runner_ups[0].item.video_id == 101
    assert e.recommended.margin == 0.0 and e.runner_ups[0].margin == pytest.approx(2.7)
    assert e.history[0].past.position == 2 and e.history[0].share > 0.5
    assert e.history[0].past.turns_ago == 2 and e.state == ()
    drivers = e.text.split("What drove it most")[1].split("What held it back")[0]
    assert re.findall(r"video (\d+)", drivers) == ["102"]
    assert "the user's like and click on video 102 (no known tags; duration unknown" in drivers
    assert "2 turns ago" in drivers
    assert e.delta is not None and abs(e.delta) < 1e-3 * abs(e.target - e.baseline_target)


def test_cli_prints_json_and_text_and_rejects_bad_input(runs: dict[str, Path]) -> None:
    app = typer.Typer()
    app.command()(explain)
    runner = CliRunner()
    result = runner.invoke(app, [str(runs["iql"]), "--user", "3", "--k", "2", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert [p["user_id"] for p in payload] == [3] and len(payload[0]["runner_ups"]) == 2
    text = runner.invoke(app, [str(runs["iql"]), "--user", "3", "--user", "5"])
    assert text.exit_code == 0 and text.output.count("Recommended video") == 2
    bad_user = runner.invoke(app, [str(runs["iql"]), "--user", "999999"])
    assert isinstance(bad_user.exception, ConfigError)
    assert str(bad_user.exception).startswith("--user 999999 has no interaction")
    not_run = runner.invoke(app, [str(runs["iql"].parent)])
    assert isinstance(not_run.exception, ConfigError) and "not a run folder" in str(
        not_run.exception
    )
