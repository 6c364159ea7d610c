"""The choice-data layer: presets on the real hBayesDM files, tasks read through a mapping
alone, and one-line errors for bad files."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from noetik.data.choices import (
    PRESET_FILES,
    PRESETS,
    ChoiceEpisodes,
    ChoiceMapping,
    TaskDesign,
    load_mapping,
    read_choices,
)
from noetik.errors import ConfigError, DataError, NoetikError

TASKS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "decision-tasks"

#: (subjects, rows, most trials of a subject) per preset, as the data README's table says.
SIZES = {
    "bandit2arm": (20, 2_000, 100),
    "bandit4arm": (10, 2_000, 200),
    "igt": (4, 400, 100),
    "two-step": (11, 2_190, 200),
}


@pytest.fixture
def tasks() -> Path:
    """The hBayesDM example files beside the repository; skips the test when absent."""
    if not all((TASKS / name).is_file() for name in PRESET_FILES.values()):
        pytest.skip(f"hBayesDM example data not found at {TASKS}")
    return TASKS


@pytest.mark.parametrize("task", list(PRESETS))
def test_each_preset_reads_its_real_file(tasks: Path, task: str) -> None:
    episodes = read_choices(tasks / PRESET_FILES[task], task)
    subjects, rows, longest = SIZES[task]
    assert episodes.n_subjects == subjects
    assert int(episodes.n_trials.sum()) == rows
    assert episodes.max_trials == longest
    assert episodes.design == PRESETS[task].design()
    limits = np.asarray(episodes.design.n_options)
    assert episodes.choices.min() == 0 and np.all(episodes.choices.max(axis=(0, 1)) == limits - 1)
    assert np.all(episodes.choices[~episodes.mask] == 0)


def test_preset_quirks(tasks: Path) -> None:
    two = read_choices(tasks / PRESET_FILES["bandit2arm"], "bandit2arm")
    assert two.subjects[:2] == ("1", "2")
    assert two.choices[0, :3, 0].tolist() == [0, 1, 1]  # the file's 1, 2, 2
    assert two.outcomes[0, :3, 0].tolist() == [1.0, -1.0, -1.0]
    four = read_choices(tasks / PRESET_FILES["bandit4arm"], "bandit4arm")
    assert four.subjects[0] == "102"  # no trial column: file order
    assert four.trial[0, :3].tolist() == [1, 2, 3]
    assert four.outcomes[0, 1:3].tolist() == [[1.0, 0.0], [0.0, -1.0]]  # gain, loss
    igt = read_choices(tasks / PRESET_FILES["igt"], "igt")  # subjID is the last column
    assert igt.subjects == ("1001", "1002", "1003", "1004")
    assert igt.outcomes[..., 1].max() <= 0 and igt.outcomes[..., 1].min() == -1250
    assert igt.design.outcome_scale == 100
    ts = read_choices(tasks / PRESET_FILES["two-step"], "two-step")
    assert ts.n_trials[0] == 198 and ts.trial[0, :2].tolist() == [2, 3]  # trial 1 missed
    assert np.any(np.diff(ts.trial[0, : ts.n_trials[0]]) > 1)
    assert ts.choices[0, 0].tolist() == [0, 3]  # level1 1, level2 4 (state B, option 2)
    assert ts.option_value_names == ("A1prob", "A2prob", "B1prob", "B2prob")
    assert ts.option_values is not None
    np.testing.assert_allclose(ts.option_values[0, 0], [0.73174, 0.44094, 0.28525, 0.42124])


def _reversal_file(path: Path) -> dict[str, list[tuple[int, int, float]]]:
    """A reversal-learning file (subjID, trial, choice 1/2, outcome 1/-1: the good option pays
    with chance 0.8 and swaps every 15 trials), random choices, rows shuffled; returns each
    subject's (trial, choice, outcome) in trial order."""
    played: dict[str, list[tuple[int, int, float]]] = {}
    draw = np.random.default_rng(0)
    for s, subject in enumerate(("s01", "s02", "s03")):
        rows = []
        for t in range(30 + 10 * s):
            choice = int(draw.integers(2))
            good = (t // 15) % 2
            win = draw.random() < (0.8 if choice == good else 0.2)
            rows.append((t + 1, choice + 1, 1.0 if win else -1.0))
        played[subject] = rows
    lines = [f"{s}\t{t}\t{c}\t{r:g}" for s, rows in played.items() for t, c, r in rows]
    order = draw.permutation(len(lines))
    path.write_text("subjID\ttrial\tchoice\toutcome\n" + "\n".join(lines[i] for i in order) + "\n")
    return played


def test_reversal_learning_file_is_read_through_a_toml_mapping(tmp_path: Path) -> None:
    played = _reversal_file(tmp_path / "prl.txt")
    (tmp_path / "prl.toml").write_text('task = "reversal"\ntrial = "trial"\nreward = "outcome"\n')
    mapping = load_mapping(tmp_path / "prl.toml")
    episodes = read_choices(tmp_path / "prl.txt", mapping)
    assert episodes.design == TaskDesign("reversal", (2,), (1,), ("reward",))
    rows = (tmp_path / "prl.txt").read_text().splitlines()[1:]
    first_seen = tuple(dict.fromkeys(row.split("\t")[0] for row in rows))
    assert episodes.subjects == first_seen and sorted(first_seen) == sorted(played)
    for i, subject in enumerate(episodes.subjects):
        rows = played[subject]
        n = len(rows)
        assert episodes.n_trials[i] == n
        assert episodes.trial[i, :n].tolist() == [t for t, _, _ in rows]  # back in trial order
        assert episodes.choices[i, :n, 0].tolist() == [c - 1 for _, c, _ in rows]
        assert episodes.outcomes[i, :n, 0].tolist() == [r for _, _, r in rows]


def test_restless_bandit_with_continuous_outcomes_is_read_through_a_json_mapping(
    tmp_path: Path,
) -> None:
    """Daw et al. (2006)-style payoffs: four means in a decaying Gaussian random walk."""
    draw = np.random.default_rng(1)
    lines, expected = [], {}
    for subject in ("a", "b"):
        means = draw.uniform(20, 80, 4)
        choices, payoffs = [], []
        for _ in range(50):
            choice = int(draw.integers(4))
            payoffs.append(float(np.round(draw.normal(means[choice], 4.0), 3)))
            choices.append(choice)
            means = 0.9836 * means + 0.0164 * 50 + draw.normal(0, 2.8, 4)
        expected[subject] = (choices, payoffs)
        lines += [f"{subject},{c + 1},{p}" for c, p in zip(choices, payoffs, strict=True)]
    (tmp_path / "restless.csv").write_text("subjID,choice,outcome\n" + "\n".join(lines) + "\n")
    mapping = {"task": "restless4arm", "n_options": [4], "reward": "outcome", "separator": ","}
    (tmp_path / "restless.json").write_text(json.dumps(mapping))
    episodes = read_choices(tmp_path / "restless.csv", load_mapping(tmp_path / "restless.json"))
    assert episodes.subjects == ("a", "b") and episodes.design.n_options == (4,)
    for i, subject in enumerate(("a", "b")):
        choices, payoffs = expected[subject]
        assert episodes.choices[i, :, 0].tolist() == choices
        np.testing.assert_array_equal(episodes.outcomes[i, :, 0], payoffs)
        assert episodes.trial[i].tolist() == list(range(1, 51))


def _write(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


BANDIT = ChoiceMapping(task="t", trial="trial", reward="outcome", min_trials=3)
GOOD = [f"{s}\t{t}\t{1 + (t % 2)}\t1" for s in (1, 2) for t in (1, 2, 3)]


@pytest.mark.parametrize(
    ("rows", "header", "mapping", "words"),
    [
        (GOOD, "subjID\ttrial\tpick\toutcome", BANDIT, ["no column 'choice'", "pick"]),
        ([*GOOD[:4], "2\t2\t3\t1", GOOD[5]], None, BANDIT, ["line 6", "'choice'", "1..2"]),
        ([*GOOD[:2], "1\t3\t2\tlots"], None, BANDIT, ["line 4", "'outcome'", "not a number"]),
        ([*GOOD[:2], "1\t3\t1.5\t1"], None, BANDIT, ["line 4", "'choice'", "not an integer"]),
        ([*GOOD[:2], "1\t3\t\t1"], None, BANDIT, ["line 4", "'choice'", "missing value"]),
        (GOOD[:5], None, BANDIT, ["subject '2' has 2 trial(s)", "min_trials=3"]),
        ([*GOOD[:2], "1\t2\t1\t1"], None, BANDIT, ["trial 2 of subject '1'", "lines 3 and 4"]),
    ],
    ids=["unknown-column", "choice-range", "non-numeric", "fraction", "missing", "few", "dup"],
)
def test_bad_files_give_one_line_errors(
    tmp_path: Path, rows: list[str], header: str | None, mapping: ChoiceMapping, words: list[str]
) -> None:
    path = _write(tmp_path / "bad.txt", header or "subjID\ttrial\tchoice\toutcome", rows)
    with pytest.raises(DataError) as caught:
        read_choices(path, mapping)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    for word in words:
        assert word in message
    assert isinstance(caught.value, NoetikError)  # the CLI turns it into exit status 2


def test_loss_sign_is_checked(tmp_path: Path) -> None:
    rows = [f"1\t{t}\t1\t50\t{-25 * (t % 2)}" for t in range(1, 5)]
    path = _write(tmp_path / "gl.txt", "subjID\ttrial\tchoice\tgain\tloss", rows)
    negative = ChoiceMapping(
        task="gl", trial="trial", n_options=(4,), gain="gain", loss="loss", min_trials=2
    )
    episodes = read_choices(path, negative)
    assert episodes.outcomes[0, :, 1].tolist() == [-25.0, 0.0, -25.0, 0.0]
    magnitudes = replace(negative, losses_are_negative=False)
    with pytest.raises(DataError, match=r"line 2, column 'loss': a loss magnitude must be >= 0"):
        read_choices(path, magnitudes)


def test_mappings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="either 'reward' or both 'gain' and 'loss'"):
        ChoiceMapping(task="x", reward="r", gain="g", loss="l")
    with pytest.raises(ConfigError, match="either 'reward'"):
        ChoiceMapping(task="x", gain="g")
    with pytest.raises(ConfigError, match="n_options has 1 entries for 2"):
        ChoiceMapping(task="x", choices=("a", "b"), reward="r")
    with pytest.raises(ConfigError, match="column 'choice' is mapped twice"):
        ChoiceMapping(task="x", reward="choice")
    with pytest.raises(ConfigError, match="level 2 needs at least 2 options"):
        ChoiceMapping(task="x", choices=("a", "b"), n_options=(2, 3), states=(1, 2), reward="r")
    (tmp_path / "m.json").write_text('{"task": "x", "reward": "r", "colour": 1}')
    with pytest.raises(ConfigError, match=r"m\.json: ChoiceMapping has no field 'colour'"):
        load_mapping(tmp_path / "m.json")
    (tmp_path / "m.toml").write_text('reward = "r"\n')
    with pytest.raises(ConfigError, match=r"m\.toml: ChoiceMapping needs field 'task'"):
        load_mapping(tmp_path / "m.toml")
    (tmp_path / "m2.json").write_text('{"task": "x", "reward": "r", "n_options": 2}')
    with pytest.raises(ConfigError, match="field 'n_options' must be a list of int"):
        load_mapping(tmp_path / "m2.json")
    preset = PRESETS["two-step"]
    (tmp_path / "ts.json").write_text(json.dumps(preset.to_json()))
    assert load_mapping(tmp_path / "ts.json") == preset


def test_episodes_select_and_first_trials() -> None:
    design = TaskDesign("b", (2,), (1,), ("reward",))
    choices = np.array([[[0], [1], [1], [0]], [[1], [1], [0], [0]]])
    outcomes = np.arange(8, dtype=float).reshape(2, 4, 1)
    episodes = ChoiceEpisodes.from_arrays(design, ("x", "y"), choices, outcomes, n_trials=[4, 3])
    assert episodes.n_trials.tolist() == [4, 3] and episodes.trial[1].tolist() == [1, 2, 3, 0]
    assert episodes.outcomes[1, 3, 0] == 0.0  # padding is zeroed
    swapped = episodes.select([1, 0])
    assert swapped.subjects == ("y", "x") and swapped.n_trials.tolist() == [3, 4]
    early = episodes.first_trials([2, 5])
    assert early.n_trials.tolist() == [2, 3]
    assert early.choices[0, :, 0].tolist() == [0, 1, 0, 0]
    with pytest.raises(ConfigError, match="choices must lie in"):
        ChoiceEpisodes.from_arrays(design, ("x",), [[[2]]], [[[0.0]]])
    values = np.ones((2, 4, 2))
    named = ChoiceEpisodes.from_arrays(
        design,
        ("x", "y"),
        choices,
        outcomes,
        [4, 3],
        option_values=values,
        option_value_names=("p1", "p2"),
    )
    assert named.option_values is not None and np.isnan(named.option_values[1, 3]).all()
    assert named.select([1]).option_values.shape == (1, 4, 2)  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match=r"option_values must be \(2, 4, 1\)"):
        ChoiceEpisodes.from_arrays(
            design, ("x", "y"), choices, outcomes, option_values=values, option_value_names=("p",)
        )
