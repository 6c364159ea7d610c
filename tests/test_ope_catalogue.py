"""The ``ope`` lens at catalogue scale against its dense computation on the same weights.

The catalogue path (item vectors from content and hashed ids, chunked scoring) is forced on a
300-item problem (``catalogue.min_actions = 1``, 64-item chunks), where the (states × A)
matrices still fit, so every chunked quantity can be checked against the dense one: the
behaviour model's temperature, diagnostics and propensities, the target policy's
probabilities, FQE's q̂ and v̂ (π kept on the logged actions only), and the final estimates.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from noetik.agents import ALGOS, EncoderConfig, ProblemSpec, TrainerConfig
from noetik.agents.core import serving
from noetik.agents.networks.catalogue import CatalogueConfig
from noetik.agents.networks.topk import chunked_softmax_moments
from noetik.cli.main import main
from noetik.data.rewards import RewardConfig
from noetik.data.synthetic import SynthConfig, synthesize
from noetik.data.transitions import ItemVocab, Transitions, episode_links
from noetik.errors import ConfigError
from noetik.evaluation import leaderboard
from noetik.evaluation.ope import logged
from noetik.evaluation.ope.fqe import ActionProbs, FQEConfig, fit_fqe
from noetik.evaluation.ope.logged import (
    LoggedOPEConfig,
    LoggedSplits,
    evaluate_logged,
    evaluated_episodes,
    pad_episodes,
)
from noetik.evaluation.ope.propensity import (
    PropensityConfig,
    PropensityModel,
    _calib_rows,
    calibration_split,
    expected_calibration_error,
    fit_propensity,
    fit_temperature,
    newton_inverse_temperature,
)

A, D = 300, 16
CAT = CatalogueConfig(
    min_actions=1, dim=8, id_rows=16, hash_buckets=32, field_buckets=8, negatives=32, chunk_items=64
)
MU = PropensityConfig(
    steps=60,
    batch_size=64,
    hidden=(16,),
    lr=3e-3,
    device="cpu",
    calib_fraction=0.25,
    catalogue=CAT,
    catalogue_calib_rows=80,
)
CONFIG = LoggedOPEConfig(
    gamma=0.9,
    horizon=6,
    temperature=0.7,
    n_boot=100,
    max_episodes=50,
    catalogue_max_steps=10_000,  # the dense and the chunked lens evaluate the same episodes
    propensity=MU,
    fqe=FQEConfig(kind="linear", ridge=1.0, time_feature=True, iterations=8),
)


def _log(n_episodes: int, seed: int) -> Transitions:
    """Episodes of 1-9 steps; the logged item depends on the state (a learnable behaviour),
    the reward on the item and the state."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 10, n_episodes)
    n = int(lengths.sum())
    episode_id = np.repeat(np.arange(n_episodes), lengths).astype(np.int64)
    obs = rng.standard_normal((n, D)).astype(np.float32)
    taste = rng.standard_normal((D, A)).astype(np.float32)
    logits = 2.0 * obs @ taste / np.sqrt(D) - 0.02 * np.arange(A)  # a popular head
    action = np.array([rng.choice(A, p=np.exp(z) / np.exp(z).sum()) for z in logits])
    done, next_index = episode_links(episode_id)
    signals = rng.random((n, 12), dtype=np.float32)
    return Transitions(
        obs=obs.astype(np.float16),
        action=action.astype(np.int64),
        reward=((action % 7 == 0) + 0.3 * obs[:, 0] + signals[:, 0]).astype(np.float32),
        done=done,
        next_index=next_index,
        episode_id=episode_id,
        step=(np.arange(n) - np.repeat(np.cumsum(lengths) - lengths, lengths)).astype(np.int32),
        user_id=(episode_id % 30).astype(np.int32),
        time_ms=(1_000 * np.arange(n)).astype(np.int64),
        signals=signals,
        vocab=ItemVocab.from_ids(np.arange(1_000, 1_000 + A)),
        reward_config=RewardConfig(),
    )


@pytest.fixture(scope="module")
def splits() -> LoggedSplits:
    """160 training and 80 test episodes over 300 items, one vocabulary."""
    return LoggedSplits(_log(160, seed=0), _log(80, seed=1), key="catalogue-test")


#: The temperatures of the chunked moment passes the behaviour model's calibration made.
PASSES: list[float] = []


@pytest.fixture(scope="module")
def mu(splits: LoggedSplits) -> PropensityModel:
    """The calibrated behaviour model at catalogue scale (sampled softmax BC)."""
    fit, calib = calibration_split(splits.train, MU.calib_fraction)
    moments = serving.softmax_moments

    def counted(agent: Any, obs: Any, history: Any, temperature: float = 1.0) -> Any:
        PASSES.append(temperature)
        return moments(agent, obs, history, temperature)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(serving, "softmax_moments", counted)
        model = fit_propensity(fit, calib, MU)
    assert model.catalogue
    return model


@pytest.fixture(scope="module")
def iql(splits: LoggedSplits) -> Any:
    """A catalogue-scale IQL agent after a few updates (its actor is the target policy)."""
    config = ALGOS["iql"](catalogue=CAT, encoder=EncoderConfig(hidden=(32,)), device="cpu")
    agent = config.create(ProblemSpec.from_transitions(splits.train))
    agent.fit(splits.train, 20, trainer=TrainerConfig(progress=False, tensorboard=False))
    return agent.eval()


class _Dense:
    """The same weights seen through ``scores`` (B, A) only: the lens's dense path."""

    def __init__(self, agent: Any) -> None:
        self.agent, self.spec, self.device, self.encoder = agent, agent.spec, "cpu", agent.encoder

    def scores(self, obs: torch.Tensor, history: Any = None) -> torch.Tensor:
        return self.agent.scores(obs, history)  # type: ignore[no-any-return]


class _DenseMu:
    """μ of the same behaviour model from its (B, A) probabilities."""

    def __init__(self, model: PropensityModel) -> None:
        self.model = model

    def prob_of(self, obs: np.ndarray, actions: np.ndarray, history: Any = None) -> np.ndarray:
        return self.model.probs(obs)[np.arange(len(actions)), actions]  # type: ignore[no-any-return]


def test_chunked_softmax_moments_equal_the_dense_ones() -> None:
    gen = torch.Generator().manual_seed(0)
    query = 4.0 * torch.randn(5, 4, generator=gen)  # scores spread over ~30 nats
    w, b = torch.randn(300, 4, generator=gen), torch.randn(300, generator=gen)
    chunks = [
        (lo, torch.arange(lo, min(lo + 64, 300)), w[lo : lo + 64], b[lo : lo + 64])
        for lo in range(0, 300, 64)
    ]
    lse, mean, var = chunked_softmax_moments(query, chunks)
    scores = (query @ w.T + b).double()
    p = torch.softmax(scores, -1)
    dense_mean = (p * scores).sum(-1)
    dense_var = (p * (scores - dense_mean[:, None]) ** 2).sum(-1)
    torch.testing.assert_close(lse, scores.logsumexp(-1), rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(mean, dense_mean, rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(var, dense_var, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("t0", [0.5, 2.0])
def test_newton_finds_the_bisection_temperature_in_a_few_passes(t0: float) -> None:
    gen = torch.Generator().manual_seed(1)
    logits = 3.0 * torch.randn(400, 50, generator=gen, dtype=torch.float64)
    actions = torch.multinomial(torch.softmax(logits / t0, -1), 1, generator=gen)[:, 0]
    passes: list[float] = []

    def derivatives(beta: float) -> tuple[float, float]:
        passes.append(beta)
        p = torch.softmax(beta * logits, -1)
        mean = (p * logits).sum(-1)
        var = (p * (logits - mean[:, None]) ** 2).sum(-1)
        grad = mean - logits.gather(1, actions[:, None])[:, 0]
        return float(grad.mean()), float(var.mean())

    beta = newton_inverse_temperature(derivatives)
    assert 1.0 / beta == pytest.approx(fit_temperature(logits, actions), rel=1e-5)
    assert len(passes) <= 8  # the bisection takes ~50
    # every logged action is the top logit: the NLL falls for ever as T -> 0, T stops at the bound
    top = logits.argmax(-1)
    passes.clear()
    actions = top
    assert newton_inverse_temperature(derivatives, bounds=(0.01, 10.0)) == pytest.approx(100.0)
    assert fit_temperature(logits, top, bounds=(0.01, 10.0)) == 0.01
    assert len(passes) < 20  # Newton's steps grow as the NLL flattens out towards the bound


def test_behaviour_model_at_catalogue_scale_equals_its_dense_computation(
    splits: LoggedSplits, mu: PropensityModel
) -> None:
    # the temperature and diagnostics on the same calibration rows, from (rows, A) logits
    _, calib = calibration_split(splits.train, MU.calib_fraction)
    rows = _calib_rows(calib, MU.catalogue_calib_rows, MU.seed)
    obs = torch.as_tensor(calib.obs[rows], dtype=torch.float32)
    actions = torch.as_tensor(calib.action[rows])
    with torch.no_grad():
        logits = mu.agent.scores(obs)
    temperature = fit_temperature(logits, actions)
    assert mu.temperature == pytest.approx(temperature, rel=1e-5)
    assert mu.temperature != pytest.approx(1.0, abs=0.05)  # calibration did something
    assert mu.diagnostics["calib_rows"] == len(rows)
    # Newton from T = 1 (the "before" diagnostics' pass), then quadratic convergence
    assert PASSES[0] == 1.0 and PASSES[-1] == pytest.approx(mu.temperature) and len(PASSES) <= 4
    for when, t in (("before", 1.0), ("after", mu.temperature)):
        probs = (1 - A * mu.min_prob) * torch.softmax(logits.double() / t, -1) + mu.min_prob
        nll = -torch.log(probs[torch.arange(len(rows)), actions]).mean()
        ece = expected_calibration_error(probs.numpy(), actions.numpy(), MU.ece_bins)
        assert mu.diagnostics[f"nll_{when}"] == pytest.approx(float(nll), rel=1e-6)
        assert mu.diagnostics[f"ece_{when}"] == pytest.approx(ece, rel=1e-5, abs=1e-7)
    # propensities of logged actions: chunked log-partition against the dense softmax
    t = splits.test
    chunked = mu.prob_of(t.obs, t.action)
    dense = mu.probs(t.obs)[np.arange(len(t)), t.action]
    np.testing.assert_allclose(chunked, dense, rtol=1e-5)
    assert chunked.min() >= mu.min_prob and mu.min_prob * A <= MU.floor_mass


def test_target_probabilities_of_a_history_agent_equal_the_dense_ones(
    splits: LoggedSplits,
) -> None:
    encoder = EncoderConfig(kind="transformer", d_model=16, n_heads=2, n_layers=1, history_len=3)
    config = ALGOS["bc"](catalogue=CAT, encoder=encoder, device="cpu", batch_size=32)
    agent = config.create(ProblemSpec.from_transitions(splits.train))
    agent.fit(splits.train, 10, trainer=TrainerConfig(progress=False, tensorboard=False))
    agent.eval()
    rows = np.arange(0, len(splits.test), 7)
    items = torch.as_tensor(np.unique(splits.test.action[rows]))
    policy = logged._Policy(agent, splits.test, CONFIG)
    dense = logged._Policy(_Dense(agent), splits.test, CONFIG).probs(splits.test.obs[rows], rows)
    np.testing.assert_allclose(policy.item_probs(rows, items), dense[:, items], rtol=1e-5)


@pytest.mark.parametrize("policy", ["softmax", "epsilon_greedy"])
def test_target_probabilities_and_fqe_equal_the_dense_ones(
    splits: LoggedSplits, iql: Any, policy: str
) -> None:
    config = dataclasses.replace(CONFIG, policy=policy, epsilon=0.2)
    rows, mask = pad_episodes(splits.test, config.horizon, config.max_episodes, config.seed)
    chunked = logged._catalogue_steps(logged._Policy(iql, splits.test, config), rows, mask, config)
    dense = logged._dense_steps(
        logged._Policy(_Dense(iql), splits.test, config), rows, mask, config
    )
    for name, got, want in zip(("π(a|s)", "q̂", "v̂"), chunked[:3], dense[:3], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=name)
    if policy == "softmax":  # log π(a|s) = f_a / T − log Z_T, one chunked pass per state
        obs = torch.as_tensor(splits.test.obs[rows[mask]], dtype=torch.float32)
        lse = serving.softmax_log_partition(iql, obs, None, config.temperature)
        torch.testing.assert_close(lse, (iql.scores(obs) / config.temperature).logsumexp(-1))
        spread = chunked[0].max() / chunked[0].min()
        assert spread > 3.0  # π is far from uniform: the check can tell them apart


def test_fqe_over_the_logged_actions_is_exact_and_needs_all_of_them() -> None:
    rng = np.random.default_rng(3)
    n, h, d, a = 40, 4, 5, 50
    obs = rng.standard_normal((n, h, d)).astype(np.float32)
    actions = rng.integers(0, 12, (n, h))  # only 12 of the 50 actions are logged
    rewards = rng.standard_normal((n, h))
    mask = np.arange(h)[None, :] < rng.integers(1, h + 1, n)[:, None]
    probs = rng.dirichlet(np.full(a, 0.3), size=(n, h))
    config = FQEConfig(kind="linear", ridge=0.5, time_feature=True, iterations=h)
    dense = fit_fqe(obs, actions, rewards, mask, probs, 0.9, config)
    listed = np.arange(0, 20)  # every logged action, and a few that were not
    subset = ActionProbs(listed, probs[..., listed])
    sparse = fit_fqe(obs, actions, rewards, mask, subset, 0.9, config, n_actions=a)
    flat = obs.reshape(-1, d)
    steps = np.tile(np.arange(h), n)
    np.testing.assert_allclose(sparse.q(flat, steps), dense.q(flat, steps), rtol=1e-9, atol=1e-9)
    for got, want in zip(
        sparse.estimates(obs, actions, subset, mask),
        dense.estimates(obs, actions, probs, mask),
        strict=True,
    ):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    missing = ActionProbs(listed[1:], probs[..., listed[1:]])
    with pytest.raises(ConfigError, match="every action"):
        fit_fqe(obs, actions, rewards, mask, missing, 0.9, config, n_actions=a)
    with pytest.raises(ConfigError, match="linear"):
        fit_fqe(obs, actions, rewards, mask, subset, 0.9, FQEConfig(kind="tabular"), n_actions=a)


def test_lens_estimates_equal_the_dense_lens(
    splits: LoggedSplits, mu: PropensityModel, iql: Any
) -> None:
    chunked = evaluate_logged(iql, splits, CONFIG, propensity=mu)
    dense = evaluate_logged(_Dense(iql), splits, CONFIG, propensity=_DenseMu(mu))
    assert set(chunked) == set(dense)
    for name, value in dense.items():
        for key, want in value.items():
            assert np.isfinite(chunked[name][key]), (name, key)
            assert chunked[name][key] == pytest.approx(want, rel=1e-5, abs=1e-7), (name, key)


def test_catalogue_scale_evaluates_a_bounded_subsample(
    splits: LoggedSplits, mu: PropensityModel, iql: Any
) -> None:
    t = splits.test
    config = dataclasses.replace(CONFIG, max_episodes=None, catalogue_max_steps=60)
    cap, total = evaluated_episodes(iql, t, config)
    assert total == 80 and evaluated_episodes(_Dense(iql), t, config) == (None, 80)
    rows, _ = pad_episodes(t, config.horizon)
    mean_steps = (rows >= 0).sum(1).mean()
    assert cap == int(60 / mean_steps) and 5 <= cap < 80
    assert evaluated_episodes(iql, t, dataclasses.replace(config, max_episodes=3))[0] == 3
    lens = evaluate_logged(iql, splits, config, propensity=mu)
    assert lens["ess"]["mean"] <= cap
    with pytest.raises(ConfigError, match="linear"):
        evaluate_logged(iql, splits, dataclasses.replace(config, fqe=FQEConfig()), propensity=mu)


def test_noetik_evaluate_runs_the_ope_lens_at_catalogue_scale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data, cache, run = tmp_path / "data", tmp_path / "cache", tmp_path / "bc"
    synthesize(data, SynthConfig.for_release("pure", users=40, videos=120, seed=1))
    config = {
        "batch_size": 32,
        "encoder": {"kind": "mlp", "hidden": [16]},
        "catalogue": dataclasses.asdict(CAT),
    }
    (tmp_path / "bc.json").write_text(json.dumps(config))
    train = ["train", "bc", "--data", str(data), "--cache", str(cache), "--steps", "4"]
    assert main([*train, "--out", str(run), "--config", str(tmp_path / "bc.json")]) == 0
    fit = logged.fit_propensity

    def checked_fit(train: Any, calib: Any, config: Any, content: Any = None) -> Any:
        assert content is not None  # the catalogue-scale BC reads the videos' content
        return fit(train, calib, config, content)

    # the lens's defaults with a small behaviour model (catalogue path forced) and budget
    small = functools.partial(LoggedOPEConfig, n_boot=50, catalogue_max_steps=100, propensity=MU)
    monkeypatch.setattr(logged, "LoggedOPEConfig", small)
    monkeypatch.setattr(logged, "fit_propensity", checked_fit)
    capsys.readouterr()
    out = tmp_path / "board"
    assert main(["evaluate", str(run), "--no-online", "--json", "--out", str(out)]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert set(entry["ope"]) >= {"dm", "is", "wis", "pdis", "wpdis", "dr", "ess"}
    for name, value in entry["ope"].items():
        assert all(np.isfinite(v) for v in value.values()), name
        assert value["low"] <= value["mean"] <= value["high"], name
    assert "subsample" in entry["notes"]["ope"], entry["notes"]
    rows = (out / "leaderboard.csv").read_text().splitlines()
    assert sum(",ope,dr," in r for r in rows) == 1
    # the splits are released after the lens (gigabytes at 4.37M items); a lens that ran
    # with a note is not reported as refused
    released: list[bool] = []
    release = leaderboard._Datasets.release_ope

    def spy(self: Any) -> None:
        release(self)
        released.append(not any(n.startswith("ope:") for s in self.slots.values() for n in s))

    monkeypatch.setattr(leaderboard._Datasets, "release_ope", spy)
    assert main(["evaluate", str(run), "--no-online", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert released == [True]
    assert "bc: ope lens: evaluated a seeded subsample" in text and "no ope lens" not in text


def test_explanations_at_catalogue_scale_integrate_over_8_steps_and_read_q_of_candidates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from noetik.agents.core.runs import load_run
    from noetik.explain.explain_context import run_contexts
    from noetik.explain.explanation import default_steps, explain_recommendation

    data, cache, run = tmp_path / "data", tmp_path / "cache", tmp_path / "iql"
    synthesize(data, SynthConfig.for_release("pure", users=30, videos=100, seed=2))
    config = {"batch_size": 32, "encoder": {"kind": "mlp", "hidden": [16]}}
    (tmp_path / "iql.json").write_text(json.dumps({**config, "catalogue": dataclasses.asdict(CAT)}))
    train = ["train", "iql", "--data", str(data), "--cache", str(cache), "--steps", "4"]
    assert main([*train, "--out", str(run), "--config", str(tmp_path / "iql.json")]) == 0
    capsys.readouterr()
    assert main(["explain", str(run), "--sample", "1", "--json"]) == 0
    (payload,) = json.loads(capsys.readouterr().out)
    assert payload["n_steps"] == 8
    agent, contexts = run_contexts(run, None, n_sample=1, seed=0)
    assert default_steps(agent) == 8 and default_steps(load_run(run)[2]) == 8
    e = explain_recommendation(agent, contexts[0], k_runner_ups=2)
    obs = contexts[0].obs_tensor()
    with torch.no_grad():
        q = agent.q_values(obs)[0]  # every item, for the test only
        log_probs = agent.policy_log_probs(obs)[0]
    for c in (e.recommended, *e.runner_ups):
        assert c.q_value == pytest.approx(float(q[c.item.action]), abs=1e-5)
        assert c.probability == pytest.approx(float(log_probs[c.item.action].exp()), rel=1e-4)
