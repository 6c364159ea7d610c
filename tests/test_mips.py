"""MIPS (marginalised importance sampling over item categories): known answers."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from noetik.agents import ALGOS, EncoderConfig, ProblemSpec, TrainerConfig
from noetik.errors import ConfigError
from noetik.evaluation.ope.estimators import (
    LoggedEpisodes,
    bootstrap_ci,
    bootstrap_intervals,
    pdis_estimate,
    resampled_values,
    wpdis_estimate,
)
from noetik.evaluation.ope.logged import LoggedSplits, evaluate_logged, item_categories
from noetik.evaluation.ope.mips import (
    category_mass,
    logged_category_prob,
    mips_estimate,
    snmips_estimate,
)
from noetik.evaluation.ope.propensity import PropensityModel, calibration_split, fit_propensity
from noetik.evaluation.ope.simulated_logs import Policies, PolicySpec, make_problem
from noetik.utils.bootstrap import resample_counts
from tests import test_ope_catalogue as catalogue
from tests.test_ope_check import BEHAVIOUR, tiny


def _episodes(
    categories: np.ndarray, seed: int = 0, n: int = 40, h: int = 4, gamma: float = 0.9
) -> LoggedEpisodes:
    """Random μ, π over A actions per step, actions drawn from μ, ragged episode lengths."""
    rng = np.random.default_rng(seed)
    a = len(categories)
    behaviour = rng.dirichlet(np.ones(a), size=(n, h))
    pi = rng.dirichlet(np.ones(a), size=(n, h))
    actions = (behaviour.cumsum(axis=2) < rng.random((n, h, 1))).sum(axis=2).clip(max=a - 1)
    lengths = rng.integers(1, h + 1, size=n)
    mask = np.arange(h)[None, :] < lengths[:, None]
    flat_actions = actions.reshape(-1)
    pick = (*np.indices(actions.shape), actions)
    return LoggedEpisodes(
        rewards=rng.normal(1.0, 1.0, size=(n, h)),
        behavior_prob=behaviour[pick],
        target_prob=pi[pick],
        mask=mask,
        gamma=gamma,
        behavior_embed_prob=logged_category_prob(
            behaviour.reshape(n * h, a), categories, flat_actions
        ).reshape(n, h),
        target_embed_prob=logged_category_prob(
            pi.reshape(n * h, a), categories, flat_actions
        ).reshape(n, h),
    )


def test_own_category_per_action_is_pdis() -> None:
    data = _episodes(np.arange(7))
    np.testing.assert_array_equal(data.behavior_embed_prob, data.behavior_prob)
    assert mips_estimate(data).value == pdis_estimate(data).value
    assert snmips_estimate(data).value == wpdis_estimate(data).value
    assert mips_estimate(data, clip=2.0).ess == pdis_estimate(data, clip=2.0).ess


def test_one_category_is_the_on_policy_mean() -> None:
    data = _episodes(np.zeros(7, dtype=np.int64))
    returns = (data.rewards * data.gamma ** np.arange(data.mask.shape[1])).sum(axis=1)
    assert mips_estimate(data).value == pytest.approx(returns.mean(), rel=1e-12)
    assert snmips_estimate(data).value == pytest.approx(returns.mean(), rel=1e-12)
    assert mips_estimate(data).ess == pytest.approx(data.n_episodes)


def test_hand_worked_two_episodes() -> None:
    # episode 1: marginal ratios 0.5, 2 -> cumulative 0.5, 1; rewards 1, 2; γ = 0.5:
    #   0.5 * 1 + 1 * 0.5 * 2 = 1.5. episode 2: one step, ratio 3, reward 3: 9.
    # MIPS = (1.5 + 9) / 2 = 5.25. SNMIPS: step 0 (0.5 * 1 + 3 * 3) / (0.5 + 3) = 9.5 / 3.5,
    # step 1 (1 * 1 + 3 * 0) / (1 + 3) = 0.25 (episode 2's weight stays 3 after its end).
    data = LoggedEpisodes(
        rewards=np.array([[1.0, 2.0], [3.0, np.nan]]),
        behavior_prob=np.full((2, 2), 0.1),
        target_prob=np.full((2, 2), 0.1),
        mask=np.array([[True, True], [True, False]]),
        gamma=0.5,
        behavior_embed_prob=np.array([[0.5, 0.25], [0.2, 0.0]]),
        target_embed_prob=np.array([[0.25, 0.5], [0.6, np.nan]]),
    )
    est = mips_estimate(data)
    assert est.value == pytest.approx(5.25)
    np.testing.assert_allclose(est.per_episode, [1.5, 9.0])
    assert est.ess == pytest.approx(16 / 10)
    assert snmips_estimate(data).value == pytest.approx(9.5 / 3.5 + 0.25)
    assert pdis_estimate(data).value == pytest.approx((1.0 + 0.5 * 2.0 + 3.0) / 2)


def test_category_mass_scatter_adds() -> None:
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(9), size=11).astype(np.float32)
    cats = np.array([2, 0, 2, 4, 0, 0, 2, 4, 4])  # category 1 and 3 are empty
    mass = category_mass(probs, cats, chunk_rows=4)
    assert mass.shape == (11, 5) and mass.dtype == np.float64
    for c in range(5):
        np.testing.assert_allclose(mass[:, c], probs[:, cats == c].sum(axis=1), rtol=1e-6)
    actions = rng.integers(0, 9, size=11)
    logged = logged_category_prob(probs, cats, actions, chunk_rows=3)
    np.testing.assert_allclose(logged, mass[np.arange(11), cats[actions]])
    with pytest.raises(ValueError, match="categories must be >= 0"):
        category_mass(probs, cats - 1)
    with pytest.raises(ValueError, match="shape"):
        category_mass(probs, cats[:-1])


def test_validation() -> None:
    base = {
        "rewards": np.ones((1, 2)),
        "behavior_prob": np.full((1, 2), 0.2),
        "target_prob": np.full((1, 2), 0.2),
        "mask": np.ones((1, 2), dtype=bool),
    }
    with pytest.raises(ValueError, match="go together"):
        LoggedEpisodes(**base, behavior_embed_prob=np.ones((1, 2)))
    with pytest.raises(ValueError, match="behavior_embed_prob must be >= behavior_prob"):
        LoggedEpisodes(
            **base, behavior_embed_prob=np.full((1, 2), 0.1), target_embed_prob=np.ones((1, 2))
        )
    with pytest.raises(ValueError, match="target_embed_prob must be >= 0"):
        LoggedEpisodes(
            **base, behavior_embed_prob=np.ones((1, 2)), target_embed_prob=-np.ones((1, 2))
        )
    with pytest.raises(ValueError, match="shape"):
        LoggedEpisodes(**base, behavior_embed_prob=np.ones(2), target_embed_prob=np.ones(2))
    with pytest.raises(ValueError, match="MIPS needs"):
        mips_estimate(LoggedEpisodes(**base))
    assert "mips" not in resampled_values(LoggedEpisodes(**base), np.ones((1, 1)))


def test_bootstrap_matches_the_reference() -> None:
    data = _episodes(np.array([0, 1, 1, 2, 2, 2, 0]), seed=5)
    counts = resample_counts(np.random.default_rng(0), 3, data.n_episodes)
    values = resampled_values(data, counts)
    for b in range(3):
        taken = data.take(np.repeat(np.arange(data.n_episodes), counts[b].astype(np.int64)))
        assert values["mips"][b] == pytest.approx(mips_estimate(taken).value, rel=1e-12)
        assert values["snmips"][b] == pytest.approx(snmips_estimate(taken).value, rel=1e-12)
    fast = bootstrap_intervals(data, n_boot=50, seed=2)
    slow = bootstrap_ci(mips_estimate, data, n_boot=50, seed=2)
    np.testing.assert_allclose(fast["mips"], slow, rtol=1e-12)


def test_unbiased_when_reward_depends_on_the_category_only() -> None:
    """A tabular bandit: 2 contexts, 6 items in 3 categories, Bernoulli rewards whose mean
    depends on (context, category); π and μ differ inside categories. The mean of MIPS over
    400 seeded logs is the true value within 4 standard errors, and its spread is below IS's."""
    cats = np.array([0, 0, 1, 1, 2, 2])
    q = np.array([[0.2, 0.5, 0.9], [0.7, 0.3, 0.1]])  # (context, category)
    behaviour = np.array([[0.3, 0.05, 0.2, 0.05, 0.1, 0.3], [0.1, 0.2, 0.3, 0.1, 0.2, 0.1]])
    pi = np.array([[0.02, 0.18, 0.05, 0.05, 0.6, 0.1], [0.5, 0.05, 0.05, 0.05, 0.3, 0.05]])
    truth = 0.5 * sum(float(pi[x] @ q[x, cats]) for x in range(2))
    n, logs = 300, 400
    mips, ips = np.zeros(logs), np.zeros(logs)
    for k in range(logs):
        rng = np.random.default_rng(1000 + k)
        x = rng.integers(0, 2, size=n)
        a = (behaviour[x].cumsum(axis=1) < rng.random((n, 1))).sum(axis=1).clip(max=5)
        r = (rng.random(n) < q[x, cats[a]]).astype(np.float64)
        data = LoggedEpisodes(
            rewards=r[:, None],
            behavior_prob=behaviour[x, a][:, None],
            target_prob=pi[x, a][:, None],
            mask=np.ones((n, 1), dtype=bool),
            behavior_embed_prob=logged_category_prob(behaviour[x], cats, a)[:, None],
            target_embed_prob=logged_category_prob(pi[x], cats, a)[:, None],
        )
        mips[k], ips[k] = mips_estimate(data).value, pdis_estimate(data).value
    se = mips.std(ddof=1) / np.sqrt(logs)
    assert abs(mips.mean() - truth) < 4 * se
    assert mips.std() < 0.6 * ips.std()


# --- the ope lens: MIPS from the same passes as π and μ, at catalogue scale and dense -------


@pytest.fixture(scope="module")
def cat_splits() -> LoggedSplits:
    """The 300-item problem of ``test_ope_catalogue`` (160 training, 80 test episodes)."""
    return LoggedSplits(catalogue._log(160, seed=0), catalogue._log(80, seed=1), key="mips")


@pytest.fixture(scope="module")
def cat_mu(cat_splits: LoggedSplits) -> PropensityModel:
    """Its behaviour model at catalogue scale (sampled-softmax BC, chunked calibration)."""
    fit, calib = calibration_split(cat_splits.train, catalogue.MU.calib_fraction)
    return fit_propensity(fit, calib, catalogue.MU)


@pytest.fixture(scope="module")
def cat_iql(cat_splits: LoggedSplits) -> Any:
    """A catalogue-scale IQL agent after a few updates (its actor is the target)."""
    config = ALGOS["iql"](
        catalogue=catalogue.CAT, encoder=EncoderConfig(hidden=(32,)), device="cpu"
    )
    agent = config.create(ProblemSpec.from_transitions(cat_splits.train))
    agent.fit(cat_splits.train, 20, trainer=TrainerConfig(progress=False, tensorboard=False))
    return agent.eval()


class _DenseModel(PropensityModel):
    """The same calibrated behaviour model through its (B, A) probabilities."""

    catalogue = False  # type: ignore[assignment]


def _dense_model(model: PropensityModel) -> PropensityModel:
    dense = _DenseModel.__new__(_DenseModel)
    dense.__dict__.update(model.__dict__)
    return dense


def _with(data: LoggedSplits, categories: np.ndarray) -> LoggedSplits:
    return dataclasses.replace(data, categories=categories)


def test_lens_mips_at_catalogue_scale_equals_the_dense_lens(
    cat_splits: LoggedSplits, cat_mu: PropensityModel, cat_iql: Any
) -> None:
    cats = np.arange(catalogue.A) % 17
    chunked = evaluate_logged(cat_iql, _with(cat_splits, cats), catalogue.CONFIG, propensity=cat_mu)
    dense = evaluate_logged(
        catalogue._Dense(cat_iql),
        _with(cat_splits, cats),
        catalogue.CONFIG,
        propensity=_dense_model(cat_mu),
    )
    assert {"mips", "snmips", "mips_ess"} <= set(chunked)
    for name in ("mips", "snmips", "mips_ess", "pdis", "is"):
        for key, want in dense[name].items():
            assert chunked[name][key] == pytest.approx(want, rel=1e-5), (name, key)
    # fewer, coarser categories: the marginal weights are less extreme than the item weights
    assert chunked["mips_ess"]["mean"] > chunked["ess"]["mean"]
    without = evaluate_logged(cat_iql, cat_splits, catalogue.CONFIG, propensity=cat_mu)
    assert "mips" not in without  # the same π from float32 or float64 log-partitions:
    assert without["pdis"] == pytest.approx(chunked["pdis"], rel=1e-5)


def test_lens_mips_known_answers(
    cat_splits: LoggedSplits, cat_mu: PropensityModel, cat_iql: Any
) -> None:
    one = evaluate_logged(
        cat_iql,
        _with(cat_splits, np.zeros(catalogue.A, dtype=np.int64)),
        catalogue.CONFIG,
        propensity=cat_mu,
    )
    assert one["mips"]["mean"] == pytest.approx(one["logged_value"]["mean"], rel=1e-9)
    own = evaluate_logged(
        cat_iql, _with(cat_splits, np.arange(catalogue.A)), catalogue.CONFIG, propensity=cat_mu
    )
    assert own["mips"]["mean"] == pytest.approx(own["pdis"]["mean"], rel=1e-5)
    assert own["snmips"]["mean"] == pytest.approx(own["wpdis"]["mean"], rel=1e-5)
    with pytest.raises(ConfigError, match="ope categories"):
        evaluate_logged(
            cat_iql, _with(cat_splits, np.arange(5)), catalogue.CONFIG, propensity=cat_mu
        )


def test_item_categories_are_the_first_tags(tmp_path: Path) -> None:
    from noetik.data.dataset import load_kuairand
    from noetik.data.synthetic import SynthConfig, synthesize
    from noetik.data.transitions import ItemVocab

    synthesize(tmp_path, SynthConfig(n_users=20, n_videos=50, pool_size=50, seed=0))
    ds = load_kuairand(tmp_path)
    vocab = ItemVocab.from_dataset(ds).video_ids
    extra = np.append(vocab, vocab.max() + 1)  # a video the table does not list: no tag
    cats = item_categories(ds, extra)
    assert cats is not None and cats.shape == (len(extra),) and cats.dtype == np.int64
    first = {
        int(v): (tags[0] if tags is not None and len(tags) else -1)
        for v, tags in ds.videos().select("video_id", "tags").collect().iter_rows()
    }
    tags = np.array([first.get(int(v), -1) for v in extra])
    assert cats[-1] == 0  # the untagged category comes first
    for tag in np.unique(tags):  # one category per first tag, numbered in tag order
        assert len(np.unique(cats[tags == tag])) == 1
    assert np.all(np.diff(cats[np.argsort(tags, kind="stable")]) >= 0)


# --- the OPE check: MIPS rows, categories of the pool, a trained agent as target -----------


def _bc_run(sim_dir: str, out: Path, steps: int) -> Path:
    """A behaviour cloning run trained for ``steps`` updates on the simulator's dataset."""
    from noetik.agents.algorithms.bc import BCConfig
    from noetik.agents.core.runs import train_run
    from noetik.agents.core.task import DataSource, TaskConfig

    task = TaskConfig(DataSource(str(Path(sim_dir).parent / "data")), simulator=sim_dir)
    train_run(BCConfig(seed=0, device="cpu", batch_size=64), task, out, steps)
    return out


def test_check_reports_mips_and_is_exact_on_policy() -> None:
    from noetik.evaluation.ope.check import run_ope_check

    same = dataclasses.replace(BEHAVIOUR, name="same")
    rows = run_ope_check(tiny(n_datasets=2, targets=(same,), estimators=("PDIS", "MIPS")))
    by = {r["estimator"]: r for r in rows}
    assert set(by) == {"PDIS", "MIPS"}
    # π = μ: every ratio is 1 (marginal or not), both are the on-policy mean
    assert by["MIPS"]["mean_estimate"] == pytest.approx(by["PDIS"]["mean_estimate"], rel=1e-12)
    assert by["MIPS"]["mean_ess"] == pytest.approx(200)


def test_check_without_categories_drops_mips_by_default_and_refuses_it_named() -> None:
    from noetik.evaluation.ope.check import OPECheckConfig, run_ope_check

    config = OPECheckConfig(env_id="noetik/InterestEvolution-v0", estimators=("IS", "MIPS"))
    with pytest.raises(ConfigError, match="MIPS needs categories"):
        run_ope_check(config)
    with pytest.raises(ConfigError, match="run_dir"):
        PolicySpec("a", "agent")


def test_kuairand_categories_are_the_main_tag_cluster(sim_dir: str) -> None:
    problem = make_problem("noetik/KuaiRand-v0", 3, {"sim_dir": sim_dir}, 40)
    envs: Any = problem.make(1)
    cluster = np.asarray(envs.simulator.item_model.items.cluster)
    assert problem.categories is not None and problem.video_ids is not None
    assert problem.categories.shape == (problem.n_actions,) == cluster.shape
    np.testing.assert_array_equal(problem.categories[cluster >= 0], cluster[cluster >= 0])
    assert (problem.categories[cluster < 0] == cluster.max() + 1).all()
    np.testing.assert_array_equal(problem.video_ids, envs.candidate_video_ids)


def test_agent_target_is_the_agents_softmax_over_the_pool(sim_dir: str, tmp_path: Path) -> None:
    import torch

    from noetik.agents.core.base import Agent

    run = _bc_run(sim_dir, tmp_path / "bc", steps=5)
    problem = make_problem("noetik/KuaiRand-v0", 3, {"sim_dir": sim_dir}, 40)
    spec = PolicySpec("bc", "agent", run_dir=str(run))
    policies = Policies(problem, (BEHAVIOUR, spec), 128)
    obs = problem.make(4).reset(seed=0)[0]
    agent = Agent.load(run)
    columns = np.searchsorted(np.asarray(agent.spec.video_ids), problem.video_ids)
    logits = agent.scores(torch.as_tensor(obs)).detach().double().numpy()[:, columns]
    want = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(
        policies.table(obs)["bc"], want / want.sum(axis=1, keepdims=True), rtol=1e-6
    )


@pytest.mark.slow
def test_mips_beats_is_for_a_trained_agent_at_1000_items(tmp_path: Path) -> None:
    """The validation at 1,000 items (a few minutes): a synthetic dataset with 1,000 videos,
    a small simulator, BC trained briefly; its softmax over the pool is the target. MIPS's
    relative RMSE is below half of IS's, and IS's ESS is a few percent of MIPS's."""
    import torch

    from noetik.data.dataset import load_kuairand
    from noetik.data.synthetic import SynthConfig, synthesize
    from noetik.evaluation.ope.check import OPECheckConfig, run_ope_check
    from noetik.simulators.kuairand.fit import fit_response_model
    from noetik.simulators.kuairand.world import DEFAULT_FIT

    synthesize(tmp_path / "data", SynthConfig.for_release("pure", users=300, videos=1_000))
    sim = fit_response_model(
        load_kuairand(tmp_path / "data"), DEFAULT_FIT, device=torch.device("cpu")
    )
    sim.save(tmp_path / "sim")
    run = _bc_run(str(tmp_path / "sim"), tmp_path / "bc", steps=200)
    config = OPECheckConfig(
        env_id="noetik/KuaiRand-v0",
        env_options={"sim_dir": str(tmp_path / "sim"), "candidate_pool": "all"},
        horizon=5,
        n_episodes=300,
        n_datasets=6,
        behaviour=BEHAVIOUR,
        targets=(PolicySpec("bc", "agent", run_dir=str(run)),),
        estimators=("IS", "MIPS"),
        n_boot=100,
        n_truth=2_000,
        truth_batch=2_000,
    )
    rows = {r["estimator"]: r for r in run_ope_check(config)}
    assert rows["MIPS"]["rel_rmse"] <= 0.5 * rows["IS"]["rel_rmse"]
    assert rows["MIPS"]["mean_ess"] > 5 * rows["IS"]["mean_ess"]
