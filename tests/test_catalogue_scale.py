"""Catalogue scale: sampled softmax with the log-Q correction, chunked top-k, and the agents.

Known answers: on a catalogue small enough for the full softmax, the sampled estimates (loss and
gradient) converge to the full ones as S grows, and without the correction they are biased
against frequent items; chunked top-k / log-sum-exp / sampling equal their dense references.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from noetik.agents.core import serving
from noetik.agents.core.base import ALGOS, ProblemSpec
from noetik.agents.core.trainer import TrainerConfig
from noetik.agents.networks.catalogue import CatalogueConfig, CatalogueScorer, ItemTables
from noetik.agents.networks.encoders import EncoderConfig
from noetik.agents.networks.sampled import ItemProposal, sampled_log_softmax, sampled_logsumexp
from noetik.agents.networks.topk import (
    Exclusions,
    chunked_logsumexp,
    chunked_sample,
    chunked_softmax_item_mean,
    chunked_topk,
    dense_topk,
)
from noetik.data.item_content import CODE_FIELDS, NUMERIC_FIELDS
from noetik.errors import ConfigError
from tests.test_agent_core import tiny_transitions

A = 40


def _problem(seed: int = 0) -> tuple[torch.Tensor, ItemProposal, int]:
    """Logits (A,) of one state, a Zipf-shaped proposal over the A items, the logged action."""
    g = np.random.default_rng(seed)
    logits = torch.tensor(g.normal(0.0, 1.5, A), dtype=torch.float64)
    counts = (1000.0 / np.arange(1, A + 1) ** 1.2).astype(np.int64)
    return logits, ItemProposal(counts, power=1.0, eps=0.05), 7


def _sampled(
    logits: torch.Tensor, proposal: ItemProposal, action: int, s: int, *, reps: int, correct: bool
) -> tuple[float, torch.Tensor]:
    """Mean over ``reps`` draws of the sampled loss ``-log π̂(a)`` and of its gradient (A,)."""
    torch.manual_seed(0)
    leaf = logits.clone().requires_grad_(True)
    items, log_q = proposal.sample(s * reps, torch.device("cpu"))
    items, log_q = items.view(reps, s), log_q.view(reps, s).double()
    positive = leaf[action].expand(reps)
    hits = items == action
    log_p = sampled_log_softmax(positive, leaf[items], log_q, hits, correct=correct)
    loss = -log_p.mean()
    loss.backward()  # type: ignore[no-untyped-call]
    assert leaf.grad is not None
    return float(loss.detach()), leaf.grad.clone()


def test_sampled_softmax_converges_to_the_full_softmax_as_samples_grow() -> None:
    logits, proposal, action = _problem()
    leaf = logits.clone().requires_grad_(True)
    full = -torch.log_softmax(leaf, 0)[action]
    full.backward()  # type: ignore[no-untyped-call]
    assert leaf.grad is not None
    loss_err, grad_err = [], []
    for s in (4, 32, 256, 2048):
        loss, grad = _sampled(logits, proposal, action, s, reps=400, correct=True)
        loss_err.append(abs(loss - float(full.detach())))
        grad_err.append(float((grad - leaf.grad).abs().sum()))
    assert loss_err[-1] < 0.01 and grad_err[-1] < 0.03
    assert loss_err[-1] < loss_err[0] / 10 and grad_err[-1] < grad_err[0] / 5
    assert grad_err == sorted(grad_err, reverse=True)


def test_without_the_correction_frequent_items_are_pushed_down_too_hard() -> None:
    logits, proposal, action = _problem(1)
    leaf = logits.clone().requires_grad_(True)
    (-torch.log_softmax(leaf, 0)[action]).backward()  # type: ignore[no-untyped-call]
    assert leaf.grad is not None
    full = leaf.grad
    _, plain = _sampled(logits, proposal, action, 256, reps=400, correct=False)
    _, fixed = _sampled(logits, proposal, action, 256, reps=400, correct=True)
    others = np.array([a for a in range(A) if a != action])
    head, tail = others[:5], others[-10:]  # the most and the least frequent items
    # a negative's gradient is its softmax share: the uncorrected share of frequent items is
    # inflated (each is counted ~S Q times), of rare ones deflated
    ratio = plain[others] / full[others]
    assert float(ratio[: len(head)].mean()) > 2.0
    assert float(ratio[-len(tail) :].mean()) < 0.5
    assert (
        np.corrcoef(np.log(proposal.log_q.exp()[others].numpy()), np.log(ratio.numpy()))[0, 1] > 0.9
    )
    fixed_ratio = fixed[others] / full[others]
    assert float((fixed_ratio - 1).abs().max()) < 0.35


def test_sampled_logsumexp_is_consistent_and_hits_are_dropped() -> None:
    logits, proposal, action = _problem(2)
    torch.manual_seed(1)
    items, log_q = proposal.sample(200_000, torch.device("cpu"))
    est = sampled_logsumexp(
        logits[action].view(1),
        logits[items].view(1, -1),
        log_q.double(),
        (items == action).view(1, -1),
    )
    assert abs(float(est) - float(logits.logsumexp(0))) < 0.01
    # only the positive among the samples: the estimate is the positive alone
    same = torch.full((1, 3), action)
    alone = sampled_logsumexp(
        logits[action].view(1), logits[same], log_q[:3].double(), same == action
    )
    assert float(alone) == pytest.approx(float(logits[action]))


def test_proposal_draws_follow_q_and_every_item_is_possible() -> None:
    counts = np.array([0, 0, 10, 90], dtype=np.int64)
    proposal = ItemProposal(counts, power=1.0, eps=0.2)
    torch.manual_seed(0)
    items, log_q = proposal.sample(100_000, torch.device("cpu"))
    freq = np.bincount(items.numpy(), minlength=4) / 100_000
    expected = 0.8 * counts / counts.sum() + 0.2 / 4
    np.testing.assert_allclose(freq, expected, atol=0.005)
    np.testing.assert_allclose(log_q.exp().numpy(), expected[items.numpy()], rtol=1e-5)


def _chunks(weights: torch.Tensor, bias: torch.Tensor, size: int, cand: torch.Tensor | None = None):  # type: ignore[no-untyped-def]
    n = len(weights) if cand is None else len(cand)
    for lo in range(0, n, size):
        hi = min(n, lo + size)
        ids = torch.arange(lo, hi) if cand is None else cand[lo:hi]
        yield lo, ids, weights[ids], bias[ids]


def test_chunked_topk_equals_dense_topk_with_exclusions() -> None:
    g = torch.Generator().manual_seed(0)
    q, w, b = (
        torch.randn(9, 6, generator=g),
        torch.randn(1000, 6, generator=g),
        torch.randn(1000, generator=g),
    )
    rng = np.random.default_rng(0)
    seen = Exclusions.from_lists(
        [rng.choice(1000, size=int(rng.integers(0, 300)), replace=False) for _ in range(9)]
    )
    dense = q @ w.T + b
    # whole chunks, and blocks of 4 rows x 16 items inside 64-item chunks
    for k, block in itertools.product((1, 10, 64), (1 << 19, 64)):
        values, ids = chunked_topk(q, _chunks(w, b, 64), k, seen, block=block)
        ref_v, ref_i = dense_topk(dense, k, seen)
        torch.testing.assert_close(values, ref_v)
        assert torch.equal(ids, ref_i)
        for row in range(9):  # no excluded item is recommended
            lo, hi = seen.indptr[row], seen.indptr[row + 1]
            assert not set(ids[row].tolist()) & set(seen.indices[lo:hi].tolist())
    # the same exclusions with each row in order (as seen_exclusions lists them: no sort)
    ordered = Exclusions.from_lists(
        sorted(seen.indices[seen.indptr[r] : seen.indptr[r + 1]]) for r in range(9)
    )
    for block in (1 << 19, 64):
        values, ids = chunked_topk(q, _chunks(w, b, 64), 10, ordered, block=block)
        assert torch.equal(ids, dense_topk(dense, 10, seen)[1])
    # more exclusions than items left: the tail is -inf / -1
    everything = Exclusions.from_lists([range(995)] * 9)
    for block in (1 << 19, 64):
        values, ids = chunked_topk(q, _chunks(w, b, 100), 10, everything, block=block)
        assert torch.isneginf(values[:, 5:]).all() and (ids[:, 5:] == -1).all()
        assert set(ids[0, :5].tolist()) == set(range(995, 1000))


def test_chunked_topk_over_a_candidate_pool_returns_pool_items() -> None:
    g = torch.Generator().manual_seed(1)
    q, w, b = torch.randn(4, 5, generator=g), torch.randn(500, 5, generator=g), torch.zeros(500)
    pool = torch.tensor(sorted(np.random.default_rng(1).choice(500, 60, replace=False)))
    seen = Exclusions.from_lists([[0, 1], [], [59], [3]])  # positions in the pool
    values, ids = chunked_topk(q, _chunks(w, b, 16, pool), 5, seen, block=64)
    ref_v, ref_pos = dense_topk(q @ w[pool].T, 5, seen)
    torch.testing.assert_close(values, ref_v)
    assert torch.equal(ids, pool[ref_pos])


def test_chunked_logsumexp_and_gumbel_sampling_are_exact() -> None:
    g = torch.Generator().manual_seed(2)
    q, w, b = (
        torch.randn(3, 4, generator=g),
        torch.randn(300, 4, generator=g),
        torch.randn(300, generator=g),
    )
    seen = Exclusions.from_lists([[1, 2], [], [299]])
    dense = q @ w.T + b
    dense[0, [1, 2]] = float("-inf")
    dense[2, 299] = float("-inf")
    torch.testing.assert_close(
        chunked_logsumexp(q, _chunks(w, b, 32), seen, block=48), dense.logsumexp(1)
    )
    # one pass: the log-partition and the softmax-weighted mean item vector (its gradient),
    # also when the running maximum jumps by far more than exp's range between chunks
    for scale, block in itertools.product((1.0, 60.0), (1 << 19, 32)):
        lse, mean = chunked_softmax_item_mean(q * scale, _chunks(w, b, 32), block=block)
        full = (q * scale) @ w.T + b
        torch.testing.assert_close(lse, full.logsumexp(1))
        torch.testing.assert_close(mean, torch.softmax(full, 1) @ w)
    small_q, small_w = torch.tensor([[1.0]]), torch.tensor([[0.0], [1.0], [2.0]])
    gen = torch.Generator().manual_seed(0)
    draws = [
        int(chunked_sample(small_q, _chunks(small_w, torch.zeros(3), 2), gen)[0])
        for _ in range(6000)
    ]
    freq = np.bincount(draws, minlength=3) / len(draws)
    never = Exclusions.from_lists([[2]])  # the likeliest item (p = 0.67) is excluded
    kept = [
        int(chunked_sample(small_q, _chunks(small_w, torch.zeros(3), 2), gen, never)[0])
        for _ in range(50)
    ]
    assert set(kept) == {0, 1}
    np.testing.assert_allclose(
        freq, torch.softmax(torch.tensor([0.0, 1.0, 2.0]), 0).numpy(), atol=0.02
    )


# -- the agents at catalogue scale (the catalogue path forced on a tiny problem) ---------------
CAT = CatalogueConfig(
    min_actions=1, dim=8, id_rows=4, hash_buckets=8, field_buckets=4, negatives=16
)
TRANSFORMER = EncoderConfig(kind="transformer", d_model=16, n_heads=2, n_layers=1, history_len=4)


def _spec(t) -> ProblemSpec:  # type: ignore[no-untyped-def]
    n = t.n_actions
    g = np.random.default_rng(0)
    codes = g.integers(-1, 20, size=(n, len(CODE_FIELDS)))
    numeric = g.standard_normal((n, len(NUMERIC_FIELDS))).astype(np.float32)
    spec = ProblemSpec.from_transitions(t)
    return ProblemSpec(
        spec.n_actions, spec.obs_dim, None, spec.video_ids, spec.item_counts, codes, numeric
    )


@pytest.mark.parametrize("algo", ["iql", "bc", "dqn", "cql"])
@pytest.mark.parametrize("encoder", ["mlp", "transformer"])
def test_agents_train_at_catalogue_scale_without_scoring_every_item(
    algo: str, encoder: str, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    t = tiny_transitions(80)
    enc = EncoderConfig(hidden=(32,)) if encoder == "mlp" else TRANSFORMER
    config = ALGOS[algo](catalogue=CAT, encoder=enc, batch_size=16, device="cpu")
    agent = config.create(_spec(t))
    heads = [m for m in agent.modules() if isinstance(m, CatalogueScorer)]
    assert heads, "the catalogue head is used"

    def no_full_scores(self, h):  # type: ignore[no-untyped-def]
        raise AssertionError("training scored every item")

    with monkeypatch.context() as m:
        m.setattr(CatalogueScorer, "forward", no_full_scores)
        result = agent.fit(t, steps=5, trainer=TrainerConfig(progress=False, tensorboard=False))
    assert result.steps == 5 and all(np.isfinite(v) for v in result.metrics.values())
    obs = torch.as_tensor(t.obs[:3].astype(np.float32))
    from noetik.agents.networks.encoders import History

    hist = History.from_numpy(t.history(np.arange(3), 4)) if encoder != "mlp" else None
    scores = agent.scores(obs, hist)
    assert scores.shape == (3, t.n_actions)
    # serving never builds (B, A) and gives the dense answer: top-k with exclusions, argmax
    seen = serving.seen_exclusions(np.array([0, 1, 3]), t.user_id, t.action)
    for r in range(3):  # each user's seen actions, all of them, in order
        row = seen.indices[seen.indptr[r] : seen.indptr[r + 1]]
        assert (np.diff(row) >= 0).all() and len(row) == (t.user_id == [0, 1, 3][r]).sum()
    values, ids = serving.top_k(agent, obs, hist, 5, exclude=seen)
    ref_v, ref_i = dense_topk(scores, 5, seen)
    assert torch.equal(ids, ref_i)
    torch.testing.assert_close(values, ref_v)
    assert torch.equal(agent.act(obs, hist), scores.argmax(-1))
    actions = torch.tensor([2, 0, 5])
    torch.testing.assert_close(
        agent.action_scores(obs, hist, actions), scores.gather(1, actions[:, None])[:, 0]
    )
    lse = serving.log_partition(agent, obs, hist)
    torch.testing.assert_close(lse, scores.logsumexp(-1))
    # the saved agent reloads with the same content tables and gives the same scores
    agent.save(tmp_path / "a")
    again = type(agent).load(tmp_path / "a")
    torch.testing.assert_close(again.scores(obs, hist), scores)


def test_item_tables_share_memory_and_keep_ids_for_frequent_items_only() -> None:
    t = tiny_transitions(200)
    spec = _spec(t)
    tables = ItemTables.of(spec, CAT)
    assert ItemTables.of(spec, CAT) is tables
    counts = spec.item_counts
    assert counts is not None
    own = tables.tables["id_row"][:-1] < CAT.id_rows
    frequent = np.argsort(-counts, kind="stable")[: CAT.id_rows]
    assert set(np.flatnonzero(own.numpy())) == {int(a) for a in frequent if counts[a] >= 2}
    agent = ALGOS["iql"](catalogue=CAT, encoder=EncoderConfig(hidden=(32,)), device="cpu").create(
        spec
    )
    n_params = sum(p.numel() for p in agent.parameters())
    bigger = ProblemSpec(
        spec.n_actions * 50,
        spec.obs_dim,
        None,
        None,
        np.tile(counts, 50),
        np.tile(spec.item_codes, (50, 1)),
        np.tile(spec.item_numeric, (50, 1)),  # type: ignore[arg-type]
    )
    big_agent = ALGOS["iql"](
        catalogue=CAT, encoder=EncoderConfig(hidden=(32,)), device="cpu"
    ).create(bigger)
    assert sum(p.numel() for p in big_agent.parameters()) == n_params  # not O(A)


def test_catalogue_scale_refuses_what_needs_every_logit() -> None:
    t = tiny_transitions(40)
    with pytest.raises(ConfigError, match="label_smoothing"):
        ALGOS["bc"](catalogue=CAT, label_smoothing=0.1, device="cpu").create(_spec(t))


def test_a_stage_that_does_not_fit_stops_with_one_line(
    monkeypatch: pytest.MonkeyPatch, tiny_pure, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    monkeypatch.setenv("NOETIK_MEMORY_LIMIT_GB", "0.000001")
    from noetik.errors import OutOfMemoryPlan
    from noetik.utils.memory import require

    with pytest.raises(
        OutOfMemoryPlan, match=r"^x: needs about 1.0 GB, .* available; lower it with y$"
    ):
        require(1024**3, "x", "y")
    env = {**__import__("os").environ, "NOETIK_MEMORY_LIMIT_GB": "0.000001"}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "noetik",
            "train",
            "bc",
            "--data",
            str(tiny_pure),
            "--steps",
            "2",
            "--out",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert out.returncode == 2, out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "needs about" in lines[0] and "lower it with" in lines[0], out.stderr
    assert "Traceback" not in out.stderr


def test_item_scores_of_a_pool_equal_the_columns_of_every_score() -> None:
    from noetik.agents.networks.encoders import History

    t = tiny_transitions(80)
    spec = ProblemSpec.from_transitions(t)
    popular = ALGOS["popular"](device="cpu", encoder=TRANSFORMER).create(spec)
    popular.fit(t, steps=1, trainer=TrainerConfig(progress=False, tensorboard=False))
    obs = torch.as_tensor(t.obs[:6].astype(np.float32))
    hist = History.from_numpy(t.history(np.arange(6), 4))
    pool = torch.tensor([6, 3, 0, 5, 1])
    full = popular.scores(obs, hist)
    torch.testing.assert_close(popular.item_scores(obs, hist, pool), full[:, pool])
    random = ALGOS["random"](device="cpu").create(spec)
    assert random.item_scores(obs, None, pool).shape == (6, 5)
    iql = ALGOS["iql"](catalogue=CAT, encoder=EncoderConfig(hidden=(32,)), device="cpu").create(
        _spec(t)
    )
    iql.eval()
    torch.testing.assert_close(iql.item_scores(obs, None, pool), iql.scores(obs)[:, pool])


@pytest.mark.parametrize("encoder", ["mlp", "transformer"])
def test_action_log_probs_and_their_input_gradients_equal_the_dense_ones(encoder: str) -> None:
    from noetik.agents.networks.encoders import History

    t = tiny_transitions(80)
    enc = EncoderConfig(hidden=(32,)) if encoder == "mlp" else TRANSFORMER
    agent = ALGOS["iql"](catalogue=CAT, encoder=enc, device="cpu").create(_spec(t))
    agent.fit(t, steps=3, trainer=TrainerConfig(progress=False, tensorboard=False))
    agent.eval()
    hist = History.from_numpy(t.history(np.arange(4), 4)) if encoder != "mlp" else None
    actions = torch.tensor([1, 4, 0, 2])
    obs = torch.as_tensor(t.obs[:4].astype(np.float32)).requires_grad_(True)
    fast = agent.action_log_probs(obs, hist, actions)
    (g_fast,) = torch.autograd.grad(fast.sum(), obs)
    obs2 = obs.detach().clone().requires_grad_(True)
    dense = torch.log_softmax(agent.scores(obs2, hist), -1).gather(1, actions[:, None])[:, 0]
    (g_dense,) = torch.autograd.grad(dense.sum(), obs2)
    torch.testing.assert_close(fast, dense, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(g_fast, g_dense, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("algo", ["iql", "dqn"])
def test_cached_item_matrices_are_per_critic_and_follow_the_weights(algo: str) -> None:
    t = tiny_transitions(80)
    extra = {"n_critics": 2} if algo == "dqn" else {}
    config = ALGOS[algo](catalogue=CAT, encoder=EncoderConfig(hidden=(32,)), device="cpu", **extra)
    agent = config.create(_spec(t))
    obs = torch.as_tensor(t.obs[:3].astype(np.float32))
    every = torch.arange(t.n_actions)

    def one_by_one() -> torch.Tensor:  # scores each action alone (never the cached matrices)
        rows = [agent.q_values(obs, None, torch.full((3,), int(a))) for a in every]
        return torch.stack(rows, 1)

    for _ in range(2):  # before and after training: the cache follows the weights
        agent.eval()
        with torch.no_grad():
            torch.testing.assert_close(agent.q_values(obs), one_by_one())
            torch.testing.assert_close(agent.q_values(obs), one_by_one())  # from the cache
        agent.train()
        agent.fit(t, steps=3, trainer=TrainerConfig(progress=False, tensorboard=False))


def test_loading_weights_drops_the_cached_item_matrices() -> None:
    t = tiny_transitions(80)
    config = ALGOS["iql"](catalogue=CAT, encoder=EncoderConfig(hidden=(32,)), device="cpu")
    agent = config.create(_spec(t))
    other = config.replace(seed=1).create(agent.spec)
    obs = torch.as_tensor(t.obs[:3].astype(np.float32))
    agent.eval()
    with torch.no_grad():
        before = agent.scores(obs)
        agent.load_state_dict(other.state_dict())  # in eval mode, in place
        after = agent.scores(obs)
    other.eval()
    with torch.no_grad():
        torch.testing.assert_close(after, other.scores(obs))
    assert not torch.allclose(before, after)
