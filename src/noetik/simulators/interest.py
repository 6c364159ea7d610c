"""RecSim-style interest evolution: slates, choice models, watch time and a time budget.

Follows RecSim's ``interest_evolution`` environment (its utility-model setup by default):

* A world of ``n_users`` users and ``n_documents`` documents is drawn from ``world_seed``. A
  user has interests in ``num_topics`` topics, U(-1, 1), and behaviour traits (time budget,
  choice-model parameters…), each a fixed value or, given as ``(low, high)``, uniform per user.
  A document has topic features (one-hot of its cluster for ``"utility"``, U(-1, 1) for
  ``"uniform"``), a length and a hidden quality (for ``"utility"``: N(mean of cluster, 0.1),
  cluster means spaced from ``quality_range[0]`` for 70% "trashy" topics up to
  ``quality_range[1]``).
* Each step the user gets ``n_candidates`` documents drawn from the corpus (a new pool each
  step when ``resample_documents``); the agent picks a slate of ``slate_size`` of them.
* The user scores each shown document by ``interests · features`` and picks one (or none)
  with the choice model (:mod:`noetik.simulators.choice`). A clicked document is watched for
  ``min(budget, length)``; the budget loses the watch time and gains
  ``budget_update_alpha * watch_time * (user_quality_factor * score + document_quality_factor
  * quality)``; no click costs ``step_penalty``. The session ends when the budget is spent.
* Interests move on a click: each topic by ``alpha * f * (f - interest)`` with
  ``alpha = y - (y / x) * |interest|`` (``x``, ``y`` the interest-update intercepts), towards
  the document with probability ``(interests + 1) / 2 · f``, away otherwise; clipped to [-1, 1].

Deviation from RecSim: the utility in the budget update is the raw score ``interests · f``,
not the choice model's normalised score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from gymnasium import spaces

from noetik.errors import ConfigError
from noetik.simulators import core
from noetik.simulators.choice import CHOICE_MODELS, make_choice_model
from noetik.simulators.core import (
    BoolArray,
    ChoiceModel,
    Float32Array,
    FloatArray,
    IntArray,
    Items,
    Signals,
    Users,
)
from noetik.utils.seeding import rng as seeded_rng

Trait = float | tuple[float, float]
#: Per-user behaviour parameters; each may be a float or a (low, high) uniform range.
TRAITS: tuple[str, ...] = (
    "time_budget",
    "step_penalty",
    "no_click_mass",
    "min_normalizer",
    "attention_prob",
    "score_scaling",
    "budget_update_alpha",
    "user_quality_factor",
    "document_quality_factor",
    "interest_update_x",
    "interest_update_y",
)


@dataclass(frozen=True)
class InterestConfig:
    """Options of ``noetik/InterestEvolution-v0`` (the keyword arguments of ``gymnasium.make``)."""

    num_topics: int = 20
    """Number of topics: size of interest and document feature vectors (and of clusters)."""
    n_candidates: int = 10
    """Documents offered to the agent each step (the candidate pool)."""
    slate_size: int = 3
    """Documents the agent shows per step (the action is ``slate_size`` pool indices)."""
    n_users: int = 1000
    """Users in the population; each session samples one uniformly."""
    n_documents: int = 1000
    """Documents in the corpus from which candidate pools are drawn (with replacement)."""
    document_sampler: Literal["utility", "uniform"] = "utility"
    """``"utility"``: one-hot topics, quality by cluster; ``"uniform"``: U(-1, 1) features."""
    resample_documents: bool = True
    """Draw a new candidate pool every step (else one pool per session)."""
    video_length_mean: float = 4.0
    """Mean document length (same unit as the time budget)."""
    video_length_std: float = 0.0
    """Std of document lengths (clipped to [0, 100]); 0 gives every document the mean."""
    quality_range: tuple[float, float] = (-3.0, 3.0)
    """Mean quality of the most trashy and the most nutritious clusters (``"utility"``)."""
    choice_model: str = "proportional"
    """One of ``"mnl"``, ``"proportional"``, ``"cascade"``, ``"proportional_cascade"``."""
    reward: Literal["watch_time", "click"] = "watch_time"
    """Reward per step: watch time of the clicked document, or 1 per click."""
    observe_interests: bool = True
    """Put the user's interests in the observation (RecSim does); else only budget + pool."""
    max_steps: int = 1000
    """Sessions still running after this many steps are truncated."""
    time_budget: Trait = 200.0
    """Session time budget at the start."""
    step_penalty: Trait = 0.5
    """Budget lost by a step without a click."""
    no_click_mass: Trait = 1.0
    """No-click logit (mnl) or mass (proportional)."""
    min_normalizer: Trait = -1.0
    """Offset subtracted from scores by proportional models to make them non-negative."""
    attention_prob: Trait = 0.65
    """Cascade: probability of examining each position in turn."""
    score_scaling: Trait = 0.05
    """Cascade: converts a score into a click probability."""
    budget_update_alpha: Trait = 0.9 / 3.4
    """Fraction of watch time × utility given back to the budget."""
    user_quality_factor: Trait = 0.0
    """Weight of the user's score in the utility that refills the budget."""
    document_quality_factor: Trait = 1.0
    """Weight of the document's quality in the utility that refills the budget."""
    interest_update_x: Trait = 1.0
    """x intercept of the interest step-size line (interest at which the step is 0)."""
    interest_update_y: Trait = 0.3
    """y intercept of the interest step-size line (step size at interest 0)."""
    world_seed: int = 0
    """Seed of the user population and document corpus; episodes are seeded by ``reset``."""

    def __post_init__(self) -> None:
        for name in ("num_topics", "n_candidates", "slate_size", "n_users", "n_documents"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
        if self.slate_size > self.n_candidates:
            raise ConfigError(f"slate_size must be <= n_candidates, got {self.slate_size}")
        if self.document_sampler not in ("utility", "uniform"):
            raise ConfigError(
                f"document_sampler must be 'utility' or 'uniform', got {self.document_sampler!r}"
            )
        if self.choice_model not in CHOICE_MODELS:
            raise ConfigError(
                f"choice_model must be one of {CHOICE_MODELS}, got {self.choice_model!r}"
            )
        if self.reward not in ("watch_time", "click"):
            raise ConfigError(f"reward must be 'watch_time' or 'click', got {self.reward!r}")
        core.check_positive("video_length_mean", self.video_length_mean)
        core.check_positive("video_length_std", self.video_length_std, allow_zero=True)
        core.check_positive("max_steps", self.max_steps)
        for name in TRAITS:
            _trait_bounds(name, getattr(self, name))
        lo, hi = _trait_bounds("attention_prob", self.attention_prob)
        if lo < 0 or hi > 1:
            raise ConfigError(f"attention_prob must lie in [0, 1], got {self.attention_prob!r}")


def _trait_bounds(name: str, value: object) -> tuple[float, float]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value), float(value)
    if isinstance(value, tuple | list) and len(value) == 2 and value[0] <= value[1]:
        return float(value[0]), float(value[1])
    raise ConfigError(f"{name} must be a number or a (low, high) pair, got {value!r}")


def make_corpus(config: InterestConfig) -> Items:
    """The document corpus ``(n_documents, …)`` drawn from ``world_seed``."""
    rng = seeded_rng(config.world_seed, "interest", "documents")
    n, topics = config.n_documents, config.num_topics
    length = np.full(n, config.video_length_mean)
    if config.video_length_std > 0:
        length = np.clip(rng.normal(config.video_length_mean, config.video_length_std, n), 0, 100)
    if config.document_sampler == "uniform":
        features = rng.uniform(-1.0, 1.0, (n, topics))
        return Items(np.arange(n), features, length, np.ones(n), features.argmax(axis=1))
    n_trashy = round(0.7 * topics)
    low, high = config.quality_range
    means = np.concatenate(
        [np.linspace(low, 0.0, n_trashy), np.linspace(0.0, high, topics - n_trashy)]
    )
    cluster = rng.integers(0, topics, n)
    quality = rng.normal(means[cluster], 0.1)
    return Items(np.arange(n), np.eye(topics)[cluster], length, quality, cluster)


def make_population(config: InterestConfig) -> tuple[FloatArray, dict[str, FloatArray]]:
    """Interests ``(n_users, num_topics)`` and traits ``{name: (n_users,)}`` from world_seed."""
    rng = seeded_rng(config.world_seed, "interest", "users")
    interests = rng.uniform(-1.0, 1.0, (config.n_users, config.num_topics))
    traits = {}
    for name in TRAITS:
        lo, hi = _trait_bounds(name, getattr(config, name))
        traits[name] = (
            rng.uniform(lo, hi, config.n_users) if hi > lo else np.full(config.n_users, lo)
        )
    return interests, traits


class PopulationSampler(core.UserSampler):
    """Draws users uniformly from a fixed population; the budget starts at ``time_budget``."""

    def __init__(self, interests: FloatArray, traits: dict[str, FloatArray]) -> None:
        self.interests, self.traits = interests, traits

    def sample(self, rng: np.random.Generator, n: int) -> Users:
        user_id = rng.integers(0, self.interests.shape[0], n)
        traits = {k: v[user_id] for k, v in self.traits.items()}
        return Users(
            user_id,
            self.interests[user_id],
            traits["time_budget"].copy(),
            np.zeros(n, np.int64),
            traits,
        )


class CorpusPools(core.ItemModel):
    """Candidate pools of ``n`` documents drawn with replacement from a corpus."""

    def __init__(self, corpus: Items, n: int, resample: bool) -> None:
        self.corpus, self.n, self.resample = corpus, n, resample

    def sample(self, rng: np.random.Generator, users: Users) -> Items:
        ids = rng.integers(0, self.corpus.item_id.shape[0], (users.user_id.shape[0], self.n))
        return self.corpus.take(ids)

    def refresh(self, rng: np.random.Generator, users: Users) -> None:
        if self.resample:
            users.candidates = self.sample(rng, users)


def slate_items(pool: Items, slate: IntArray) -> tuple[Items, BoolArray]:
    """The shown documents ``(B, k, …)`` and which positions count: a repeated document is
    shown once, at its first position; later copies are empty positions."""
    rows = np.arange(slate.shape[0])[:, None]
    shown = pool.take((rows, slate))
    ids = shown.item_id
    k = ids.shape[1]
    same = ids[:, :, None] == ids[:, None, :]
    repeated = (same & np.tri(k, k, -1, dtype=bool)).any(axis=2)
    return shown, ~repeated


class InterestUserModel(core.UserModel):
    """RecSim's interest-evolution user: a choice over the slate, watch time, interest drift."""

    def __init__(self, choice: ChoiceModel, slate_size: int) -> None:
        self.choice, self.k = choice, slate_size

    def response(self, rng: np.random.Generator, users: Users, action: IntArray) -> Signals:
        assert users.candidates is not None
        shown, valid = slate_items(users.candidates, action)
        scores = np.einsum("bkt,bt->bk", shown.features, users.preference)
        position = self.choice.choose(rng, scores, valid, users.traits)
        click = position < self.k
        rows, at = np.arange(position.shape[0]), np.minimum(position, self.k - 1)
        watch = np.where(
            click, np.minimum(np.maximum(users.budget, 0.0), shown.length[rows, at]), 0
        )
        return {
            "click": click.astype(np.float64),
            "watch_time": watch,
            "position": np.where(click, position, -1).astype(np.float64),
            "item_id": np.where(click, shown.item_id[rows, at], -1).astype(np.float64),
            "quality": np.where(click, shown.quality[rows, at], 0.0),
            "cluster": np.where(click, shown.cluster[rows, at], -1).astype(np.float64),
            "utility": np.where(click, scores[rows, at], 0.0),
        }

    def preference_dynamics(
        self, rng: np.random.Generator, users: Users, action: IntArray, signals: Signals
    ) -> None:
        """Interests drift on a click; the budget pays watch time or the step penalty."""
        click = signals["click"] > 0
        assert users.candidates is not None
        rows = np.arange(action.shape[0])
        at = np.maximum(signals["position"], 0).astype(np.int64)
        f = users.candidates.features[rows, action[rows, at]] * click[:, None]
        interests, t = users.preference, users.traits
        alpha = t["interest_update_y"][:, None] * (
            1.0 - np.abs(interests) / t["interest_update_x"][:, None]
        )
        update = alpha * f * (f - interests)
        towards = rng.random(rows.shape[0]) < np.vecdot((interests + 1.0) / 2.0, f)
        users.preference = np.clip(
            interests + np.where(towards, 1.0, -1.0)[:, None] * update, -1.0, 1.0
        )
        watch = signals["watch_time"]
        utility = (
            t["user_quality_factor"] * signals["utility"]
            + t["document_quality_factor"] * signals["quality"]
        )
        refill = t["budget_update_alpha"] * watch * utility
        users.budget += np.where(click, refill - watch, -t["step_penalty"])


class WatchTimeReward(core.RewardFunction):
    """Watch time of the clicked document (RecSim's ``clicked_watchtime_reward``) or clicks."""

    def __init__(self, signal: str) -> None:
        self.signal = "watch_time" if signal == "watch_time" else "click"

    def __call__(self, signals: Signals, users: Users) -> FloatArray:
        return signals[self.signal].copy()


class BudgetTermination(core.Termination):
    """Terminated when the time budget is spent; truncated after ``max_steps`` steps."""

    def __init__(self, max_steps: int) -> None:
        self.max_steps = max_steps

    def __call__(self, users: Users) -> tuple[BoolArray, BoolArray]:
        terminated = users.budget <= 0
        return terminated, ~terminated & (users.t >= self.max_steps)


class InterestObserver(core.Observer):
    """``[interests (if observed), budget left, pool features (n * topics)]`` float32.

    Budget left is the remaining fraction of the session's starting budget, clipped to [0, 1].
    """

    def __init__(self, config: InterestConfig) -> None:
        user = config.num_topics if config.observe_interests else 0
        pool = config.n_candidates * config.num_topics
        low = np.full(user + 1 + pool, -1.0, dtype=np.float32)
        high = np.ones_like(low)
        low[user] = 0.0
        self.space = spaces.Box(low, high, dtype=np.float32)
        self.observe_interests = config.observe_interests

    def __call__(self, rng: np.random.Generator, users: Users) -> Float32Array:
        assert users.candidates is not None
        parts = [users.preference] if self.observe_interests else []
        left = users.budget / users.traits["time_budget"]
        parts.append(np.clip(left, 0.0, 1.0)[:, None])
        parts.append(users.candidates.features.reshape(users.budget.shape[0], -1))
        return np.concatenate(parts, axis=1).astype(np.float32)


class InterestReporter(core.Reporter):
    """``user_id``, ``t``, ``budget``, ``interests``, traits; after a step the slate shown
    (ids, features, length, quality, cluster, valid positions) and every signal."""

    def __call__(
        self, users: Users, action: IntArray | None, result: core.StepResult | None
    ) -> dict[str, np.ndarray]:
        info: dict[str, np.ndarray] = {
            "user_id": users.user_id.copy(),
            "t": users.t.copy(),
            "budget": users.budget.copy(),
            "interests": users.preference.copy(),
        }
        info.update({name: value.copy() for name, value in users.traits.items()})
        if action is not None and result is not None and result.pool is not None:
            shown, valid = slate_items(result.pool, action)
            info["slate"] = action
            info["slate_valid"] = valid
            info["slate_item_ids"] = shown.item_id
            info["slate_features"] = shown.features
            info["slate_length"] = shown.length
            info["slate_quality"] = shown.quality
            info["slate_cluster"] = shown.cluster
            info.update(result.signals)
        return info


def build_interest_simulator(config: InterestConfig) -> core.Simulator:
    """The RecSim-style interest evolution simulator for ``config``."""
    interests, traits = make_population(config)
    choice = make_choice_model(config.choice_model)
    return core.Simulator(
        user_sampler=PopulationSampler(interests, traits),
        item_model=CorpusPools(make_corpus(config), config.n_candidates, config.resample_documents),
        user_model=InterestUserModel(choice, config.slate_size),
        reward=WatchTimeReward(config.reward),
        termination=BudgetTermination(config.max_steps),
        observer=InterestObserver(config),
        reporter=InterestReporter(),
        action_space=spaces.MultiDiscrete([config.n_candidates] * config.slate_size),
    )
