"""Validation of off-policy evaluation against ground truth computed by simulation.

In an environment whose true policy values can be rolled out (``noetik/RECEnv-v0``,
``noetik/InterestEvolution-v0``, ``noetik/KuaiRand-v0``):

1. a behaviour policy μ with known probabilities logs ``n_episodes`` episodes (one per user,
   truncated at ``horizon``), ``n_datasets`` times with independent seeds;
2. the true value of each target π is the Monte-Carlo mean of the discounted return over
   ``n_truth`` fresh users following π (with its standard error);
3. on each logged dataset, every estimator (IS, WIS, PDIS, WPDIS, DR with an FQE model fitted
   on that dataset, DM = the FQE model alone, and MIPS / SNMIPS over the categories of the
   actions, :mod:`noetik.evaluation.ope.mips`, where the environment has them) gives an
   estimate and a 95 % percentile bootstrap interval over episodes (``n_boot`` resamples; the
   FQE model held fixed);
4. per (target, estimator): mean estimate, bias, RMSE (relative to the true value), the
   fraction of datasets within 10 % of the truth, the coverage of the intervals, mean ESS.

The goal (issue 5): for targets close to μ, DR within 10 % relative error (here: relative
RMSE <= 0.10) and 95 % interval coverage in [0.85, 0.99]; rows carry ``goal`` = ``"met"`` /
``"missed"`` for DR on targets marked ``close``. :func:`default_check` holds the documented
defaults per environment; ``scripts/ope_check.py`` runs them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from rich.progress import Progress

from noetik.errors import ConfigError
from noetik.evaluation.ope.estimators import (
    LoggedEpisodes,
    OPEEstimate,
    direct_method,
    dr_estimate,
    is_estimate,
    pdis_estimate,
    wis_estimate,
    wpdis_estimate,
)
from noetik.evaluation.ope.fqe import FQEConfig, fit_fqe
from noetik.evaluation.ope.mips import logged_category_prob, mips_estimate, snmips_estimate
from noetik.evaluation.ope.simulated_logs import (
    ENV_PREFIX,
    EnvProblem,
    LoggedRollout,
    Policies,
    PolicySpec,
    bootstrap_replicates,
    make_problem,
    rollout,
)
from noetik.utils.bootstrap import percentile_interval
from noetik.utils.progress import track
from noetik.utils.seeding import rng as seeded_rng

__all__ = [
    "DEFAULT_TARGETS",
    "ESTIMATORS",
    "OPECheckConfig",
    "PolicySpec",
    "default_check",
    "format_table",
    "run_ope_check",
]

#: Every estimator the check runs, in table order.
ESTIMATORS: tuple[str, ...] = ("IS", "WIS", "PDIS", "WPDIS", "DR", "DM", "MIPS", "SNMIPS")
#: The estimators that need the categories of the actions.
_MARGINAL = ("MIPS", "SNMIPS")

#: Behaviour: a random linear scorer at temperature 1, 10 % uniform.
DEFAULT_BEHAVIOUR = PolicySpec("behaviour", "linear", temperature=1.0, epsilon=0.1)
#: Two targets close to the behaviour policy and one farther away.
DEFAULT_TARGETS: tuple[PolicySpec, ...] = (
    PolicySpec("cooler", "linear", temperature=0.8, epsilon=0.1, close=True),
    PolicySpec("mix-oracle-20%", "oracle", temperature=0.5, behaviour_weight=0.8, close=True),
    PolicySpec("oracle", "oracle", temperature=0.5, epsilon=0.1),
)

#: FQE of the check: linear in the state and one-hot step (pooled over actions, plus ridge-
#: penalised per-action deviations), 15 rounds.
DEFAULT_FQE = FQEConfig(kind="linear", time_feature=True, iterations=15, ridge=1.0)


@dataclass(frozen=True)
class OPECheckConfig:
    """One environment of the OPE check: data sizes, policies, estimators, seeds."""

    env_id: str = f"{ENV_PREFIX}RECEnv-v0"
    """Environment id (RECEnv, InterestEvolution or KuaiRand)."""
    env_options: Mapping[str, Any] = field(default_factory=dict)
    """Keyword arguments of the environment (``gymnasium.make_vec``)."""
    pool_size: int | None = None
    """KuaiRand only: keep this many videos of the default candidate pool (evenly spaced)."""
    horizon: int = 10
    """H, steps per episode (RECEnv / KuaiRand episodes last exactly H; others are cut)."""
    gamma: float = 0.95
    """Discount of the returns being estimated."""
    n_episodes: int = 1000
    """Episodes (users) per logged dataset."""
    n_datasets: int = 50
    """Independent logged datasets (repeats) behind bias, RMSE and coverage."""
    behaviour: PolicySpec = DEFAULT_BEHAVIOUR
    """The logging policy μ."""
    targets: tuple[PolicySpec, ...] = DEFAULT_TARGETS
    """The evaluated policies π."""
    estimators: tuple[str, ...] = ESTIMATORS
    """Which estimators to run (a subset of :data:`ESTIMATORS`; MIPS and SNMIPS need an
    environment whose actions have categories, :attr:`EnvProblem.categories`)."""
    clip: float | None = None
    """Cap of each per-step importance ratio (None: unclipped, unbiased)."""
    n_boot: int = 500
    """Bootstrap resamples per interval."""
    n_truth: int = 20_000
    """Users rolled out per target for its true value."""
    truth_batch: int = 10_000
    """Users per vector-env call for the true values."""
    fqe: FQEConfig = DEFAULT_FQE
    """FQE model behind DR and DM (fitted on each logged dataset, for each target)."""
    cross_fit: int = 2
    """FQE folds (by episode): each episode's ``q_hat`` / ``v_hat`` come from a model fitted
    on the other folds, so DR's correction is not fitted to its own outcomes. 1: one model
    fitted on all episodes and evaluated on them (biased when FQE overfits)."""
    chunk_entries: int = 1 << 22
    """At most this many (steps × A) action probabilities are held at once when the logged
    steps are evaluated (bounds memory at catalogue scale; DR and DM still hold them for
    every step)."""
    seed: int = 0
    """Seed of every random draw (env resets, action sampling, bootstrap)."""

    def __post_init__(self) -> None:
        counts = ("horizon", "n_episodes", "n_datasets", "n_boot", "n_truth", "truth_batch")
        for name in (*counts, "cross_fit", "chunk_entries"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ConfigError(f"gamma must be in [0, 1], got {self.gamma}")
        unknown = set(self.estimators) - set(ESTIMATORS)
        if unknown or not self.estimators:
            raise ConfigError(f"estimators must be among {ESTIMATORS}, got {self.estimators}")
        if not self.targets:
            raise ConfigError("targets must name at least one policy")
        if self.behaviour.behaviour_weight > 0:
            raise ConfigError("behaviour.behaviour_weight must be 0 (it mixes in μ itself)")
        if self.fqe.iterations < self.horizon and {"DR", "DM"} & set(self.estimators):
            raise ConfigError(f"fqe.iterations must be >= horizon ({self.horizon})")
        if self.clip is not None and not self.clip > 0:
            raise ConfigError(f"clip must be > 0, got {self.clip}")


def default_check(env_id: str, **changes: Any) -> OPECheckConfig:
    """The documented default check of ``env_id`` (short name or full id), with ``changes``.

    RECEnv: binary (click) rewards, 100 items. KuaiRand (built-in synthetic simulator): a
    20-video pool. InterestEvolution: a 10-unit time budget (sessions of varying length).
    """
    full = env_id if env_id.startswith(ENV_PREFIX) else f"{ENV_PREFIX}{env_id}"
    presets: dict[str, dict[str, Any]] = {
        f"{ENV_PREFIX}RECEnv-v0": {"env_options": {"reward_type": "binary"}},
        f"{ENV_PREFIX}KuaiRand-v0": {"pool_size": 20},
        f"{ENV_PREFIX}InterestEvolution-v0": {"env_options": {"time_budget": 10.0}},
    }
    if full not in presets:
        raise ConfigError(f"env_id must be one of {sorted(presets)}, got {env_id!r}")
    return replace(OPECheckConfig(env_id=full, **presets[full]), **changes)


def _point(name: str, data: LoggedEpisodes, clip: float | None) -> OPEEstimate:
    if name == "DM":
        return direct_method(data)
    fns = {"IS": is_estimate, "WIS": wis_estimate, "PDIS": pdis_estimate}
    fns |= {"WPDIS": wpdis_estimate, "DR": dr_estimate}
    fns |= {"MIPS": mips_estimate, "SNMIPS": snmips_estimate}
    return fns[name](data, clip)


def _true_values(
    config: OPECheckConfig, problem: EnvProblem, policies: Policies, progress: Progress | None
) -> dict[str, tuple[float, float]]:
    """``{target: (mean, standard error)}`` of the discounted return over fresh rollouts."""
    envs = problem.make(min(config.truth_batch, config.n_truth))
    out: dict[str, tuple[float, float]] = {}
    for spec in track(config.targets, len(config.targets), "true values", progress):
        returns: list[np.ndarray] = []
        for j, lo in enumerate(range(0, config.n_truth, config.truth_batch)):
            rng = seeded_rng(config.seed, "ope-truth", spec.name, j)
            seeds = (int(rng.integers(2**31)), rng)
            run = rollout(
                problem,
                envs,
                policies.sampler(spec.name),
                horizon=config.horizon,
                gamma=config.gamma,
                seeds=seeds,
            )
            returns.append(run.returns[: config.n_truth - lo])
        values = np.concatenate(returns)
        out[spec.name] = (float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values))))
    return out


Cell = tuple[float, float, float, float]


def _evaluate_dataset(
    config: OPECheckConfig,
    problem: EnvProblem,
    policies: Policies,
    logged: LoggedRollout,
    index: int,
) -> tuple[dict[tuple[str, str], Cell], dict[str, float]]:
    """``{(target, estimator): (estimate, low, high, ess)}`` on one logged dataset, and the
    mean per-step KL(π || μ) of each target over its valid states."""
    n, h, _ = logged.obs.shape
    steps = _step_probs(config, problem, policies, logged)
    folds = seeded_rng(config.seed, "ope-folds", index).permutation(n) % config.cross_fit
    behaviour = steps[config.behaviour.name]
    out: dict[tuple[str, str], Cell] = {}
    kls: dict[str, float] = {}
    for spec in config.targets:
        target = steps[spec.name]
        kls[spec.name] = float(target["kl"].sum() / logged.mask.sum())
        q_hat = v_hat = None
        if {"DR", "DM"} & set(config.estimators):
            d = logged.obs.shape[2]
            probs = policies.table(logged.obs.reshape(n * h, d), (spec.name,))[spec.name]
            q_hat, v_hat = _model_estimates(config, logged, probs.reshape(n, h, -1), folds)
        embed = "embed" in target
        data = LoggedEpisodes(
            logged.rewards,
            logged.probs,
            target["action"].reshape(n, h),
            logged.mask,
            config.gamma,
            q_hat,
            v_hat,
            behavior_embed_prob=behaviour["embed"].reshape(n, h) if embed else None,
            target_embed_prob=target["embed"].reshape(n, h) if embed else None,
        )
        rng = seeded_rng(config.seed, "ope-bootstrap", index, spec.name)
        reps = bootstrap_replicates(data, config.clip, config.n_boot, rng)
        for est in config.estimators:
            point = _point(est, data, config.clip)
            low, high = percentile_interval(reps[est], 0.95)
            ess = np.nan if point.ess is None else point.ess
            out[spec.name, est] = (point.value, float(low), float(high), float(ess))
    return out, kls


def _step_probs(
    config: OPECheckConfig, problem: EnvProblem, policies: Policies, logged: LoggedRollout
) -> dict[str, dict[str, np.ndarray]]:
    """Per policy, over the N·H logged steps (N·H,) float64: ``action`` π(a_t|s_t), with
    categories ``embed`` π(e(a_t)|s_t), and for targets ``kl`` KL(π || μ) (0 on padding);
    ``chunk_entries`` (steps × A) probabilities at a time."""
    n, h, d = logged.obs.shape
    obs, actions = logged.obs.reshape(n * h, d), logged.actions.reshape(-1)
    valid = logged.mask.reshape(-1)
    marginal = bool(set(_MARGINAL) & set(config.estimators))
    names = (config.behaviour.name, *(s.name for s in config.targets))
    out = {name: {k: np.zeros(n * h) for k in ("action", "embed", "kl")} for name in names}
    rows = max(1, config.chunk_entries // problem.n_actions)
    for lo in range(0, n * h, rows):
        part = slice(lo, lo + rows)
        table = policies.table(obs[part])
        chosen = actions[part]
        mu = np.maximum(table[config.behaviour.name], 1e-300)
        for name in names:
            probs = table[name]
            out[name]["action"][part] = probs[np.arange(len(chosen)), chosen]
            if problem.categories is not None and marginal:
                out[name]["embed"][part] = logged_category_prob(probs, problem.categories, chosen)
            logs = np.log(np.maximum(probs, 1e-300) / mu)
            out[name]["kl"][part] = np.where(valid[part], np.sum(probs * logs, axis=1), 0.0)
        del table
    for values in out.values():
        if not marginal:
            del values["embed"]
    return out


def _model_estimates(
    config: OPECheckConfig, logged: LoggedRollout, probs: np.ndarray, folds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Cross-fitted ``(q_hat, v_hat)`` (N, H): each fold's from FQE on the other folds."""
    q_hat, v_hat = np.zeros(logged.mask.shape), np.zeros(logged.mask.shape)
    for k in range(config.cross_fit):
        test = folds == k
        train = ~test if config.cross_fit > 1 else test
        model = fit_fqe(
            logged.obs[train],
            logged.actions[train],
            logged.rewards[train],
            logged.mask[train],
            probs[train],
            config.gamma,
            config.fqe,
        )
        q_hat[test], v_hat[test] = model.estimates(
            logged.obs[test], logged.actions[test], probs[test], mask=logged.mask[test]
        )
    return q_hat, v_hat


def run_ope_check(config: OPECheckConfig, progress: Progress | None = None) -> list[dict[str, Any]]:
    """Run the check of one environment; one row per (target, estimator) (see module doc).

    Row keys: ``env``, ``policy``, ``close``, ``estimator``, ``true_value``, ``true_se``,
    ``mean_estimate``, ``bias``, ``rel_bias``, ``rmse``, ``rel_rmse``, ``within_10pct``,
    ``coverage``, ``mean_ess``, ``kl`` (mean per-step KL(π || μ) on the logged states),
    ``n_datasets``, ``n_episodes``, ``goal``. ``progress``: a rich Progress to report to.
    """
    problem = make_problem(config.env_id, config.horizon, config.env_options, config.pool_size)
    if problem.categories is None and set(_MARGINAL) & set(config.estimators):
        if config.estimators != ESTIMATORS:
            raise ConfigError(f"MIPS needs categories of the actions; {config.env_id} has none")
        kept = tuple(e for e in ESTIMATORS if e not in _MARGINAL)
        config = replace(config, estimators=kept)  # the default set, less what cannot run
    probe = problem.make(1).reset(seed=0)[0]
    policies = Policies(problem, (config.behaviour, *config.targets), probe.shape[1])
    truth = _true_values(config, problem, policies, progress)
    envs = problem.make(config.n_episodes)
    results: list[dict[tuple[str, str], Cell]] = []
    kls: list[dict[str, float]] = []
    for index in track(range(config.n_datasets), config.n_datasets, "logged datasets", progress):
        rng = seeded_rng(config.seed, "ope-logging", index)
        seeds = (int(rng.integers(2**31)), rng)
        logged = rollout(
            problem,
            envs,
            policies.sampler(config.behaviour.name),
            horizon=config.horizon,
            gamma=config.gamma,
            seeds=seeds,
        )
        cells, kl = _evaluate_dataset(config, problem, policies, logged, index)
        results.append(cells)
        kls.append(kl)
    return _summarise(config, truth, results, kls)


def _summarise(
    config: OPECheckConfig,
    truth: dict[str, tuple[float, float]],
    results: list[dict[tuple[str, str], Cell]],
    kls: list[dict[str, float]],
) -> list[dict[str, Any]]:
    rows = []
    short = config.env_id.removeprefix(ENV_PREFIX)
    for spec in config.targets:
        true, se = truth[spec.name]
        scale = abs(true) if abs(true) > 1e-12 else np.nan
        for est in config.estimators:
            values = np.array([r[spec.name, est] for r in results])  # (n_datasets, 4)
            errors = values[:, 0] - true
            rmse = float(np.sqrt(np.mean(errors**2)))
            coverage = float(np.mean((values[:, 1] <= true) & (true <= values[:, 2])))
            rel_rmse = float(rmse / scale)
            goal = ""
            if spec.close and est == "DR":
                goal = "met" if rel_rmse <= 0.10 and 0.85 <= coverage <= 0.99 else "missed"
            rows.append(
                {
                    "env": short,
                    "policy": spec.name,
                    "close": spec.close,
                    "estimator": est,
                    "true_value": true,
                    "true_se": se,
                    "mean_estimate": float(values[:, 0].mean()),
                    "bias": float(errors.mean()),
                    "rel_bias": float(errors.mean() / scale),
                    "rmse": rmse,
                    "rel_rmse": rel_rmse,
                    "within_10pct": float(np.mean(np.abs(errors) <= 0.1 * scale)),
                    "coverage": coverage,
                    "mean_ess": float(np.nanmean(values[:, 3])) if est != "DM" else float("nan"),
                    "kl": float(np.mean([k[spec.name] for k in kls])),
                    "n_datasets": config.n_datasets,
                    "n_episodes": config.n_episodes,
                    "goal": goal,
                }
            )
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """The rows of :func:`run_ope_check` as a Markdown table."""
    head = (
        "| env | policy | KL(π‖μ) | estimator | true value (± s.e.) | mean estimate | bias "
        "| rel. bias | RMSE | rel. RMSE | within 10 % | 95 % coverage | mean ESS | goal |"
    )
    lines = [head, "|" + " --- |" * 3 + " --- |" + " ---: |" * 9 + " --- |"]
    for r in rows:
        ess = "–" if np.isnan(r["mean_ess"]) else f"{r['mean_ess']:.0f}"
        lines.append(
            f"| {r['env']} | {r['policy']}{' (close)' if r['close'] else ''} | {r['kl']:.3f} "
            f"| {r['estimator']} | {r['true_value']:.4f} ± {r['true_se']:.4f} "
            f"| {r['mean_estimate']:.4f} | {r['bias']:+.4f} | {r['rel_bias']:+.1%} "
            f"| {r['rmse']:.4f} | {r['rel_rmse']:.1%} | {r['within_10pct']:.0%} "
            f"| {r['coverage']:.0%} | {ess} | {r['goal'] or ''} |"
        )
    return "\n".join(lines)
