"""Neural models of choice: input encoding by hand, causality, determinism, files, the shared
contract with the cognitive models, and held-out evaluation through the same schemes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from noetik.agents.choice_nets import (
    WEIGHTS_FILE,
    ChoiceModel,
    CognitiveChoiceModel,
    NeuralChoiceConfig,
    NeuralChoiceModel,
    encode_inputs,
    load_choice_model,
)
from noetik.agents.cognitive import HybridMBMF, RescorlaWagner, predict, simulate
from noetik.data.choices import PRESET_FILES, ChoiceEpisodes, TaskDesign, read_choices
from noetik.errors import ConfigError
from noetik.evaluation.choices import HeldOutConfig, later_trials, leave_subjects_out

TASKS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "decision-tasks"
TWO_STEP = TaskDesign("two-step", (2, 4), (1, 2), ("reward",))
GAIN_LOSS = TaskDesign("igt", (4,), (1,), ("gain", "loss"), outcome_scale=100.0)
TINY = NeuralChoiceConfig(updates=60, hidden=16, device="cpu")


@pytest.fixture(scope="module")
def learners() -> ChoiceEpisodes:
    """Forty RW learners (alpha 0.4, beta 5) in a reversal task, 80 trials each."""
    params = np.tile([0.4, 5.0], (40, 1))
    return simulate(RescorlaWagner(), params, "noetik/ReversalLearning-v0", seed=0, n_trials=80)


@pytest.fixture(scope="module", params=["gru", "transformer"])
def fitted(request: pytest.FixtureRequest, learners: ChoiceEpisodes) -> NeuralChoiceModel:
    config = NeuralChoiceConfig(kind=request.param, updates=120, hidden=16, device="cpu")
    return NeuralChoiceModel(config).fit(learners)


def test_inputs_by_hand() -> None:
    """Two-step, one subject, two trials: (1, 3) rewarded 1, then (2, 2) rewarded 0."""
    episodes = ChoiceEpisodes.from_arrays(
        TWO_STEP, ("s",), [[[0, 2], [1, 1]]], [[[1.0], [0.0]]], n_trials=[2]
    )
    inputs = encode_inputs(episodes)
    assert inputs.rows.shape == (1, 3, 7) and inputs.rows.dtype == np.float32
    np.testing.assert_array_equal(inputs.rows[0, 0], np.zeros(7))
    np.testing.assert_allclose(inputs.rows[0, 1], [1, 0, 0, 0, 1, 0, np.log(2.0)], rtol=1e-6)
    np.testing.assert_array_equal(inputs.rows[0, 2], [0, 1, 0, 1, 0, 0, 0])
    # the predicted trial's first-stage choice conditions its second-stage head
    np.testing.assert_array_equal(inputs.current[0], [[1, 0], [0, 1], [0, 0]])
    assert (inputs.parts["choice"], inputs.parts["outcome"]) == (slice(0, 6), slice(6, 7))
    gains = ChoiceEpisodes.from_arrays(GAIN_LOSS, ("s",), [[[3]]], [[[100.0, -250.0]]])
    row = encode_inputs(gains).rows[0, 1]
    np.testing.assert_allclose(row, [0, 0, 0, 1, np.log(2.0), -np.log(3.5)], rtol=1e-6)


def test_predictions_are_causal_and_shaped_like_the_cognitive_ones(
    fitted: NeuralChoiceModel, learners: ChoiceEpisodes
) -> None:
    episodes = learners.select(np.arange(3)).first_trials([80, 50, 30])
    predictions = fitted.predict(episodes)
    reference = predict(RescorlaWagner(), [0.4, 5.0], episodes)
    assert predictions.log_lik.shape == reference.log_lik.shape == (3, 80)
    assert predictions.log_lik.dtype == np.float64 and predictions.levels == 1
    assert np.all(predictions.log_lik[~episodes.mask] == 0)
    assert np.all(predictions.log_lik[episodes.mask] < 0)
    assert set(np.unique(predictions.hits)) <= {0.0, 0.5, 1.0}
    log_probs = fitted.log_probs(episodes)
    np.testing.assert_allclose(np.exp(log_probs).sum(-1), 1.0, rtol=1e-5)
    chosen = np.take_along_axis(log_probs, episodes.choices, -1)[..., 0]
    np.testing.assert_allclose(predictions.log_lik[episodes.mask], chosen[episodes.mask])
    # changing trial 20 changes no prediction of trials 0..20, and some later one
    choices, outcomes = episodes.choices.copy(), episodes.outcomes.copy()
    choices[:, 20], outcomes[:, 20] = 1 - choices[:, 20], -outcomes[:, 20]
    changed = ChoiceEpisodes.from_arrays(
        episodes.design, episodes.subjects, choices, outcomes, episodes.n_trials
    )
    after = fitted.log_probs(changed)
    np.testing.assert_allclose(after[:, :21], log_probs[:, :21], rtol=1e-5, atol=1e-6)
    assert np.abs(after[:, 21:30] - log_probs[:, 21:30]).max() > 1e-4
    # the next trial's prediction is the row after each subject's last
    later = fitted.log_probs(learners.select(np.arange(3)))
    np.testing.assert_allclose(fitted.next_log_probs(episodes)[1], later[1, 50], rtol=1e-5)
    assert fitted.act(episodes, greedy=True).tolist() == [
        int(np.argmax(fitted.next_log_probs(episodes)[i])) for i in range(3)
    ]


def test_training_learns_and_the_same_seed_gives_the_same_weights(
    learners: ChoiceEpisodes,
) -> None:
    models = [
        NeuralChoiceModel(NeuralChoiceConfig(seed=s, **_tiny())).fit(learners) for s in (0, 0, 1)
    ]
    first, again, other = (m.net.state_dict() for m in models if m.net is not None)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)
    log = models[0].log
    assert log is not None and log.losses.shape == (60,)
    assert log.losses[-10:].mean() < log.losses[:5].mean() < np.log(2) + 0.05


def _tiny() -> dict[str, object]:
    return {"updates": 60, "hidden": 16, "device": "cpu", "val_fraction": 0.0}


def test_early_stopping_keeps_the_best_validation_weights(learners: ChoiceEpisodes) -> None:
    """Ten subjects, two held out for validation; a large learning rate overfits the eight
    quickly, so training stops long before its 2,000 updates with the best weights kept."""
    config = NeuralChoiceConfig(
        updates=2_000, hidden=32, lr=3e-2, eval_every=10, patience=3, device="cpu"
    )
    model = NeuralChoiceModel(config).fit(learners.select(np.arange(10)))
    log = model.log
    assert log is not None and len(log.losses) < 2_000
    assert len(log.val_losses) == len(log.losses) // 10 + 1
    best = int(np.argmin(log.val_losses))
    assert log.best_update == 10 * best and len(log.val_losses) - 1 - best == 3


def test_save_and_load(tmp_path: Path, fitted: NeuralChoiceModel, learners: ChoiceEpisodes) -> None:
    folder = fitted.save(tmp_path / "net")
    loaded = load_choice_model(folder)
    assert isinstance(loaded, NeuralChoiceModel) and loaded.config == fitted.config
    np.testing.assert_array_equal(
        loaded.predict(learners).log_lik, fitted.predict(learners).log_lik
    )
    assert not list(folder.glob("*.tmp")) and not list(folder.glob(".*"))
    # a damaged weights file, config or design: one line naming the file
    weights = folder / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ConfigError, match=r"weights\.safetensors: damaged") as info:
        NeuralChoiceModel.load(folder)
    assert "\n" not in str(info.value)
    fitted.save(folder)
    config = folder / "choice_model.json"
    payload = json.loads(config.read_text())
    payload["config"]["hidden"] = "many"
    config.write_text(json.dumps(payload))
    with pytest.raises(ConfigError, match="field 'hidden' must be int"):
        load_choice_model(folder)
    payload["config"]["hidden"] = 8
    config.write_text(json.dumps(payload))
    with pytest.raises(ConfigError, match="weights do not fit"):
        load_choice_model(folder)
    config.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_choice_model(folder)
    two_step = ChoiceEpisodes.from_arrays(TWO_STEP, ("s",), [[[0, 2]]], [[[1.0]]])
    with pytest.raises(ConfigError, match="was trained on task"):
        fitted.predict(two_step)
    with pytest.raises(ConfigError, match="not fitted"):
        NeuralChoiceModel(TINY).predict(learners)


def test_cognitive_adapter_keeps_the_contract(tmp_path: Path, learners: ChoiceEpisodes) -> None:
    rw = CognitiveChoiceModel(RescorlaWagner()).fit(learners.select(np.arange(10)), "subjects")
    gru = NeuralChoiceModel(TINY)
    assert isinstance(rw, ChoiceModel) and isinstance(gru, ChoiceModel)
    ten = learners.select(np.arange(10))
    assert rw.fitted_params.shape == (10, 2)
    direct = predict(RescorlaWagner(), rw.fitted_params, ten)
    np.testing.assert_array_equal(rw.predict(ten).log_lik, direct.log_lik)
    chosen = np.take_along_axis(rw.log_probs(ten), ten.choices, -1)[..., 0]
    np.testing.assert_allclose(chosen[ten.mask], direct.log_lik[ten.mask])
    with pytest.raises(ConfigError, match="predicts only those"):
        rw.predict(learners.select(np.arange(1, 11)))
    # after the last trial: the state the last update left
    short = ten.first_trials(np.full(10, 30))
    np.testing.assert_allclose(rw.next_log_probs(short), rw.log_probs(ten)[:, 30])
    assert rw.act(short, greedy=True).tolist() == rw.next_log_probs(short).argmax(1).tolist()
    loaded = load_choice_model(rw.save(tmp_path / "rw"))
    assert isinstance(loaded, CognitiveChoiceModel) and loaded.subjects == rw.subjects
    np.testing.assert_array_equal(loaded.fitted_params, rw.fitted_params)
    pooled = CognitiveChoiceModel(RescorlaWagner()).fit(ten)
    np.testing.assert_allclose(pooled.fitted_params, [0.4, 5.0], rtol=0.3)


def test_two_step_levels(tmp_path: Path) -> None:
    params = np.tile(HybridMBMF().defaults, (6, 1))
    episodes = simulate(HybridMBMF(), params, "noetik/TwoStep-v0", seed=0, n_trials=40)
    model = NeuralChoiceModel(NeuralChoiceConfig(kind="transformer", **_tiny())).fit(episodes)
    predictions = model.predict(episodes)
    assert predictions.levels == 2 and predictions.log_lik.shape == (6, 40)
    second = model.log_probs(episodes, level=1)
    assert second.shape == (6, 40, 2)
    np.testing.assert_allclose(np.exp(second).sum(-1), 1.0, rtol=1e-5)
    first = np.take_along_axis(model.log_probs(episodes), episodes.choices[..., :1], -1)[..., 0]
    option = episodes.choices[..., 1:] % 2
    total = first + np.take_along_axis(second, option, -1)[..., 0]
    np.testing.assert_allclose(predictions.log_lik, total, rtol=1e-5)


def test_held_out_schemes_score_networks_like_cognitive_models(learners: ChoiceEpisodes) -> None:
    config = HeldOutConfig(folds=4, n_boot=300)
    gru = NeuralChoiceModel(NeuralChoiceConfig(updates=100, hidden=16, device="cpu"))
    lso = leave_subjects_out(gru, learners, config)
    assert lso.model == "gru" and lso.params.shape == (4, 0)
    assert np.array_equal(lso.held_out, learners.mask)
    assert lso.scores.normalised_likelihood.low > lso.scores.chance
    later = later_trials(gru, learners, config)
    assert later.params.shape == (40, 0) and later.scores.n_decisions == 40 * 40
    assert not later.held_out[:, :40].any() and later.held_out[:, 40:].all()
    assert later.scores.normalised_likelihood.low > later.scores.chance
    rw = leave_subjects_out(RescorlaWagner(), learners, config)
    # the generating model is the better predictor, but the network is near it
    assert rw.scores.nll.mean < lso.scores.nll.mean < rw.scores.nll.mean + 0.15


def test_real_task_with_gain_and_loss() -> None:
    path = TASKS / PRESET_FILES["igt"]
    if not path.is_file():
        pytest.skip(f"hBayesDM example data not found at {TASKS}")
    episodes = read_choices(path, "igt")
    model = NeuralChoiceModel(TINY).fit(episodes)
    predictions = model.predict(episodes)
    assert predictions.log_lik.shape == (4, 100)
    assert np.all(np.isfinite(predictions.log_lik))


@pytest.mark.parametrize("kind", ["gru", "transformer"])
def test_training_runs_on_one_thread_and_restores_torch_threads(
    kind: str, learners: ChoiceEpisodes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The small networks train on one intra-op thread (sequence_threads); torch's own setting
    is back afterwards, also when training fails."""
    import noetik.agents.choice_nets.model as model_module

    seen: list[int] = []
    train = model_module._train

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(torch.get_num_threads())
        return train(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(model_module, "_train", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        config = NeuralChoiceConfig(kind=kind, updates=2, hidden=8, n_heads=2, device="cpu")
        NeuralChoiceModel(config).fit(learners.select(np.arange(4)))
        assert seen == [1] and torch.get_num_threads() == 2

        def broken(*args: object, **kwargs: object) -> object:
            raise RuntimeError("boom")

        monkeypatch.setattr(model_module, "_train", broken)
        with pytest.raises(RuntimeError, match="boom"):
            NeuralChoiceModel(config).fit(learners.select(np.arange(4)))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
