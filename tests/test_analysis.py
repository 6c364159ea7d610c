"""Behavioural analysis: hand-made logs with known answers, the bootstrap, real and synthetic."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from noetik.analysis import (
    BehaviourConfig,
    UserBootstrap,
    analyse_behaviour,
    behaviour_markdown,
    behaviour_section,
    findings,
)
from noetik.analysis.habits import reward_bins
from noetik.analysis.preferences import entropy_bits, js_divergence
from noetik.analysis.stats import spearman_rows
from noetik.data.dataset import load_kuairand
from noetik.data.schema import FileKind
from noetik.errors import ConfigError, DataError

MIN = 60_000
HOUR = 60 * MIN
FAST = BehaviourConfig(n_boot=50, seed=0)


def make_log(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """A log with every required column; unspecified fields take neutral defaults."""
    defaults: dict[str, Any] = {
        "video_id": 0,
        "date": 20220425,
        "hourmin": 1200,
        "is_click": 0,
        "is_like": 0,
        "is_follow": 0,
        "is_comment": 0,
        "is_forward": 0,
        "is_hate": 0,
        "long_view": 0,
        "play_time_ms": 5_000,
        "duration_ms": 10_000,
        "tab": 1,
        "tags": [1],
    }
    full = [{**defaults, **row} for row in rows]
    return pl.DataFrame(full).with_columns(pl.col("tags").cast(pl.List(pl.Int32)))


# --------------------------------------------------------------------------- known answers


def test_hour_shares_click_and_watch_by_hour() -> None:
    log = make_log(
        [
            {"user_id": 0, "time_ms": 0, "hourmin": 100, "is_click": 1, "play_time_ms": 2_000},
            {"user_id": 0, "time_ms": 10 * MIN, "hourmin": 100, "play_time_ms": 4_000},
            {"user_id": 0, "time_ms": 2 * HOUR, "hourmin": 200, "is_click": 1, "duration_ms": 0},
            {"user_id": 1, "time_ms": 0, "hourmin": 200, "date": 20220426},
            {"user_id": 1, "time_ms": 5 * HOUR, "hourmin": 500, "play_time_ms": 30_000},
        ]
    )
    a = analyse_behaviour(log, FAST).attention
    shares = [e.value for e in a.hour_share]
    assert shares[1] == pytest.approx(0.4) and shares[2] == pytest.approx(0.4)
    assert shares[5] == pytest.approx(0.2) and sum(shares) == pytest.approx(1.0)
    assert a.hour_click[1].value == pytest.approx(0.5)
    assert a.hour_click[5].value == 0.0 and np.isnan(a.hour_click[3].value)
    # hour 1: ratios 0.2 and 0.4; hour 2: the duration_ms == 0 row is unknown, the other 0.5;
    # hour 5: a replay (3x) is clipped to 1
    assert a.hour_watch[1].value == pytest.approx(0.3)
    assert a.hour_watch[2].value == pytest.approx(0.5)
    assert a.hour_watch[5].value == pytest.approx(1.0)
    assert a.peak_hour in (1, 2)
    # 2022-04-25 is a Monday and 04-26 a Tuesday: 4 of 5 interactions on Monday
    assert a.weekday_share[0].value == pytest.approx(0.8)
    assert a.weekday_share[0].null == pytest.approx(0.5)


def test_session_lengths_and_return_intervals() -> None:
    minutes = {0: [0, 1, 2, 120, 121], 1: [0, 100, 110, 120, 130]}
    log = make_log([{"user_id": u, "time_ms": m * MIN} for u, ms in minutes.items() for m in ms])
    a = analyse_behaviour(log, FAST).attention
    # sessions: user 0 -> 3, 2 interactions; user 1 -> 1, 4 interactions
    assert a.n_sessions == 4
    assert a.length_mean.value == pytest.approx(2.5)
    assert a.length_median.value == 2.0  # lower median of 1, 2, 3, 4
    assert a.minutes_median.value == 1.0  # durations 2, 1, 0, 30 min
    assert dict(a.length_hist) == pytest.approx(
        {"1": 0.25, "2": 0.25, "3": 0.25, "4-5": 0.25, "6-10": 0, "11-20": 0, "21-50": 0, ">50": 0}
    )
    # breaks: 118 min (user 0), 100 min (user 1)
    assert a.n_returns == 2
    assert a.return_median_h.value == pytest.approx(100 / 60)
    assert a.return_within_24h.value == 1.0


def test_js_divergence_and_entropy_by_hand() -> None:
    assert js_divergence(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)
    # m = (0.75, 0.25): H(m) - (H(p) + H(q)) / 2 = 0.811278 - 0.5
    value = js_divergence(np.array([0.5, 0.5]), np.array([3.0, 0.0]))
    assert value == pytest.approx(-(0.75 * np.log2(0.75) + 0.25 * np.log2(0.25)) - 0.5)
    assert js_divergence(np.array([2.0, 6.0]), np.array([1.0, 3.0])) == pytest.approx(0.0)
    assert entropy_bits(np.array([[1.0, 1.0, 1.0, 1.0], [5.0, 0.0, 0.0, 0.0]])) == pytest.approx(
        [2.0, 0.0]
    )


def _tag_log(early: list[int], late: list[int], users: int) -> pl.DataFrame:
    rows = [
        {"user_id": u, "time_ms": i * HOUR, "tags": [t]}
        for u in range(users)
        for i, t in enumerate([(x + u) % 6 for x in early] + [(x + u) % 6 for x in late])
    ]
    return make_log(rows)


def test_concentrated_and_drifting_preferences_are_detected() -> None:
    # every user watches one tag early and another late (different tags per user)
    p = analyse_behaviour(_tag_log([0] * 6, [3] * 6, users=30), FAST).preferences
    assert p is not None and p.n_users == 30
    assert p.drift_js.value == pytest.approx(1.0)  # disjoint halves
    assert p.drift_excess.robust and p.drift_excess.value > 0.3
    assert p.entropy.value == pytest.approx(1.0)  # two tags, half each
    assert p.concentration.robust and p.concentration.value > 0.5
    assert p.top_tag_share.value == pytest.approx(0.5)


def test_no_drift_when_halves_match() -> None:
    p = analyse_behaviour(_tag_log([0, 3] * 3, [3, 0] * 3, users=30), FAST).preferences
    assert p is not None
    assert p.drift_js.value == pytest.approx(0.0)
    assert not (p.drift_excess.robust and p.drift_excess.value > 0)


def test_precedence_lift_by_hand() -> None:
    likes = {0: [1, 1, 0, 0, 1], 1: [0, 0, 1, 0]}
    rows = [
        {"user_id": u, "time_ms": i * MIN, "is_like": v}
        for u, seq in likes.items()
        for i, v in enumerate(seq)
    ]
    rows.append({"user_id": 0, "time_ms": 5 * HOUR, "is_like": 1})  # new session: no pair
    e = analyse_behaviour(make_log(rows), FAST).emotion
    pc = next(p for p in e.precedence if p.signal == "is_like" and p.previous == "is_like")
    # after a like: (1,1) (1,0) (1,0) -> 1/3; after no like: (0,0) (0,1) (0,0) (0,1) -> 2/4
    assert (pc.n_after, pc.n_events) == (3, 1)
    assert pc.after.value == pytest.approx(1 / 3)
    assert pc.otherwise.value == pytest.approx(1 / 2)
    assert pc.lift.value == pytest.approx(2 / 3)
    assert not pc.lift.robust  # 1 event < min_events
    assert e.overall["is_like"].value == pytest.approx(5 / 10)


def _habit_log() -> pl.DataFrame:
    """Single-interaction sessions (hours, click): A 0/1, 10/1, 100/0; B 0/0, 50/0, 60/1,
    65/0; C 300/0 (ends the log, so C's session is censored)."""
    sessions = {
        0: [(0, 1), (10, 1), (100, 0)],
        1: [(0, 0), (50, 0), (60, 1), (65, 0)],
        2: [(300, 0)],
    }
    return make_log(
        [
            {"user_id": u, "time_ms": h * HOUR, "is_click": c}
            for u, seq in sessions.items()
            for h, c in seq
        ]
    )


def test_return_probability_by_reward_bins() -> None:
    h = analyse_behaviour(_habit_log(), FAST).habits
    # 24 h returns of the 7 uncensored sessions: A1 (10 h), B2 (10 h), B3 (5 h)
    assert h.returns["return_24h"].value == pytest.approx(3 / 7)
    assert h.returns["return_48h"].value == pytest.approx(3 / 7)
    assert h.next_length.value == pytest.approx(1.0)
    curve = next(c for c in h.curves if c.reward == "click_rate" and c.outcome == "return_24h")
    assert curve.n_sessions == 7
    assert curve.bins == ((0.0, 0.0), (1.0, 1.0))
    assert [v.value for v in curve.values] == pytest.approx([1 / 4, 2 / 3])
    # least squares on a 0/1 reward: the difference of the two means
    assert curve.slope.value == pytest.approx(2 / 3 - 1 / 4)
    assert curve.spearman.value == pytest.approx(1.0)


def test_reward_bins_never_split_ties() -> None:
    assert reward_bins(np.array([0, 0, 0, 0, 0.5, 1, 1, 1.0]), 5).tolist() == [
        0,
        0,
        0,
        0,
        1,
        2,
        2,
        2,
    ]
    x = np.random.default_rng(0).random(1000)
    assert np.bincount(reward_bins(x, 5)).tolist() == [200] * 5


def test_spearman_rows() -> None:
    rho = spearman_rows(np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [1.0, 1.0, 1.0]]))
    assert rho[0] == pytest.approx(1.0) and rho[1] == pytest.approx(-1.0) and np.isnan(rho[2])


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_matches_brute_force_and_is_seeded() -> None:
    rng = np.random.default_rng(1)
    users, values = rng.integers(0, 40, 300), rng.exponential(size=300).round(2)
    boot = UserBootstrap(40, 64, seed=3)
    counts = np.concatenate(list(boot.counts()))
    point, reps = boot.quantile(values, users, 0.5, levels=4, passes=2)
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(counts[:, users[order]], axis=1)
    brute = values[order][(cum < 0.5 * cum[:, -1:]).sum(axis=1)]
    assert np.array_equal(reps, brute)
    assert point == np.sort(values)[149]
    per_user = np.stack([np.bincount(users, values, 40), np.bincount(users, minlength=40)], 1)
    est = boot.estimates(per_user, lambda s: s[:, [0]] / s[:, [1]])[0]
    by_hand = (counts @ per_user[:, 0]) / (counts @ per_user[:, 1])
    assert est.low == pytest.approx(np.quantile(by_hand, 0.025, method="lower"))
    assert est.high == pytest.approx(np.quantile(by_hand, 0.975, method="higher"))
    assert est.value == pytest.approx(values.mean())
    again = UserBootstrap(40, 64, seed=3).estimates(per_user, lambda s: s[:, [0]] / s[:, [1]])
    other = UserBootstrap(40, 64, seed=4).estimates(per_user, lambda s: s[:, [0]] / s[:, [1]])
    assert again[0] == est and other[0] != est


def test_analysis_is_deterministic_under_a_seed(cache_dir: Path) -> None:
    ds = load_kuairand(None, cache_dir=cache_dir)
    log = ds.interactions(FileKind.LOG_STANDARD).collect().filter(pl.col("user_id") < 150)
    videos = ds.videos()
    one = analyse_behaviour(log, FAST, videos=videos)
    two = analyse_behaviour(log, FAST, videos=videos)
    three = analyse_behaviour(log, BehaviourConfig(n_boot=50, seed=1), videos=videos)
    assert one == two
    assert one.emotion.overall["is_like"].value == three.emotion.overall["is_like"].value
    assert one.emotion.overall["is_like"].low != three.emotion.overall["is_like"].low


# --------------------------------------------------------------------------- data


def test_builtin_synthetic_dataset(cache_dir: Path) -> None:
    ds = load_kuairand(None, cache_dir=cache_dir)
    raw = ds.interactions(FileKind.LOG_STANDARD).collect()
    report = analyse_behaviour(ds, BehaviourConfig(n_boot=60))
    assert report.n_rows == raw.height and report.n_users == raw["user_id"].n_unique()
    like = report.emotion.overall["is_like"]
    assert like.value == pytest.approx(raw["is_like"].mean())
    assert like.low < like.value < like.high and like.robust
    p = report.preferences
    assert p is not None
    assert p.concentration.robust and p.concentration.value > 1.0  # users stick to few tags
    assert not p.drift_excess.robust  # the generator's tastes do not drift
    text = findings(report)
    lift = next(pc for pc in report.emotion.precedence if pc.signal == pc.previous == "is_like")
    sentence = next(s for s in text if s.startswith("Users who liked their previous video"))
    assert f"{lift.lift.value:.3g}x" in sentence
    assert ("; robust;" in sentence) == lift.lift.robust
    assert "### Behaviour:" in behaviour_markdown(report)
    section = behaviour_section(report, dpi=30)
    assert [title for title, _, _ in section] == [
        "Attention over time",
        "Preferences and drift",
        "Emotional response",
        "Habit formation",
    ]
    assert all(png.startswith(b"\x89PNG") and text for _, text, png in section)


def test_real_sample(real_sample: Path, cache_dir: Path) -> None:
    report = analyse_behaviour(
        load_kuairand(real_sample, cache_dir=cache_dir), BehaviourConfig(n_boot=60)
    )
    assert report.n_rows == 229_329 and report.n_users == 25_162
    e = report.emotion
    assert e.overall["is_like"].value == pytest.approx(0.0171, abs=5e-4)  # docs/results.md
    assert e.overall["is_click"].value == pytest.approx(0.442, abs=1e-3)
    assert e.overall["is_like"].low < 0.0171 < e.overall["is_like"].high
    like_like = next(pc for pc in e.precedence if pc.signal == pc.previous == "is_like")
    assert like_like.lift.robust and like_like.lift.low > 10
    a = report.attention
    assert a.peak_hour == 22 and 3 <= a.trough_hour <= 5 and a.peak_to_trough.robust
    assert a.length_median.value == 1.0  # the Pure logs keep only the pool's videos
    # 3,587 duration_ms == 0 rows have no duration: watch ratios stay finite
    assert all(np.isfinite(x.value) for x in a.hour_watch)
    assert report.preferences is not None and report.preferences.drift_excess.robust
    # under random exposure what is shown carries no taste: concentration is indistinguishable
    # from the shuffled null (while the standard log's is robust)
    assert report.preferences.concentration.robust
    random = analyse_behaviour(
        load_kuairand(real_sample, cache_dir=cache_dir),
        BehaviourConfig(n_boot=60, log="log_random"),
    )
    assert random.n_rows == 22_763
    assert random.emotion.overall["is_click"].value == pytest.approx(0.178, abs=1e-3)
    assert random.preferences is not None and not random.preferences.concentration.robust


def test_bad_input_raises_one_line_errors() -> None:
    with pytest.raises(DataError, match="'tab'"):
        analyse_behaviour(make_log([{"user_id": 0, "time_ms": 0}]).drop("tab"), FAST)
    with pytest.raises(ConfigError, match="n_boot"):
        BehaviourConfig(n_boot=1)
    with pytest.raises(ConfigError, match="duration_edges_s"):
        BehaviourConfig(duration_edges_s=(10.0, 5.0))
    with pytest.raises(ConfigError, match="log"):
        BehaviourConfig(log="log_other")  # type: ignore[arg-type]


class _FakeEnvs:
    """Two users; user 10's session ends after 2 steps, user 11's after 3 (env 0 then resets to
    user 12, whose rows must not be logged). Videos are 100 + action; time advances 60 s."""

    num_envs = 2
    T0 = 1_651_363_200.0  # 2022-05-01 00:00 UTC = 08:00 in Beijing

    def reset(self, seed: int = 0) -> tuple[np.ndarray, dict[str, Any]]:
        self.t, self.users, self.time = 0, np.array([10, 11]), np.full(2, self.T0)
        return np.zeros((2, 3), np.float32), self._info()

    def _info(self) -> dict[str, Any]:
        return {"user_id": self.users.copy(), "time_s": self.time.copy(), "tab": np.array([1, 2])}

    def step(self, actions: np.ndarray) -> tuple[Any, ...]:
        self.t += 1
        info = self._info()
        info.update(
            video_id=actions + 100,
            duration_s=np.array([10.0, 0.0]),
            play_time_s=np.array([5.0, 3.0]),
            **{
                f: np.array([1.0, 0.0])
                for f in (
                    "is_click",
                    "is_like",
                    "is_follow",
                    "is_comment",
                    "is_forward",
                    "is_hate",
                    "long_view",
                )
            },
        )
        terminated = np.array([self.t == 2, self.t == 3])
        self.time = self.time + 60.0
        info["time_s"] = self.time.copy()
        if self.t == 2:
            self.users = np.array([12, 11])
        return np.zeros((2, 3), np.float32), np.zeros(2), terminated, np.zeros(2, bool), info


def test_simulated_repeats_of_a_user_move_by_whole_days() -> None:
    from noetik.analysis.simulated import _repeat_days

    first, drawn = _repeat_days(np.array([3, 1, 3, 3]), np.zeros(0, np.int64))
    assert first.tolist() == [0, 0, 1, 2]
    again, drawn = _repeat_days(np.array([1, 5, 3]), drawn)
    assert again.tolist() == [1, 0, 3] and drawn.tolist() == [0, 2, 0, 4, 0, 1]


def test_simulated_log_rows() -> None:
    from noetik.analysis.simulated import simulate_log

    log = simulate_log(_FakeEnvs(), lambda obs, info: np.array([1, 2]), seed=0)
    assert log["user_id"].to_list() == [10, 10, 11, 11, 11]
    assert log["video_id"].to_list() == [101, 101, 102, 102, 102]
    assert log["time_ms"].to_list()[:2] == [1_651_363_200_000, 1_651_363_260_000]
    assert set(log["date"].to_list()) == {20220501} and set(log["hourmin"].to_list()) == {800}
    assert log["duration_ms"].to_list()[:3] == [10_000, 10_000, 0]
    assert log["tab"].to_list() == [1, 1, 2, 2, 2]
    report = analyse_behaviour(log, FAST)
    assert report.emotion.overall["is_like"].value == pytest.approx(2 / 5)
    # user 11's videos have no duration: only user 10's ratios (0.5) count
    assert report.attention.hour_watch[8].value == pytest.approx(0.5)


def test_nulls_in_a_frame_are_handled() -> None:
    log = make_log(
        [
            {"user_id": 0, "time_ms": 0, "is_like": 1, "hourmin": 300},
            {"user_id": 0, "time_ms": MIN, "is_like": None, "tab": None, "hourmin": None},
            {"user_id": 0, "time_ms": None},
            {"user_id": 1, "time_ms": 0, "tags": None, "play_time_ms": None},
        ]
    )
    report = analyse_behaviour(log, FAST)
    assert report.n_rows == 3
    assert report.emotion.overall["is_like"].value == pytest.approx(1 / 3)
    assert sum(e.value for e in report.attention.hour_share) == pytest.approx(1.0)
    assert report.attention.hour_share[3].value == pytest.approx(1 / 2)  # 2 rows with an hour
    assert report.emotion.by_tab.groups == ()  # fewer than min_group_rows rows


def test_a_row_budget_keeps_whole_users_up_to_the_budget() -> None:
    log = _tag_log([0] * 6, [3] * 6, users=30)  # 12 rows per user
    full = analyse_behaviour(log, FAST)
    capped = analyse_behaviour(log, dataclasses.replace(FAST, max_rows=100))
    assert full.n_users == 30 and full.n_rows == 360
    assert capped.n_users == 8 and capped.n_rows == 96  # whole users only, within the budget
    one = analyse_behaviour(log, dataclasses.replace(FAST, max_rows=5))
    assert one.n_users == 1  # at least one user, even above the budget
