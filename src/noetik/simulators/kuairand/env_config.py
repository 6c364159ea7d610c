"""Options of ``noetik/KuaiRand-v0``: the keyword arguments of ``gymnasium.make``.

Every field of :class:`KuaiRandEnvConfig` is documented below; an invalid value raises
:class:`~noetik.errors.ConfigError` naming the field (an unknown name is rejected by
:func:`noetik.simulators.core.make_config`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from noetik.data.rewards import RewardConfig
from noetik.errors import ConfigError
from noetik.simulators.core import check_positive

LeaveModel = Literal["fixed", "hazard"]
EnsembleMode = Literal["off", "mean", "sample"]
#: A reward given as a :class:`RewardConfig`, ``{signal: weight}`` or ``(signal, weight)`` pairs.
RewardSpec = RewardConfig | Mapping[str, float] | Sequence[tuple[str, float]]
_DEFAULT_REWARD = RewardConfig()


@dataclass(frozen=True)
class KuaiRandEnvConfig:
    """Options of ``noetik/KuaiRand-v0`` (a simulator learned from KuaiRand logs)."""

    sim_dir: str | None = None
    """Run directory of a fitted response model (``noetik sim fit ... --out DIR`` or
    ``FittedSimulator.save(DIR)``). None: the default simulator, fitted once on the built-in
    synthetic dataset with a small fast configuration and cached under
    ``$NOETIK_CACHE_DIR/builtin/`` (default ``~/.cache/noetik/builtin/``)."""
    data_dir: str | None = None
    """The KuaiRand dataset the users, histories, candidate pool and session statistics come
    from. None: the dataset the simulator was fitted on (its ``meta["data_dir"]``)."""
    reward: RewardSpec = _DEFAULT_REWARD
    """The reward, a weighted sum of the 12 signals (default ``0.5 * is_click + 0.5 *
    watch_ratio``); a mapping or ``(signal, weight)`` pairs are accepted too."""
    candidate_pool: Literal["random", "all"] | Sequence[int] = "random"
    """What an action can show: ``"random"`` the videos of the random-exposure log (the pool
    the model is unbiased on), ``"all"`` the whole vocabulary, or explicit video ids. Action
    ``a`` shows the ``a``-th video of the pool (sorted by video id)."""
    leave_model: LeaveModel = "fixed"
    """When sessions end: ``"fixed"`` after exactly ``episode_length`` steps (terminated), or
    ``"hazard"``: after each step the user leaves with the logs' empirical hazard at that
    step, modulated by the step's reward (see ``leave_reward_coef``)."""
    episode_length: int = 10
    """Steps of a session under ``leave_model="fixed"``."""
    max_steps: int = 100
    """A session still running after this many steps is truncated (both leave models)."""
    leave_reward_coef: float = 1.0
    """Hazard model: the leave log-odds fall by this much per unit of reward above the mean
    reward of the random-exposure log (0: the leave probability ignores rewards)."""
    leave_repeat_coef: float = 0.0
    """Hazard model: the leave log-odds rise by this much times the share of the last 10 shown
    videos (before the current one) that share the current video's main tag, a DORL-style
    boredom term (Gao et al., SIGIR 2023; 0: off). Needs ``leave_model="hazard"``."""
    session_gap_minutes: float = 30.0
    """Hazard model: logged sessions, whose lengths give the hazard, are cut at inactivity
    gaps longer than this (the data layer's session definition)."""
    warm_start: bool = True
    """True: a user starts with their logged standard-log past as history (``history_after``);
    False: cold, with an empty history."""
    gap_mean_s: float | None = None
    """Mean seconds between two requests of a session (the clock advances by an exponential
    draw with this mean after each step). None: the logs' mean within-session gap."""
    watch_ratio_concentration: float = 2.0
    """kappa of the watch ratio draw ``Beta(kappa * m, kappa * (1 - m))`` around the predicted
    mean ``m``: small values spread draws towards 0 and 1, large ones concentrate them on m."""
    exposure: Literal["random", "standard"] = "random"
    """Which head of the model answers: ``"random"`` (debiased, a video an agent picks) or
    ``"standard"`` (as if the logging recommender had picked it)."""
    tab: int | None = None
    """App tab (0..14) of every session. None: each session's tab is that of a random logged
    session start."""
    n_users: int | None = None
    """Only the ``n_users`` lowest user ids of the population (users with a standard-log
    history) start sessions. None: all of them."""
    return_history: bool = False
    """Also put the raw window of the last 10 interactions in ``info`` (``history_items``,
    ``history_signals``, ``history_gap_s``, ``history_mask``), for sequence policies."""
    device: str = "auto"
    """Torch device of the response model; ``"auto"``: CUDA when available, else CPU."""
    ensemble: EnsembleMode = "off"
    """Which model answers, given the simulator's ensemble (``noetik sim ensemble``):
    ``"off"`` the base model (as without an ensemble); ``"mean"`` the mean of the members'
    predictions; ``"sample"`` one member per episode, drawn uniformly at the user's reset from
    the environment's generator (the vector env still makes one batched call per member)."""
    pessimism: float = 0.0
    """kappa >= 0 of the MOPO penalty (Yu et al. 2020): the reward becomes ``r - kappa *
    sigma``, sigma the std over the ensemble members of the expected reward ``sum_j w_j
    p_kj`` (the reward's weights on the predicted heads; signals without a head, e.g.
    ``play_time_s``, add no uncertainty). 0: no penalty. Needs an ensemble."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "reward", _reward(self.reward))
        if self.leave_model not in ("fixed", "hazard"):
            raise ConfigError(f"leave_model must be 'fixed' or 'hazard', got {self.leave_model!r}")
        if self.exposure not in ("random", "standard"):
            raise ConfigError(f"exposure must be 'random' or 'standard', got {self.exposure!r}")
        _check_count("episode_length", self.episode_length)
        _check_count("max_steps", self.max_steps)
        if self.n_users is not None:
            _check_count("n_users", self.n_users)
        if self.tab is not None and (not _is_int(self.tab) or not 0 <= self.tab <= 14):
            raise ConfigError(f"tab must be None or an integer in 0..14, got {self.tab!r}")
        check_positive("leave_reward_coef", self.leave_reward_coef, allow_zero=True)
        check_positive("leave_repeat_coef", self.leave_repeat_coef, allow_zero=True)
        if self.leave_repeat_coef > 0 and self.leave_model != "hazard":
            raise ConfigError("leave_repeat_coef > 0 needs leave_model='hazard'")
        check_positive("session_gap_minutes", self.session_gap_minutes)
        check_positive("watch_ratio_concentration", self.watch_ratio_concentration)
        if self.gap_mean_s is not None:
            check_positive("gap_mean_s", self.gap_mean_s, allow_zero=True)
        object.__setattr__(self, "candidate_pool", _pool(self.candidate_pool))
        for name in ("sim_dir", "data_dir"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                object.__setattr__(self, name, str(value))  # accept pathlib.Path
        if self.ensemble not in ("off", "mean", "sample"):
            raise ConfigError(f"ensemble must be 'off', 'mean' or 'sample', got {self.ensemble!r}")
        check_positive("pessimism", self.pessimism, allow_zero=True)
        if not isinstance(self.device, str) or not self.device:
            raise ConfigError(f"device must be 'auto' or a torch device name, got {self.device!r}")

    @property
    def uses_members(self) -> bool:
        """Whether the options need the simulator's ensemble members."""
        return self.ensemble != "off" or self.pessimism > 0

    @property
    def reward_config(self) -> RewardConfig:
        """The reward as a :class:`RewardConfig` (``reward`` is normalised to one)."""
        assert isinstance(self.reward, RewardConfig)
        return self.reward


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _check_count(name: str, value: object) -> None:
    if not _is_int(value) or int(value) < 1:  # type: ignore[call-overload]
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")


def _reward(value: object) -> RewardConfig:
    if isinstance(value, RewardConfig):
        return value
    if isinstance(value, Mapping):
        return RewardConfig.from_mapping(value)
    try:
        return RewardConfig(tuple(value))  # type: ignore[arg-type]
    except TypeError:
        raise ConfigError(
            f"reward: expected a RewardConfig or signal weights, got {value!r}"
        ) from None


def _pool(value: object) -> str | tuple[int, ...]:
    if isinstance(value, str):
        if value not in ("random", "all"):
            raise ConfigError(f"candidate_pool must be 'random', 'all' or video ids, got {value!r}")
        return value
    try:
        ids = tuple(int(v) for v in np.asarray(value, dtype=np.int64).ravel())
    except (TypeError, ValueError):
        raise ConfigError(
            f"candidate_pool: expected 'random', 'all' or video ids, got {value!r}"
        ) from None
    if not ids:
        raise ConfigError("candidate_pool: the video id list is empty")
    return ids
