"""RECGym-style simulator: one item per step from a fixed catalog, preference drifts with use.

Semantics follow RECGym (SCOPE-RL's ``recgym``): a user's state is a unit preference vector; the
agent sees it with Gaussian noise ``obs_std`` (clipped to [-1, 1]); the reward for item ``a`` is
the affinity ``state · item_a`` (continuous, plus Gaussian ``reward_std`` noise) or a Bernoulli
draw with probability ``sigmoid(affinity)`` (binary); then the preference moves along the item,
``state += alpha * (state · item_a) * item_a`` and is renormalised. Episodes last exactly
``step_per_episode`` steps. User and item feature vectors are normalised to unit length, each.

Plug in behaviour by subclassing :class:`UserModel` (two methods) and passing the class as
``user_model=`` to ``gymnasium.make("noetik/RECEnv-v0", ...)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from gymnasium import spaces

from noetik.errors import ConfigError
from noetik.simulators import core
from noetik.simulators.core import Float32Array, FloatArray, IntArray, Signals, Users
from noetik.utils.seeding import rng as seeded_rng


@dataclass(frozen=True)
class RECConfig:
    """Options of ``noetik/RECEnv-v0`` (the keyword arguments of ``gymnasium.make``)."""

    step_per_episode: int = 10
    """Number of steps in an episode (a session); it then terminates."""
    n_items: int = 100
    """Number of items in the catalog (the action is an item index)."""
    n_users: int = 100
    """Number of users in the population; each episode samples one uniformly."""
    item_feature_dim: int = 5
    """Dimension of the item feature vectors."""
    user_feature_dim: int = 5
    """Dimension of the user preference vectors (the observation size)."""
    item_feature_vector: npt.ArrayLike | None = None
    """Item features ``(n_items, item_feature_dim)``; None draws them U(-1, 1) from world_seed."""
    user_feature_vector: npt.ArrayLike | None = None
    """User features ``(n_users, user_feature_dim)``; None draws them U(-1, 1) from world_seed."""
    reward_type: Literal["continuous", "binary"] = "continuous"
    """``"continuous"``: affinity + N(0, reward_std); ``"binary"``: Bernoulli(sigmoid(affinity))."""
    reward_std: float = 0.0
    """Standard deviation of the continuous reward noise (ignored for binary rewards)."""
    obs_std: float = 0.0
    """Standard deviation of the Gaussian noise added to the observed preference."""
    alpha: float = 1.0
    """Step size (>= 0) of the default preference dynamics (RECGym uses 1)."""
    user_model: type[UserModel] | UserModel | None = None
    """A :class:`UserModel` subclass (built with this config) or instance; None: the default."""
    world_seed: int = 0
    """Seed of the generated feature vectors (the world); episodes are seeded by ``reset``."""

    def __post_init__(self) -> None:
        for name in ("step_per_episode", "n_items", "n_users", "item_feature_dim"):
            _check_count(name, getattr(self, name))
        _check_count("user_feature_dim", self.user_feature_dim)
        core.check_positive("reward_std", self.reward_std, allow_zero=True)
        core.check_positive("obs_std", self.obs_std, allow_zero=True)
        core.check_positive("alpha", self.alpha, allow_zero=True)
        if self.reward_type not in ("continuous", "binary"):
            raise ConfigError(
                f"reward_type must be 'continuous' or 'binary', got {self.reward_type!r}"
            )
        model = self.user_model
        if model is not None and not (
            isinstance(model, UserModel)
            or (isinstance(model, type) and issubclass(model, UserModel))
        ):
            raise ConfigError(f"user_model must be a UserModel subclass or instance, got {model!r}")


def _check_count(name: str, value: object) -> None:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")


class UserModel(ABC):
    """RECGym's user model: how preferences move and how users reward items, for B users.

    ``state`` is ``(B, user_feature_dim)`` float64, ``action`` ``(B,)`` int64 item indices,
    ``item_feature_vector`` ``(n_items, item_feature_dim)``; ``rng`` is the env's generator
    (use it for every random draw). ``self.config`` is the environment's :class:`RECConfig`.
    """

    def __init__(self, config: RECConfig) -> None:
        self.config = config

    def check(self, config: RECConfig) -> None:  # noqa: B027
        """Raise ConfigError if ``config`` does not suit this model (default: accept)."""

    @abstractmethod
    def user_preference_dynamics(
        self,
        state: FloatArray,
        action: IntArray,
        item_feature_vector: FloatArray,
        rng: np.random.Generator,
    ) -> FloatArray:
        """The next preference state ``(B, user_feature_dim)``."""

    @abstractmethod
    def reward_function(
        self,
        state: FloatArray,
        action: IntArray,
        item_feature_vector: FloatArray,
        rng: np.random.Generator,
    ) -> FloatArray:
        """The reward ``(B,)`` for showing item ``action`` to users in ``state``."""


class DefaultUserModel(UserModel):
    """RECGym's default: affinity rewards and preference drift along the consumed item."""

    def check(self, config: RECConfig) -> None:
        """The affinity is a dot product: user and item dimensions must match."""
        if config.user_feature_dim != config.item_feature_dim:
            raise ConfigError(
                "user_feature_dim must equal item_feature_dim for the default user model, got "
                f"{config.user_feature_dim} and {config.item_feature_dim}"
            )

    def user_preference_dynamics(
        self,
        state: FloatArray,
        action: IntArray,
        item_feature_vector: FloatArray,
        rng: np.random.Generator,
    ) -> FloatArray:
        """``state + alpha * (state · item) * item``, renormalised to unit length."""
        item = item_feature_vector.take(action, axis=0)  # = [action], faster for small B
        new: FloatArray = item * (self.config.alpha * np.vecdot(state, item))[:, None]
        new += state
        new /= np.sqrt(np.vecdot(new, new))[:, None]  # > 0 since |state| = 1 and alpha >= 0
        return new

    def reward_function(
        self,
        state: FloatArray,
        action: IntArray,
        item_feature_vector: FloatArray,
        rng: np.random.Generator,
    ) -> FloatArray:
        """Affinity + N(0, reward_std) (continuous) or Bernoulli(sigmoid(affinity)) (binary)."""
        affinity: FloatArray = np.vecdot(state, item_feature_vector.take(action, axis=0))
        if self.config.reward_type == "binary":
            p = 1.0 / (1.0 + np.exp(-affinity))
            clicks: FloatArray = (rng.random(affinity.shape[0]) < p).astype(np.float64)
            return clicks
        if self.config.reward_std > 0:
            affinity += rng.normal(0.0, self.config.reward_std, affinity.shape[0])
        return affinity


def _unit_rows(name: str, given: npt.ArrayLike | None, shape: tuple[int, int], seed: int) -> Any:
    if given is None:
        values = seeded_rng(seed, "rec", name).uniform(-1.0, 1.0, size=shape)
    else:
        values = np.array(given, dtype=np.float64)
        if values.shape != shape:
            raise ConfigError(f"{name} must have shape {shape}, got {values.shape}")
    norm = np.linalg.norm(values, axis=1, keepdims=True)
    if not np.all(np.isfinite(values)) or np.any(norm == 0):
        raise ConfigError(f"{name} must hold finite, non-zero vectors")
    return values / norm


class _Population(core.UserSampler):
    def __init__(self, user_features: FloatArray) -> None:
        self.user_features = user_features

    def sample(self, rng: np.random.Generator, n: int) -> Users:
        user_id = rng.integers(0, self.user_features.shape[0], size=n)
        return Users(
            user_id=user_id,
            preference=self.user_features[user_id],
            budget=np.full(n, np.inf),
            t=np.zeros(n, dtype=np.int64),
        )


class Catalog(core.ItemModel):
    """A fixed catalog: actions are indices into it, for every user."""

    def __init__(self, features: FloatArray) -> None:
        n = features.shape[0]
        zeros = np.zeros(n)
        self.items = core.Items(np.arange(n), features, zeros + 1.0, zeros, np.zeros(n, np.int64))

    def sample(self, rng: np.random.Generator, users: Users) -> None:
        """No per-user pools."""
        return None


class _Adapter(core.UserModel):
    """Wires a RECGym-style :class:`UserModel` into the core interface."""

    def __init__(self, model: UserModel, items: FloatArray) -> None:
        self.model, self.items = model, items

    def response(self, rng: np.random.Generator, users: Users, action: IntArray) -> Signals:
        return {"reward": self.model.reward_function(users.preference, action, self.items, rng)}

    def preference_dynamics(
        self, rng: np.random.Generator, users: Users, action: IntArray, signals: Signals
    ) -> None:
        new = self.model.user_preference_dynamics(users.preference, action, self.items, rng)
        users.preference = np.asarray(new, dtype=np.float64)


class _Reward(core.RewardFunction):
    def __call__(self, signals: Signals, users: Users) -> FloatArray:
        return signals["reward"]


class _FixedLength(core.Termination):
    def __init__(self, steps: int) -> None:
        self.steps = steps

    def __call__(self, users: Users) -> tuple[core.BoolArray, core.BoolArray]:
        terminated = users.t >= self.steps
        return terminated, np.zeros(terminated.shape[0], dtype=bool)


class _NoisyPreference(core.Observer):
    def __init__(self, dim: int, obs_std: float) -> None:
        self.space = spaces.Box(-1.0, 1.0, shape=(dim,), dtype=np.float32)
        self.obs_std = obs_std

    def __call__(self, rng: np.random.Generator, users: Users) -> Float32Array:
        obs = users.preference
        if self.obs_std > 0:
            obs = np.clip(obs + rng.normal(0.0, self.obs_std, obs.shape), -1.0, 1.0)
        return obs.astype(np.float32)


class _Report(core.Reporter):
    def __init__(self, items: FloatArray) -> None:
        self.items = items

    def __call__(
        self, users: Users, action: IntArray | None, result: core.StepResult | None
    ) -> dict[str, np.ndarray]:
        info: dict[str, np.ndarray] = {
            "user_id": users.user_id.copy(),
            "t": users.t.copy(),
            "state": users.preference.copy(),
        }
        if action is not None and result is not None:
            info["item_id"] = action
            info["item_features"] = self.items.take(action, axis=0)
            info.update(result.signals)
        return info


def build_rec_simulator(config: RECConfig) -> core.Simulator:
    """The RECGym-style simulator for ``config``."""
    items = _unit_rows(
        "item_feature_vector",
        config.item_feature_vector,
        (config.n_items, config.item_feature_dim),
        config.world_seed,
    )
    users = _unit_rows(
        "user_feature_vector",
        config.user_feature_vector,
        (config.n_users, config.user_feature_dim),
        config.world_seed,
    )
    given = config.user_model if config.user_model is not None else DefaultUserModel
    model = given(config) if isinstance(given, type) else given
    model.check(config)
    return core.Simulator(
        user_sampler=_Population(users),
        item_model=Catalog(items),
        user_model=_Adapter(model, items),
        reward=_Reward(),
        termination=_FixedLength(config.step_per_episode),
        observer=_NoisyPreference(config.user_feature_dim, config.obs_std),
        reporter=_Report(items),
        action_space=spaces.Discrete(config.n_items),
    )
