"""Random-log lens: hand-computed ranking metrics, scorers, states without leakage, real data."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from noetik.agents.algorithms.bc import BCConfig
from noetik.agents.core.base import ProblemSpec
from noetik.agents.core.trainer import TrainerConfig
from noetik.agents.networks.encoders import EncoderConfig, History
from noetik.data.dataset import KuaiRandDataset, load_kuairand
from noetik.data.features import STATE_SLICES
from noetik.data.state_layout import CUM_SIGNALS
from noetik.data.transitions import Transitions, build_transitions
from noetik.errors import ConfigError, DataError
from noetik.evaluation.random_log import (
    RandomLog,
    RandomLogConfig,
    RowHistory,
    agent_scorer,
    evaluate_random_log,
    load_random_log,
    metrics_table,
    popularity_scorer,
    random_scorer,
    ranking_metrics,
    score_random_log,
)
from noetik.simulators.kuairand.examples import random_log_users, split_random_users
from noetik.utils.bootstrap import bootstrap_means
from tests.tiny import tiny_log

QUIET = TrainerConfig(progress=False, tensorboard=False, log_every=1000)
SMALL = EncoderConfig(hidden=(32,))
T0 = 1_650_000_000_000
D = [1.0 / math.log2(p + 2) for p in range(10)]  # DCG discount of 0-based position p


# -- ranking_metrics by hand -----------------------------------------------------------------------


def test_ranking_metrics_by_hand_with_ties() -> None:
    # user 0: scores 3 > 2 = 2 > 1, labels 0, 1, 0, 1 (a tie between a positive and a negative)
    # user 1: no positive; user 2: a tied pair 1/0; user 3: only positives. Rows interleaved.
    user = np.array([2, 0, 3, 0, 1, 0, 3, 2, 0, 3])
    score = np.array([5.0, 3, 1, 2, 0, 2, 1, 5, 1, 1])
    label = np.array([1, 0, 1, 1, 0, 0, 1, 0, 1, 1])
    users, m = ranking_metrics(user, score, label, ks=(1, 2, 4))
    assert users.tolist() == [0, 1, 2, 3]
    # AUC u0: (p=2 vs n=3) 0, (2 vs 2) 1/2, (1 vs 3) 0, (1 vs 2) 0 -> 0.5 / 4; u2: one tie -> 1/2
    np.testing.assert_allclose(m["auc"], [0.125, np.nan, 0.5, np.nan])
    # NDCG@2 u0: the tied positive sits at position 1 or 2 (prob 1/2 each): E[DCG] = D1 / 2
    idcg2 = D[0] + D[1]
    np.testing.assert_allclose(m["ndcg@2"], [D[1] / 2 / idcg2, np.nan, (D[0] + D[1]) / 2, 1.0])
    np.testing.assert_allclose(m["recall@2"], [0.5 / 2, np.nan, 1.0, 2 / 3])
    np.testing.assert_allclose(
        m["ndcg@4"], [((D[1] + D[2]) / 2 + D[3]) / idcg2, np.nan, (D[0] + D[1]) / 2, 1.0]
    )
    np.testing.assert_allclose(m["recall@4"], [1.0, np.nan, 1.0, 1.0])
    np.testing.assert_allclose(m["ndcg@1"], [0.0, np.nan, 0.5, 1.0])
    np.testing.assert_allclose(m["recall@1"], [0.0, np.nan, 0.5, 1 / 3])


def _brute_force(score: np.ndarray, label: np.ndarray, k: int) -> tuple[float, float, float]:
    """AUC over all pairs (ties 1/2) and NDCG@k / recall@k averaged over all tie orders."""
    pos, neg = score[label == 1], score[label == 0]
    auc = float(np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg]))
    orders = [
        o
        for o in itertools.permutations(range(len(score)))
        if all(score[a] >= score[b] for a, b in itertools.pairwise(o))
    ]
    idcg = sum(D[: min(k, int(label.sum()))])
    ndcg = np.mean([sum(D[p] * label[i] for p, i in enumerate(o[:k])) / idcg for o in orders])
    recall = np.mean([label[list(o[:k])].sum() / label.sum() for o in orders])
    return auc, float(ndcg), float(recall)


def test_ranking_metrics_match_brute_force_over_tie_orders() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(2, 7))
        score = rng.integers(0, 3, size=n).astype(np.float64)
        label = rng.integers(0, 2, size=n)
        label[0], label[1] = 1, 0
        _, m = ranking_metrics(np.zeros(n, dtype=np.int64), score, label, ks=(2,))
        auc, ndcg, recall = _brute_force(score, label, 2)
        assert m["auc"][0] == pytest.approx(auc)
        assert m["ndcg@2"][0] == pytest.approx(ndcg)
        assert m["recall@2"][0] == pytest.approx(recall)


def test_perfect_reversed_and_random_scores() -> None:
    rng = np.random.default_rng(1)
    user = np.repeat(np.arange(2000), 30)
    label = (rng.random(len(user)) < 0.3).astype(np.int64)
    _, perfect = ranking_metrics(user, label + 0.5 * rng.random(len(user)), label, ks=(5,))
    _, reverse = ranking_metrics(user, -label.astype(np.float64), label, ks=(5,))
    assert np.nanmin(perfect["auc"]) == 1.0 and np.nanmax(reverse["auc"]) == 0.0
    assert np.nanmin(perfect["ndcg@5"]) == pytest.approx(1.0)
    _, chance = ranking_metrics(user, rng.random(len(user)), label, ks=(5,))
    assert np.nanmean(chance["auc"]) == pytest.approx(0.5, abs=0.01)
    with pytest.raises(ValueError, match="NaN"):
        ranking_metrics(user[:2], np.array([0.0, np.nan]), label[:2])


def user_bootstrap(
    values: dict[str, np.ndarray], n_boot: int, seed: int
) -> dict[str, dict[str, float]]:
    """The lens's interval over users: the one bootstrap, as ``{"mean", "low", "high"}``."""
    boot = bootstrap_means(values, n_boot=n_boot, seed=seed)
    return {name: estimate.as_dict() for name, estimate in boot.items()}


def test_user_bootstrap_is_seeded_and_skips_undefined_users() -> None:
    values = {"a": np.array([0.0, 1.0, np.nan, 1.0]), "b": np.full(4, 2.0)}
    out = user_bootstrap(values, n_boot=500, seed=3)
    assert out["a"]["mean"] == pytest.approx(2 / 3)
    assert out["b"] == {"mean": 2.0, "low": 2.0, "high": 2.0}
    assert out["a"]["low"] == 0.0 and out["a"]["high"] == 1.0
    # 400 users: the interval is close to the normal one, mean +- 1.96 sd / sqrt(n)
    x = np.random.default_rng(0).random(400)
    x[::10] = np.nan
    big = user_bootstrap({"x": x}, n_boot=2000, seed=1)["x"]
    half = 1.96 * np.nanstd(x) / math.sqrt(360)
    assert big["mean"] == pytest.approx(np.nanmean(x))
    assert big["low"] == pytest.approx(big["mean"] - half, abs=0.004)
    assert big["high"] == pytest.approx(big["mean"] + half, abs=0.004)
    assert user_bootstrap({"x": x}, n_boot=2000, seed=1)["x"] == big
    assert user_bootstrap({"x": x}, n_boot=2000, seed=2)["x"]["low"] != big["low"]


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ConfigError, match="ks"):
        RandomLogConfig(ks=(0,))
    with pytest.raises(ConfigError, match="signals"):
        RandomLogConfig(signals=("watch_ratio",))


# -- the lens on tiny hand-made files --------------------------------------------------------------


@pytest.fixture
def tiny_ds(tiny_pure: Path, cache_dir: Path) -> KuaiRandDataset:
    """The tiny release with a random log of 12 rows, each 30 s after a standard row:
    user j % 4 is shown video j % 6 at T0 + 30 s + j min, clicked when j % 3 == 0.

    Both standard files hold the same 12 rows (user i % 4, video i % 6 at T0 + i min, clicked
    when i % 3 == 0), so every standard row appears twice in the standard log."""
    tiny_log(rows=12, is_rand=1, start_ms=T0 + 30_000).write_csv(
        tiny_pure / "log_random_4_22_to_5_08_pure.csv"
    )
    return load_kuairand(tiny_pure, cache_dir=cache_dir)


CLICK = RandomLogConfig(ks=(1, 3), signals=("is_click",), n_boot=200)


def test_states_and_history_use_only_earlier_rows(tiny_ds: KuaiRandDataset) -> None:
    log = load_random_log(tiny_ds)
    assert log.user_id.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert log.video_id[:3].tolist() == [0, 4, 2]
    cum_click = STATE_SLICES["hist.cum_mean"].start + CUM_SIGNALS.index("is_click")
    # user 0 before random row j=4: standard 0 (click, twice), random 0 (click), standard 4
    # (twice) -> 3/5; before j=8: those, random 4 and standard 8 (twice) -> 3/8. The row's own
    # click never counts (with it: 3/6 and 3/9).
    np.testing.assert_allclose(log.obs[:3, cum_click], [1.0, 3 / 5, 3 / 8], atol=1e-3)
    seen: list[RowHistory] = []

    class Capture:
        history_len = 4

        def __call__(
            self, obs: np.ndarray, history: RowHistory | None, ids: np.ndarray
        ) -> np.ndarray:
            assert history is not None
            seen.append(history)
            return np.zeros(len(ids), dtype=np.float32)

    score_random_log(Capture(), log, batch_size=3)
    first = seen[0]
    assert first.video_ids.tolist() == [[-1, -1, 0, 0], [0, 0, 4, 4], [4, 4, 2, 2]]
    assert first.mask[0].tolist() == [False, False, True, True]
    np.testing.assert_allclose(first.gap_s[0], [0, 0, 30, 30])
    np.testing.assert_allclose(first.gap_s[2], [270, 240, 30, 30])
    np.testing.assert_allclose(first.signals[1, :, 0], [1, 1, 0, 0])  # is_click of the past


def test_popularity_on_tiny_log_by_hand(tiny_ds: KuaiRandDataset) -> None:
    train = build_transitions(tiny_ds)
    # every video was shown 4 times in the standard log: all tied, 1 click among 3 per user
    ties = evaluate_random_log(popularity_scorer(train), tiny_ds, CLICK)
    assert ties["click_auc"] == {"mean": 0.5, "low": 0.5, "high": 0.5}
    assert ties["click_ndcg@1"]["mean"] == pytest.approx(1 / 3)
    assert ties["click_ndcg@3"]["mean"] == pytest.approx((D[0] + D[1] + D[2]) / 3)
    assert ties["click_recall@1"]["mean"] == pytest.approx(1 / 3)
    assert ties["n_users"]["mean"] == 4 and ties["n_impressions"]["mean"] == 12
    # standard clicks hit videos 0 and 3 only; each user's clicked random video is 0 or 3
    clicks = evaluate_random_log(popularity_scorer(train, "is_click"), tiny_ds, CLICK)
    assert clicks["click_auc"] == {"mean": 1.0, "low": 1.0, "high": 1.0}
    assert clicks["click_ndcg@1"]["mean"] == 1.0


def test_bc_agent_end_to_end_on_tiny_log(tiny_ds: KuaiRandDataset) -> None:
    train = build_transitions(tiny_ds)
    config = BCConfig(seed=0, device="cpu", batch_size=32, encoder=SMALL)
    agent = config.create(ProblemSpec.from_transitions(train))
    agent.fit(train, steps=20, trainer=QUIET)
    log = load_random_log(tiny_ds)
    result = evaluate_random_log(agent_scorer(agent), log, CLICK)
    with torch.no_grad():
        all_scores = agent.scores(torch.as_tensor(log.obs, dtype=torch.float32)).numpy()
    direct = all_scores[np.arange(12), log.video_id]  # tiny actions are the video ids 0..5
    users, m = ranking_metrics(log.user_id, direct, log.signals[:, 0], ks=(1, 3))
    assert result["click_auc"]["mean"] == pytest.approx(np.nanmean(m["auc"]), abs=1e-6)
    assert result["click_ndcg@3"]["mean"] == pytest.approx(np.nanmean(m["ndcg@3"]), abs=1e-6)
    assert result["n_unknown"]["mean"] == 0 and len(users) == 4


def test_agent_scorer_maps_videos_and_history(tiny_ds: KuaiRandDataset) -> None:
    spec = ProblemSpec(n_actions=3, video_ids=np.array([2, 0, 1]))  # action a shows video ids[a]
    transformer = EncoderConfig(kind="transformer", d_model=8, n_heads=2, n_layers=1, history_len=4)
    agent = BCConfig(seed=0, device="cpu", encoder=transformer).create(spec)
    scorer = agent_scorer(agent)
    assert scorer.history_len == 4
    obs = np.random.default_rng(0).random((2, 128), dtype=np.float32)
    mask = np.array([[False, True, True, True]] * 2)
    ones = np.ones((2, 4, 12), np.float32)
    hist = RowHistory(np.array([[-1, 0, 5, 1]] * 2), ones, ones[:, :, 0], mask)
    got = scorer(obs, hist, np.array([1, 7]))
    expected_items = torch.tensor([[3, 1, 3, 2]] * 2)  # padding 3 for -1 and the unknown video 5
    history = History(
        expected_items, torch.ones(2, 4, 12), torch.ones(2, 4), torch.as_tensor(hist.mask)
    )
    with torch.no_grad():
        want = agent.scores(torch.as_tensor(obs), history)[0, 2].item()  # video 1 is action 2
    assert got[0] == pytest.approx(want, abs=1e-6) and got[1] == -np.inf
    # an MLP agent that knows videos 0..2 only: 6 of the 12 random impressions are unknown
    mlp = BCConfig(seed=0, device="cpu", encoder=SMALL).create(spec)
    result = evaluate_random_log(agent_scorer(mlp), tiny_ds, CLICK)
    assert result["n_unknown"]["mean"] == 6
    with pytest.raises(ConfigError, match="video_ids"):
        agent_scorer(BCConfig(device="cpu", encoder=SMALL).create(ProblemSpec(n_actions=3)))


def test_missing_users_and_scorer_shape_are_reported(tiny_ds: KuaiRandDataset) -> None:
    with pytest.raises(DataError, match="no random-log rows"):
        load_random_log(tiny_ds, users=[99])
    log = load_random_log(tiny_ds, users=[1, 3])
    assert sorted(set(log.user_id.tolist())) == [1, 3] and len(log.video_id) == 6
    with pytest.raises(ValueError, match="shape"):
        score_random_log(lambda obs, h, ids: np.zeros(1), log)


# -- built-in synthetic data -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def builtin() -> tuple[RandomLog, Transitions]:
    ds = load_kuairand()
    return load_random_log(ds), build_transitions(ds)


def test_builtin_popularity_beats_random(builtin: tuple[RandomLog, Transitions]) -> None:
    log, train = builtin
    config = RandomLogConfig(n_boot=300)
    chance = evaluate_random_log(random_scorer(0), log, config)
    popular = evaluate_random_log(popularity_scorer(train, "is_click"), log, config)
    assert chance["n_impressions"]["mean"] == len(log.video_id) > 40_000
    assert chance["click_auc"]["low"] < 0.5 < chance["click_auc"]["high"]
    assert popular["click_auc"]["low"] > chance["click_auc"]["high"]
    assert popular["click_auc"]["mean"] > 0.515
    assert popular["click_ndcg@10"]["mean"] > chance["click_ndcg@10"]["mean"]
    assert evaluate_random_log(popularity_scorer(train), log, config)["click_auc"]["mean"] > 0.505
    # same seed, same result; another seed, another result
    assert evaluate_random_log(random_scorer(0), log, config) == chance
    other = evaluate_random_log(random_scorer(1), log, config)
    assert other["click_auc"]["mean"] != chance["click_auc"]["mean"]


def test_metrics_table_of_perfect_and_reversed_scores(
    builtin: tuple[RandomLog, Transitions],
) -> None:
    log, _ = builtin
    click = log.signals[:, 0]
    config = RandomLogConfig(signals=("is_click",), n_boot=50)
    perfect = metrics_table(log.user_id, click, {"is_click": click}, config)
    reverse = metrics_table(log.user_id, -click, {"is_click": click}, config)
    assert perfect["click_auc"] == {"mean": 1.0, "low": 1.0, "high": 1.0}
    assert perfect["click_ndcg@10"]["mean"] == pytest.approx(1.0)
    assert reverse["click_auc"] == {"mean": 0.0, "low": 0.0, "high": 0.0}
    n_auc = perfect["click_auc_users"]["mean"]
    per_user = np.bincount(np.unique(log.user_id, return_inverse=True)[1], click)
    counts = np.bincount(np.unique(log.user_id, return_inverse=True)[1])
    assert n_auc == np.count_nonzero((per_user > 0) & (per_user < counts))


# -- the real KuaiRand sample ----------------------------------------------------------------------


def _without(t: Transitions, users: np.ndarray) -> Transitions:
    keep = ~np.isin(t.user_id.astype(np.int64), users)
    fields = ("obs", "action", "reward", "done", "episode_id", "step", "user_id", "time_ms")
    kept = {name: getattr(t, name)[keep] for name in (*fields, "signals")}
    next_index = (np.cumsum(keep) - 1)[t.next_index[keep]]
    return Transitions(**kept, next_index=next_index, vocab=t.vocab, reward_config=t.reward_config)


def test_real_sample_agent_beats_random(real_sample: Path, cache_dir: Path) -> None:
    ds = load_kuairand(real_sample, cache_dir=cache_dir)
    _, held = split_random_users(random_log_users(ds), 0.7)
    assert held.min() == 350 and held.max() == 499
    train = _without(build_transitions(ds), held)
    assert not np.isin(train.user_id, held).any()
    agent = BCConfig(seed=0, device="cpu", encoder=EncoderConfig(hidden=(64,))).create(
        ProblemSpec.from_transitions(train)
    )
    agent.fit(train, steps=200, trainer=QUIET)
    log = load_random_log(ds, users=held)
    config = RandomLogConfig(n_boot=200)
    bc = evaluate_random_log(agent_scorer(agent), log, config)
    chance = evaluate_random_log(random_scorer(0), log, config)
    assert bc["n_users"]["mean"] == 150 and bc["n_unknown"]["mean"] == 0
    assert bc["click_auc"]["mean"] > chance["click_auc"]["mean"]
    assert bc["click_auc"]["low"] > 0.5
