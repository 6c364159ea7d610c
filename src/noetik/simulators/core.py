"""The common simulator core: small swappable parts, batch-first, wired in one place.

Every part works on a batch of ``B`` users at once (the single-user environment is ``B = 1``).
Array shapes are written ``(B,)``, ``(B, d)``; dtypes are ``float64`` for values, ``int64`` for
indices and ``bool`` for flags, unless stated. Parts never own randomness: each call receives the
environment's generator (``env.np_random``), so ``reset(seed=...)`` alone fixes a trajectory.

The parts and where :class:`Simulator` wires them (``reset`` and ``step`` below):

==================  =====================================================================
``UserSampler``     draws new users at session start: ids, preference state, traits, budget
``ItemModel``       the items a user may be shown: a fixed catalog or per-user candidate pools
``UserModel``       ``response`` (feedback signals to an action) and ``preference_dynamics``
``ChoiceModel``     (slate simulators) which shown item, if any, the user picks
``RewardFunction``  turns feedback signals into the scalar reward
``Termination``     whether the session ended (user left / budget spent) or was cut off
``Observer``        what the agent sees of the user and the candidates (float32 vector)
``Reporter``        what an analyst sees in ``info`` (hidden state, signals, ids, features)
==================  =====================================================================
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from gymnasium import spaces

from noetik.errors import ConfigError

FloatArray = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
#: Named feedback signals of one step, each of shape ``(B,)`` (``"click"``, ``"watch_time"``…).
Signals = dict[str, FloatArray]

_B = TypeVar("_B", bound="RowBatch")


class RowBatch:
    """Dataclass mixin: every array field (or nested batch, or dict of arrays) has leading dim B."""

    def take(self: _B, index: Any) -> _B:
        """A copy holding only the rows ``index`` (integer indices or a boolean mask)."""
        values = {f.name: _take(getattr(self, f.name), index) for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        return type(self)(**values)

    def put(self, index: IntArray | BoolArray, other: RowBatch) -> None:
        """Overwrite the rows ``index`` with the rows of ``other`` (same fields, in place)."""
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            _put(getattr(self, f.name), index, getattr(other, f.name))


def _take(value: Any, index: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value[index]
    if isinstance(value, RowBatch):
        return value.take(index)
    if isinstance(value, dict):
        return {k: v[index] for k, v in value.items()}
    return value


def _put(value: Any, index: IntArray | BoolArray, other: Any) -> None:
    if isinstance(value, np.ndarray):
        value[index] = other
    elif isinstance(value, RowBatch):
        value.put(index, other)
    elif isinstance(value, dict):
        for k, v in value.items():
            v[index] = other[k]


@dataclass
class Items(RowBatch):
    """Item (document) features; leading dims are ``(n,)`` for a catalog, ``(B, n)`` for pools."""

    item_id: IntArray
    """Catalog index of each item, ``(…, n)``."""
    features: FloatArray
    """Feature vector of each item, ``(…, n, d)``."""
    length: FloatArray
    """Duration of each item (time units of the session budget), ``(…, n)``."""
    quality: FloatArray
    """Intrinsic quality of each item, hidden from the agent, ``(…, n)``."""
    cluster: IntArray
    """Topic (cluster) id of each item, ``(…, n)``."""


@dataclass
class Users(RowBatch):
    """The session state of a batch of B users (mutated in place by the parts)."""

    user_id: IntArray
    """Which user of the population each row is, ``(B,)``."""
    preference: FloatArray
    """Hidden preference / interest vector, ``(B, d)``."""
    budget: FloatArray
    """Remaining session budget (time or patience), ``(B,)``; ``inf`` when unused."""
    t: IntArray
    """Steps taken in the session, ``(B,)``."""
    traits: dict[str, FloatArray] = field(default_factory=dict)
    """Per-user behaviour parameters, each ``(B,)`` (e.g. ``"attention_prob"``)."""
    candidates: Items | None = None
    """Per-user candidate pools ``(B, n, …)``, or ``None`` when actions index a fixed catalog."""


class UserSampler(ABC):
    """Draws the users that start new sessions."""

    @abstractmethod
    def sample(self, rng: np.random.Generator, n: int) -> Users:
        """``n`` new users with ``t = 0`` (and ``candidates = None``; the item model fills it)."""


class ItemModel(ABC):
    """The items an action refers to: a fixed catalog, or candidate pools drawn per user."""

    @abstractmethod
    def sample(self, rng: np.random.Generator, users: Users) -> Items | None:
        """Candidate pools for ``users`` ``(B, n, …)``, or ``None`` for a fixed catalog."""

    def refresh(self, rng: np.random.Generator, users: Users) -> None:  # noqa: B027
        """Called after every step: e.g. resample ``users.candidates``. Default: keep them."""


class UserModel(ABC):
    """How a user responds to what is shown, and how that changes their preferences."""

    @abstractmethod
    def response(self, rng: np.random.Generator, users: Users, action: IntArray) -> Signals:
        """Feedback signals ``{name: (B,)}`` to ``action`` (``(B,)`` item or ``(B, k)`` slate)."""

    @abstractmethod
    def preference_dynamics(
        self, rng: np.random.Generator, users: Users, action: IntArray, signals: Signals
    ) -> None:
        """Update ``users`` in place (preference, budget…) after the response ``signals``."""


class ChoiceModel(ABC):
    """Which item of a slate, if any, a user picks, given the user's scores of its items."""

    @abstractmethod
    def probabilities(
        self, scores: FloatArray, shown: BoolArray, traits: Mapping[str, FloatArray]
    ) -> FloatArray:
        """Choice probabilities ``(B, k + 1)`` from scores ``(B, k)``; last column = no click.

        ``shown`` ``(B, k)`` is False for empty slate positions (probability 0); ``traits`` holds
        per-user parameters ``(B,)`` that override the model's defaults.
        """

    def choose(
        self,
        rng: np.random.Generator,
        scores: FloatArray,
        shown: BoolArray,
        traits: Mapping[str, FloatArray],
    ) -> IntArray:
        """Sampled choice per user ``(B,)``: a slate position, or ``k`` for no click."""
        cdf = np.cumsum(self.probabilities(scores, shown, traits), axis=1)
        u = rng.random((scores.shape[0], 1)) * cdf[:, -1:]
        choice: IntArray = np.minimum((cdf <= u).sum(axis=1), scores.shape[1]).astype(np.int64)
        return choice


class RewardFunction(ABC):
    """Turns the feedback signals of a step into the reward."""

    @abstractmethod
    def __call__(self, signals: Signals, users: Users) -> FloatArray:
        """Reward ``(B,)``."""


class Termination(ABC):
    """Whether sessions are over after a step."""

    @abstractmethod
    def __call__(self, users: Users) -> tuple[BoolArray, BoolArray]:
        """``(terminated, truncated)``, each ``(B,)``: left the session / cut off by a limit."""


class Observer(ABC):
    """What the agent sees; also defines the single-user observation space."""

    space: spaces.Box
    """Observation space of one user (float32 vector)."""

    @abstractmethod
    def __call__(self, rng: np.random.Generator, users: Users) -> Float32Array:
        """Observations ``(B, obs_dim)`` float32, inside ``space``."""


class Reporter(ABC):
    """What an analyst sees in ``info`` (hidden state, signals, user id, item features)."""

    @abstractmethod
    def __call__(
        self, users: Users, action: IntArray | None, result: StepResult | None
    ) -> dict[str, np.ndarray]:
        """Arrays with leading dim B; ``action`` and ``result`` are None right after a reset."""


@dataclass(slots=True)
class StepResult:
    """What one batched step produced (before observation)."""

    signals: Signals
    """Feedback signals, each ``(B,)``."""
    reward: FloatArray
    """Reward ``(B,)``."""
    terminated: BoolArray
    """Session ended (user left / budget spent), ``(B,)``."""
    truncated: BoolArray
    """Session cut off by a step limit, ``(B,)``."""
    pool: Items | None = None
    """The candidate pools the action indexed (before any refresh), or None for a catalog."""


@dataclass
class Simulator:
    """A recommender simulator composed of parts; this is the one place they are wired."""

    user_sampler: UserSampler
    """Draws new users."""
    item_model: ItemModel
    """Catalog or candidate pools."""
    user_model: UserModel
    """Response and preference dynamics."""
    reward: RewardFunction
    """Signals → reward."""
    termination: Termination
    """Session end."""
    observer: Observer
    """Users → observation."""
    reporter: Reporter
    """Users and step → ``info``."""
    action_space: spaces.Space[Any]
    """Action space of one user."""

    def reset(self, rng: np.random.Generator, n: int) -> Users:
        """Start ``n`` new sessions."""
        users = self.user_sampler.sample(rng, n)
        users.candidates = self.item_model.sample(rng, users)
        return users

    def step(self, rng: np.random.Generator, users: Users, action: IntArray) -> StepResult:
        """Show ``action`` to every user, update them in place, and report what happened."""
        pool = users.candidates
        signals = self.user_model.response(rng, users, action)
        self.user_model.preference_dynamics(rng, users, action, signals)
        users.t += 1
        reward = self.reward(signals, users)
        terminated, truncated = self.termination(users)
        self.item_model.refresh(rng, users)
        return StepResult(signals, reward, terminated, truncated, pool)

    def observe(self, rng: np.random.Generator, users: Users) -> Float32Array:
        """Observations ``(B, obs_dim)`` float32."""
        return self.observer(rng, users)

    def info(
        self, users: Users, action: IntArray | None, result: StepResult | None
    ) -> dict[str, np.ndarray]:
        """Analyst info, arrays with leading dim B."""
        return self.reporter(users, action, result)


C = TypeVar("C")


def make_config(cls: type[C], kwargs: Mapping[str, Any], env_id: str) -> C:
    """Build config ``cls`` from ``gymnasium.make`` kwargs; an unknown name is a ConfigError."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(kwargs) - names)
    if unknown:
        raise ConfigError(
            f"{env_id}: unknown option {unknown[0]!r}; known options: {', '.join(sorted(names))}"
        )
    return cls(**kwargs)


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    """Raise ConfigError naming ``name`` unless ``value`` is > 0 (or >= 0 with ``allow_zero``)."""
    ok = value >= 0 if allow_zero else value > 0
    if not ok or not np.isfinite(value):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{name} must be a finite number {bound}, got {value!r}")
