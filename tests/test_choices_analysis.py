"""Behavioural analysis of choices: known answers on simulated participants and hand-made
episodes, every preset task and custom mappings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from noetik.agents.cognitive import HybridMBMF, RescorlaWagner, WinStayLoseShift, simulate
from noetik.analysis.choices import (
    ChoiceAnalysisConfig,
    Trials,
    analyse_choices,
    behaviour_figure,
    behaviour_lines,
    gain_loss_sensitivity,
    learning_curve,
    perseveration,
    two_step_stays,
    win_stay_lose_shift,
)
from noetik.data.choices import (
    PRESET_FILES,
    ChoiceEpisodes,
    ChoiceMapping,
    TaskDesign,
    read_choices,
)
from noetik.errors import ConfigError
from noetik.utils.bootstrap import Estimate

TASKS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "decision-tasks"
CONFIG = ChoiceAnalysisConfig(n_boot=400, seed=0)


def _inside(e: Estimate, value: float) -> bool:
    return e.low <= value <= e.high


def _wsls(p_stay_win: float, p_shift_lose: float, n: int = 40, trials: int = 200) -> object:
    params = np.tile([p_stay_win, p_shift_lose], (n, 1))
    return simulate(WinStayLoseShift(), params, "noetik/Bandit2Arm-v0", n_trials=trials, seed=3)


def test_win_stay_lose_shift_rates_of_a_simulated_wsls_player() -> None:
    episodes = _wsls(0.9, 0.7)
    assert isinstance(episodes, ChoiceEpisodes)
    result = win_stay_lose_shift(Trials.of(episodes, CONFIG), CONFIG)
    assert result.win_stay.mean == pytest.approx(0.9, abs=0.02)
    assert result.lose_shift.mean == pytest.approx(0.7, abs=0.03)
    assert _inside(result.win_stay, 0.9) and _inside(result.lose_shift, 0.7)
    assert result.win_stay.high - result.win_stay.low < 0.05
    assert result.per_subject["win_stay"].shape == (40,)


def test_perseveration_of_a_repeating_and_an_indifferent_player() -> None:
    sticky = perseveration(Trials.of(_wsls(0.95, 0.05), CONFIG), CONFIG)
    assert sticky.repeat.mean == pytest.approx(0.95, abs=0.02)
    assert sticky.excess.low > 0.3
    assert all(e.low > 0 for e in sticky.lag_profile)
    assert sticky.lag_profile[0].mean > sticky.lag_profile[-1].mean  # the kernel decays
    indifferent = perseveration(Trials.of(_wsls(0.5, 0.5), CONFIG), CONFIG)
    assert indifferent.repeat.mean == pytest.approx(0.5, abs=0.03)
    assert _inside(indifferent.excess, 0.0)


def test_an_alternating_player_has_negative_excess_by_hand() -> None:
    design = TaskDesign("alt", (2,), (1,), ("reward",))
    choices = np.tile(np.arange(20) % 2, (3, 1))[:, :, None]
    episodes = ChoiceEpisodes.from_arrays(design, ("a", "b", "c"), choices, np.ones((3, 20, 1)))
    result = perseveration(Trials.of(episodes, CONFIG), CONFIG)
    assert result.repeat.mean == 0.0 and result.expected.mean == 0.5
    assert result.excess.mean == -0.5
    assert result.lag_profile[1].mean == 0.5  # two back is always the same option


def test_learning_curve_of_a_rescorla_wagner_learner_rises() -> None:
    params = np.tile([0.1, 5.0], (40, 1))
    episodes = simulate(RescorlaWagner(), params, "noetik/Bandit2Arm-v0", n_trials=100, seed=1)
    curve = learning_curve(Trials.of(episodes, CONFIG), CONFIG)
    assert (curve.best_option == 0).all()  # p_reward (0.7, 0.3): option 0 is best
    assert len(curve.best) == 10 and curve.edges.tolist()[::5] == [0, 50, 100]
    assert curve.best[0].mean < 0.7 < curve.best[-1].mean
    assert curve.improvement.low > 0.1
    assert curve.wins[-1].mean > curve.wins[0].mean


def _gain_loss_episodes() -> ChoiceEpisodes:
    """Two subjects: stay always after a gain only, never after a loss only, half the time
    after both, always after neither (cycling gain only, loss only, both, neither)."""
    design = TaskDesign("gl", (4,), (1,), ("gain", "loss"))
    kinds = [(1.0, 0.0), (0.0, -1.0), (1.0, -1.0), (0.0, 0.0)]
    choices, outcomes = [], []
    for s in range(2):
        c, out = [0], []
        for t in range(80):
            kind = kinds[t % 4]
            out.append(kind)
            if kind in ((1.0, 0.0), (0.0, 0.0)):
                stay = True
            elif kind == (0.0, -1.0):
                stay = False
            else:
                stay = (t // 4 + s) % 2 == 0
            c.append(c[-1] if stay else (c[-1] + 1) % 4)
        choices.append(c[:80])
        outcomes.append(out)
    return ChoiceEpisodes.from_arrays(
        design, ("x", "y"), np.array(choices)[:, :, None], np.array(outcomes)
    )


def test_stay_after_gains_and_losses_by_hand() -> None:
    result = gain_loss_sensitivity(Trials.of(_gain_loss_episodes(), CONFIG), CONFIG)
    assert result.stay["gain_only"].mean == 1.0
    assert result.stay["loss_only"].mean == 0.0
    assert result.stay["neither"].mean == 1.0
    assert result.stay["both"].mean == pytest.approx(0.5, abs=0.03)
    assert result.stay["gain_minus_loss"].mean == 1.0
    assert result.n_regressed == 2
    # a (nearly) balanced 2 x 2 design: each slope is the difference of its cells' means,
    # gain (1 + 0.5) / 2 - (0 + 1) / 2 = 0.25 and loss (0 + 0.5) / 2 - (1 + 1) / 2 = -0.75
    assert result.slopes["gain"].mean == pytest.approx(0.25, abs=0.03)
    assert result.slopes["loss"].mean == pytest.approx(-0.75, abs=0.03)
    assert result.slopes["asymmetry"].mean == pytest.approx(0.5, abs=0.03)


def test_slopes_of_stay_on_gain_and_loss_magnitudes() -> None:
    """P(stay) = 0.5 + 0.3 gain - 0.2 loss, with gain and loss magnitudes drawn in [0, 1]."""
    draw = np.random.default_rng(0)
    s, t = 30, 400
    gain, loss = draw.random((s, t)), -draw.random((s, t))
    choices = np.zeros((s, t), dtype=np.int64)
    for i in range(1, t):
        p = 0.5 + 0.3 * gain[:, i - 1] + 0.2 * loss[:, i - 1]
        stay = draw.random(s) < p
        choices[:, i] = np.where(stay, choices[:, i - 1], (choices[:, i - 1] + 1) % 4)
    design = TaskDesign("gl", (4,), (1,), ("gain", "loss"))
    episodes = ChoiceEpisodes.from_arrays(
        design, tuple(map(str, range(s))), choices[:, :, None], np.stack([gain, loss], axis=2)
    )
    slopes = gain_loss_sensitivity(Trials.of(episodes, CONFIG), CONFIG).slopes
    assert _inside(slopes["gain"], 0.3) and _inside(slopes["loss"], -0.2)
    assert _inside(slopes["asymmetry"], -0.1)


def test_binary_outcomes_leave_slopes_unidentified() -> None:
    result = gain_loss_sensitivity(Trials.of(_wsls(0.9, 0.7, n=5), CONFIG), CONFIG)
    assert result.n_regressed == 0 and np.isnan(result.slopes["gain"].mean)
    assert result.stay["gain_only"].mean == pytest.approx(0.9, abs=0.05)
    assert result.stay["loss_only"].mean == pytest.approx(0.3, abs=0.06)
    assert np.isnan(result.stay["both"].mean)


def test_two_step_stays_separate_model_based_from_model_free() -> None:
    def run(w: float) -> object:
        params = np.tile([0.5, 0.5, 5.0, 5.0, 1.0, w, 0.0], (40, 1))
        episodes = simulate(HybridMBMF(), params, "noetik/TwoStep-v0", n_trials=200, seed=2)
        assert isinstance(episodes, ChoiceEpisodes)
        return two_step_stays(episodes, CONFIG)

    based, free = run(1.0), run(0.0)
    assert based.model_based.low > 0.05  # type: ignore[attr-defined]
    assert free.model_free.low > 0.05  # type: ignore[attr-defined]
    assert _inside(free.model_based, 0.0)  # type: ignore[attr-defined]
    assert based.common_share == pytest.approx(0.7, abs=0.03)  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="two-step shape"):
        two_step_stays(_wsls(0.9, 0.7, n=3), CONFIG)  # type: ignore[arg-type]


def test_restless_bandit_with_positive_payoffs_uses_above_median_wins(tmp_path: Path) -> None:
    draw = np.random.default_rng(1)
    lines = []
    for subject in ("a", "b", "c"):
        for _ in range(60):
            lines.append(f"{subject},{draw.integers(1, 5)},{draw.uniform(20, 80):.2f}")
    (tmp_path / "restless.csv").write_text("subjID,choice,outcome\n" + "\n".join(lines) + "\n")
    mapping = ChoiceMapping(task="restless4arm", n_options=(4,), reward="outcome", separator=",")
    behaviour = analyse_choices(read_choices(tmp_path / "restless.csv", mapping), CONFIG)
    assert behaviour.win_rule == "above_median" and behaviour.n_options == 4
    wins = np.mean([w.mean for w in behaviour.curve.wins])
    assert wins == pytest.approx(0.5, abs=0.02)  # half of each subject's trials are above
    assert behaviour.two_step is None
    data = json.loads(json.dumps(behaviour.as_dict()))
    assert data["perseveration"]["expected"]["mean"] == pytest.approx(0.25, abs=0.05)
    assert any("above own median" in line for line in behaviour_lines(data))
    with pytest.raises(ConfigError, match="level 1 does not exist"):
        analyse_choices(
            read_choices(tmp_path / "restless.csv", mapping), ChoiceAnalysisConfig(level=1)
        )


@pytest.mark.parametrize("task", list(PRESET_FILES))
def test_every_preset_task_is_analysed(task: str) -> None:
    path = TASKS / PRESET_FILES[task]
    if not path.is_file():
        pytest.skip(f"hBayesDM example data not found at {TASKS}")
    behaviour = analyse_choices(read_choices(path, task), CONFIG)
    data = behaviour.as_dict()
    rates = [data["win_stay"][k]["mean"] for k in ("win_stay", "lose_shift", "stay")]  # type: ignore[index]
    assert all(0.0 <= r <= 1.0 for r in rates)
    assert (behaviour.two_step is not None) == (task == "two-step")
    assert len(behaviour_lines(data)) >= 6
    fig = behaviour_figure(json.loads(json.dumps(data)))
    assert len([ax for ax in fig.axes if ax.get_visible()]) == (5 if task == "two-step" else 4)
