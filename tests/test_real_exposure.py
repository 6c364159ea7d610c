"""The real_exposure lens: known answers, π over the pool, determinism, unbiasedness."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from noetik.agents.algorithms.bc import BCConfig
from noetik.agents.core.base import ProblemSpec
from noetik.agents.networks.encoders import EncoderConfig
from noetik.data.rewards import SIGNALS, RewardConfig
from noetik.data.schema import FileKind
from noetik.errors import ConfigError
from noetik.evaluation.random_log import RandomLog, RowHistory
from noetik.evaluation.real_exposure import (
    RealExposureConfig,
    constant_scorer,
    evaluate_real_exposure,
    exposure_estimates,
    low_ess_note,
    pool_policy,
    pool_scorer,
    target_weights,
)

POOL = np.array([10, 20, 30], dtype=np.int64)


class FixedScores:
    """A pool scorer giving every row the same ``scores`` (P,)."""

    history_len, pool_scores = 0, True

    def __init__(self, scores: list[float]) -> None:
        self.scores = np.asarray(scores, dtype=np.float32)

    def __call__(self, obs: np.ndarray, history: RowHistory | None, pool: np.ndarray) -> Any:
        return np.tile(self.scores, (len(obs), 1))


def hand_log(videos: list[int], clicks: list[int], users: list[int]) -> RandomLog:
    """A random log of len(videos) impressions (no context: scorers must not need history)."""
    n = len(videos)
    signals = np.zeros((n, len(SIGNALS)), dtype=np.float32)
    signals[:, SIGNALS.index("is_click")] = clicks
    signals[:, SIGNALS.index("watch_ratio")] = 0.5
    return RandomLog(
        obs=np.zeros((n, 128), dtype=np.float16),
        user_id=np.asarray(users, dtype=np.int64),
        video_id=np.asarray(videos, dtype=np.int64),
        signals=signals,
        rows=np.arange(n, dtype=np.int64),
        context=None,  # type: ignore[arg-type]
    )


CLICK = RealExposureConfig(signals=("is_click",), n_boot=200)


def test_hand_built_log_known_answers() -> None:
    # softmax of (0, ln 2, ln 3): π = (1/6, 2/6, 3/6), weights π · 3 = (0.5, 1, 1.5)
    log = hand_log([10, 10, 30], [1, 0, 1], [1, 1, 2])
    scorer = FixedScores([0.0, np.log(2.0), np.log(3.0)])
    w = target_weights(scorer, log, POOL, CLICK)
    np.testing.assert_allclose(w, [0.5, 0.5, 1.5], rtol=1e-6)
    lens = evaluate_real_exposure(scorer, log, CLICK, pool=POOL)
    assert lens["click_is"]["mean"] == pytest.approx(2.0 / 3.0, rel=1e-6)  # (0.5 + 1.5) / 3
    assert lens["click_snips"]["mean"] == pytest.approx(0.8, rel=1e-6)  # 2 / 2.5
    assert lens["click_logged"]["mean"] == pytest.approx(2.0 / 3.0)
    assert lens["click_gain"]["mean"] == pytest.approx(0.0, abs=1e-6)  # IS − logged
    assert lens["ess"]["mean"] == pytest.approx(6.25 / 2.75, rel=1e-6)
    assert lens["n_rows"]["mean"] == 3 and lens["n_users"]["mean"] == 2
    assert lens["pool_size"]["mean"] == 3
    # the default reward 0.5 * click + 0.5 * watch_ratio (0.5 on every row)
    assert lens["reward_is"]["mean"] == pytest.approx((0.5 * 0.75 + 0.5 * 0.25 + 1.5 * 0.75) / 3)
    liked = evaluate_real_exposure(
        scorer, log, CLICK, pool=POOL, reward=RewardConfig((("is_click", 2.0),))
    )
    assert liked["reward_snips"]["mean"] == pytest.approx(1.6, rel=1e-6)
    for name in ("click_is", "click_snips"):
        assert lens[name]["low"] <= lens[name]["mean"] <= lens[name]["high"]


def test_greedy_and_epsilon_greedy_weights() -> None:
    log = hand_log([10, 10, 30], [1, 0, 1], [1, 1, 2])
    scorer = FixedScores([0.0, 1.0, 2.0])
    greedy = RealExposureConfig(policy="greedy", signals=("is_click",), n_boot=50)
    np.testing.assert_allclose(target_weights(scorer, log, POOL, greedy), [0.0, 0.0, 3.0])
    lens = evaluate_real_exposure(scorer, log, greedy, pool=POOL)
    assert lens["click_is"]["mean"] == pytest.approx(1.0) and lens["ess"]["mean"] == 1.0
    assert "effective sample size 1.0 < 1000" in str(low_ess_note(lens))
    assert low_ess_note({"ess": {"mean": 1500.0, "low": 1500.0, "high": 1500.0}}) is None
    eps = RealExposureConfig(policy="epsilon_greedy", epsilon=0.1, n_boot=50)
    np.testing.assert_allclose(target_weights(scorer, log, POOL, eps), [0.1, 0.1, 2.8])
    # ties split evenly under greedy: two best videos get 1/2 each
    tied = pool_policy(np.array([[1.0, 1.0, 0.0]]), greedy)
    np.testing.assert_allclose(tied, [[0.5, 0.5, 0.0]])


def test_unknown_videos_get_no_mass_and_errors() -> None:
    soft = RealExposureConfig()
    probs = pool_policy(np.array([[-np.inf, np.log(2.0), np.log(3.0)]] * 2), soft)
    np.testing.assert_allclose(probs, [[0.0, 0.4, 0.6]] * 2)
    eps = RealExposureConfig(policy="epsilon_greedy", epsilon=0.1)
    probs = pool_policy(np.array([[-np.inf, 0.0, 1.0]]), eps)
    np.testing.assert_allclose(probs, [[0.0, 0.05, 0.95]])
    with pytest.raises(ConfigError, match="knows no video"):
        pool_policy(np.full((2, 3), -np.inf), soft)
    with pytest.raises(ConfigError, match="differ between rows"):
        pool_policy(np.array([[-np.inf, 0.0, 1.0], [0.0, -np.inf, 1.0]]), soft)
    with pytest.raises(ConfigError, match="outside the exposure pool"):
        target_weights(FixedScores([0, 0, 0]), hand_log([10, 40], [0, 1], [1, 1]), POOL, soft)
    with pytest.raises(ConfigError, match="policy"):
        RealExposureConfig(policy="argmax")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="pool"):
        evaluate_real_exposure(FixedScores([0, 0, 0]), hand_log([10], [0], [1]), soft)


def test_defaults_evaluate_the_ope_lens_policy() -> None:
    from noetik.evaluation.ope.logged import LoggedOPEConfig

    ours, ope = RealExposureConfig(), LoggedOPEConfig()
    assert (ours.policy, ours.temperature, ours.epsilon) == (
        ope.policy,
        ope.temperature,
        ope.epsilon,
    )


def test_uniform_policy_has_unit_weights_and_equals_the_logged_mean() -> None:
    rng = np.random.default_rng(3)
    n = 400
    log = hand_log(
        list(rng.choice(POOL, n)), list(rng.integers(0, 2, n)), list(rng.integers(0, 40, n))
    )
    for policy in ("softmax", "greedy"):
        config = RealExposureConfig(policy=policy, n_boot=100)  # type: ignore[arg-type]
        np.testing.assert_allclose(target_weights(constant_scorer(), log, POOL, config), 1.0)
        lens = evaluate_real_exposure(constant_scorer(), log, config, pool=POOL)
        for name in ("click", "reward", "long_view"):
            for key in ("mean", "low", "high"):
                assert lens[f"{name}_is"][key] == pytest.approx(lens[f"{name}_logged"][key])
        assert lens["ess_fraction"]["mean"] == pytest.approx(1.0)
        assert lens["click_gain"] == {"mean": 0.0, "low": 0.0, "high": 0.0}


def test_seeded_intervals_are_deterministic() -> None:
    rng = np.random.default_rng(0)
    user, w, y = rng.integers(0, 30, 300), rng.exponential(1.0, 300), rng.integers(0, 2, 300)
    a = exposure_estimates(user, w, {"click": y}, RealExposureConfig(n_boot=200, seed=4))
    b = exposure_estimates(user, w, {"click": y}, RealExposureConfig(n_boot=200, seed=4))
    c = exposure_estimates(user, w, {"click": y}, RealExposureConfig(n_boot=200, seed=5))
    assert a == b and a["click_is"]["low"] != c["click_is"]["low"]
    assert a["click_is"]["mean"] == pytest.approx(np.mean(w * y))
    assert a["click_snips"]["mean"] == pytest.approx(np.sum(w * y) / np.sum(w))
    gain = a["click_gain"]
    assert gain["mean"] == pytest.approx(np.mean(w * y) - np.mean(y))
    assert gain["low"] <= gain["mean"] <= gain["high"]


def test_agent_pool_scores_match_the_agents_own_scores() -> None:
    spec = ProblemSpec(n_actions=3, video_ids=np.array([20, 10, 99]))  # video 30 unknown
    agent = BCConfig(seed=0, device="cpu", encoder=EncoderConfig(hidden=(16,))).create(spec)
    obs = np.random.default_rng(1).random((4, 128), dtype=np.float32)
    got = pool_scorer(agent)(obs, None, POOL)
    with torch.no_grad():
        want = agent.scores(torch.as_tensor(obs)).numpy()
    np.testing.assert_allclose(got[:, 0], want[:, 1], rtol=1e-5)  # video 10 is action 1
    np.testing.assert_allclose(got[:, 1], want[:, 0], rtol=1e-5)  # video 20 is action 0
    assert np.isneginf(got[:, 2]).all()
    probs = pool_policy(got, RealExposureConfig())
    expect = torch.softmax(torch.as_tensor(want[:, [1, 0]], dtype=torch.float64), 1).numpy()
    np.testing.assert_allclose(probs[:, :2], expect, rtol=1e-6)
    # a per-impression scorer asked about every pool video (each row repeated over the pool)
    rows = pool_scorer(lambda o, h, v: v.astype(np.float32) + o[:, 0])(obs, None, POOL)
    np.testing.assert_allclose(rows, POOL[None, :] + obs[:, :1], rtol=1e-6)


def test_tiny_dataset_lens(tmp_path: Path) -> None:
    from noetik.data.dataset import load_kuairand
    from noetik.data.synthetic import SynthConfig, synthesize

    root = tmp_path / "data"
    synthesize(root, SynthConfig.for_release("pure", users=40, videos=60, seed=2))
    ds = load_kuairand(root, cache_dir=tmp_path / "cache")
    lens = evaluate_real_exposure(constant_scorer(), ds, RealExposureConfig(n_boot=50))
    assert lens["click_is"]["mean"] == pytest.approx(lens["click_logged"]["mean"])
    assert lens["pool_size"]["mean"] <= 60 and lens["n_users"]["mean"] == 40


def test_leaderboard_lens_json_and_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from noetik.cli.main import main
    from noetik.data.dataset import load_kuairand
    from noetik.reports.context import ReportInputs
    from noetik.reports.run_sections import leaderboard_section
    from noetik.simulators.kuairand.examples import random_log_users, write_random_rows

    data, cache, run = tmp_path / "data", tmp_path / "cache", tmp_path / "bc"
    assert main(["data", "synth", str(data), "--users", "40", "--videos", "80"]) == 0
    config = tmp_path / "bc.json"
    config.write_text(json.dumps({"batch_size": 32, "encoder": {"kind": "mlp", "hidden": [16]}}))
    train = ["train", "bc", "--data", str(data), "--cache", str(cache), "--steps", "3"]
    assert main([*train, "--out", str(run), "--config", str(config)]) == 0
    ds = load_kuairand(data, cache_dir=cache)
    heldout = tmp_path / "heldout.csv"
    write_random_rows(ds, random_log_users(ds)[::2], heldout)  # half the users held out
    capsys.readouterr()
    board_dir = tmp_path / "board"
    argv = ["evaluate", str(run), "--no-online", "--no-ope", "--random-log", str(heldout)]
    assert main([*argv, "--json", "--out", str(board_dir)]) == 0
    board = json.loads(capsys.readouterr().out)
    assert [e["run"] for e in board] == [str(run), "reference:popularity", "reference:random"]
    pool = ds.interactions(FileKind.LOG_RANDOM).select("video_id").unique().collect().height
    for entry in board:
        lens = entry["real_exposure"]
        assert lens["pool_size"]["mean"] == pool  # the whole random log's videos
        assert lens["n_users"]["mean"] == 20
        for name in ("click", "long_view", "reward"):
            for kind in ("is", "snips", "logged"):
                v = lens[f"{name}_{kind}"]
                assert v["low"] <= v["mean"] <= v["high"]
        assert 0.0 < lens["ess"]["mean"] <= lens["n_rows"]["mean"] + 1e-9
    uniform = board[2]["real_exposure"]
    assert uniform["click_is"]["mean"] == pytest.approx(uniform["click_logged"]["mean"])
    assert uniform["ess_fraction"]["mean"] == pytest.approx(1.0)
    assert board[1]["real_exposure"]["ess_fraction"]["mean"] < 1.0
    assert "real_exposure" in (board_dir / "leaderboard.csv").read_text()
    html = leaderboard_section(ReportInputs.read(run, leaderboard=board_dir))
    assert "Real exposure" in html and "ess" in html
    assert main([*argv, "--no-real-exposure", "--json"]) == 0
    assert all(not e["real_exposure"] for e in json.loads(capsys.readouterr().out))
    assert main(["evaluate", str(run), "--no-online", "--no-ope", "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert len(plain) == 1 and not plain[0]["real_exposure"] and not plain[0]["random_log"]
    assert main(argv) == 0  # the terminal table
    assert "real exposure: click SNIPS" in capsys.readouterr().out


@pytest.fixture(scope="module")
def synth_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, RandomLog, np.ndarray, Any]:
    """A small synthetic dataset, its random log, exposure pool and training transitions."""
    from noetik.data.dataset import load_kuairand
    from noetik.data.synthetic import SynthConfig, synthesize
    from noetik.data.transitions import build_transitions
    from noetik.evaluation.random_log import load_random_log
    from noetik.evaluation.real_exposure import exposure_pool

    root = tmp_path_factory.mktemp("rex")
    synthesize(root / "data", SynthConfig.for_release("pure", users=100, videos=200, seed=1))
    ds = load_kuairand(root / "data", cache_dir=root / "cache")
    log = load_random_log(ds)
    return ds, log, exposure_pool(ds, log), build_transitions(ds, split="train")


def test_unbiased_with_covering_intervals_on_a_synthetic_world(
    synth_log: tuple[Any, RandomLog, np.ndarray, Any],
) -> None:
    from noetik.evaluation.real_exposure_check import (
        ExposureCheckConfig,
        default_policies,
        run_exposure_check,
    )

    ds, log, pool, train = synth_log
    policies = default_policies(log, pool, train)
    del policies["popularity ε-greedy"]  # tiny ESS: the script reports it, no coverage goal
    config = ExposureCheckConfig(repeats=200, n_boot=200, seed=0)
    rows = run_exposure_check(ds, log, pool, policies, config)
    assert len(rows) == 3 * 2 * 2
    for row in rows:
        assert row["n"] == 200
        assert 0.85 <= row["coverage"] <= 0.99, row
        # unbiased: |bias| within 3 Monte-Carlo standard errors of the mean over 200 logs
        assert abs(row["bias"]) <= 3.0 * row["rmse"] / np.sqrt(200), row
    by = {(r["policy"], r["signal"], r["estimator"]): r for r in rows}
    assert by["uniform", "is_click", "IS"]["ess"] == len(log.video_id)
    # the policies differ in truth: a non-trivial check
    assert (
        by["linear softmax", "long_view", "IS"]["true"] != by["uniform", "long_view", "IS"]["true"]
    )


def test_true_rate_of_the_uniform_policy_is_the_pool_average(
    synth_log: tuple[Any, RandomLog, np.ndarray, Any],
) -> None:
    from noetik.data.synthetic import SyntheticWorld, load_config
    from noetik.evaluation.real_exposure_check import (
        CheckPolicy,
        ExposureCheckConfig,
        _hour_tab,
        run_exposure_check,
    )

    ds, log, pool, _ = synth_log
    world = SyntheticWorld.from_config(load_config(ds.root))
    hour, tab = _hour_tab(ds, log)
    p = world.click_probability(log.user_id[:, None], pool[None, :], hour[:, None], tab[:, None])
    config = ExposureCheckConfig(repeats=3, n_boot=10, seed=7)
    rows = run_exposure_check(ds, log, pool, {"u": CheckPolicy(constant_scorer())}, config)
    assert rows[0]["true"] == pytest.approx(p.mean(), rel=1e-9)
    assert rows == run_exposure_check(ds, log, pool, {"u": CheckPolicy(constant_scorer())}, config)
    other = run_exposure_check(
        ds, log, pool, {"u": CheckPolicy(constant_scorer())}, replace(config, seed=8)
    )
    assert other[0]["mean"] != rows[0]["mean"]  # seeded redraws


def test_stops_with_one_line_when_a_batch_cannot_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    from noetik.errors import OutOfMemoryPlan

    monkeypatch.setenv("NOETIK_MEMORY_LIMIT_GB", "0.000001")  # about 1 KB
    log = hand_log([10, 20, 30] * 20, [0, 1, 0] * 20, [1] * 60)
    with pytest.raises(OutOfMemoryPlan, match=r"60 rows x 3 pool videos.*batch_size"):
        target_weights(constant_scorer(), log, POOL, RealExposureConfig())


def test_a_refused_lens_is_a_note_not_a_failure() -> None:
    from noetik.evaluation.leaderboard import _real_exposure_lens

    class Refusing:
        def real_exposure_lens(self, agent: Any, task: Any) -> Any:
            raise ConfigError("real_exposure: the scorer knows no video of the exposure pool")

    entry: dict[str, Any] = {"real_exposure": {}, "notes": {}}
    _real_exposure_lens(None, None, Refusing(), entry)  # type: ignore[arg-type]
    assert entry["real_exposure"] == {}
    assert "knows no video" in entry["notes"]["real_exposure"]


def test_history_agents_score_the_pool_with_each_rows_history() -> None:
    from noetik.agents.networks.encoders import History

    spec = ProblemSpec(n_actions=3, video_ids=np.array([30, 10, 20]))
    encoder = EncoderConfig(kind="transformer", d_model=8, n_heads=2, n_layers=1, history_len=4)
    agent = BCConfig(seed=0, device="cpu", encoder=encoder).create(spec)
    scorer = pool_scorer(agent)
    assert scorer.history_len == 4
    obs = np.random.default_rng(0).random((2, 128), dtype=np.float32)
    mask = np.array([[False, True, True, True]] * 2)
    ones = np.ones((2, 4, 12), np.float32)
    hist = RowHistory(np.array([[-1, 10, 99, 30]] * 2), ones, ones[:, :, 0], mask)
    got = scorer(obs, hist, POOL)
    items = torch.tensor([[3, 1, 3, 0]] * 2)  # padding 3 for -1 and the unknown video 99
    history = History(items, torch.ones(2, 4, 12), torch.ones(2, 4), torch.as_tensor(mask))
    with torch.no_grad():
        want = agent.scores(torch.as_tensor(obs), history).numpy()
    np.testing.assert_allclose(got, want[:, [1, 2, 0]], rtol=1e-5, atol=1e-6)  # 10, 20, 30
