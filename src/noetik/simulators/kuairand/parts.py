"""The parts of ``noetik/KuaiRand-v0``: a simulator learned from KuaiRand logs.

==================  ========================================================================
``LoggedUsers``     users of the standard log (uniform; ``n_users`` lowest ids), seeded with
                    their logged past (``warm_start``) or cold; session tab and start time
                    from a random logged session (warm: the user's last logged time plus a
                    logged between-session gap); ``ensemble="sample"``: a uniform member
``CandidatePool``   the fixed catalog: action ``a`` -> vocabulary item ``pool[a]``
``ResponseModel``   state (``OnlineStates.observe``) -> one batched ``predict_torch`` call (and
                    one per ensemble member when the options use them: the base model's, the
                    members' mean or each user's member, and the spread; see
                    :mod:`~noetik.simulators.kuairand.uncertainty`) -> sampled signals
                    (:mod:`~noetik.simulators.kuairand.signals`); dynamics: push the step
                    into the history, advance the clock by an exponential gap
``ConfigReward``    the data layer's :class:`RewardConfig` applied to the signals, minus the
                    MOPO penalty ``pessimism * sigma``
``FixedLength`` /   :mod:`~noetik.simulators.kuairand.leave`
``HazardLeave``
``StateObserver``   the 128-d state, float32 ``Box(-inf, inf, (128,))``
``AnalystReport``   user id, step, clock, tab, shown video, 12 signals, predictions, duration,
                    tag buckets, item features, leave probability; the raw history on demand;
                    with ensemble members ``reward_raw``, ``reward_sigma``, ``pred_std_*``
==================  ========================================================================
"""

from __future__ import annotations

from typing import cast

import numpy as np
import torch
from gymnasium import spaces

from noetik.data.features import STATE_DIM, STATE_SLICES
from noetik.data.online_state import DEFAULT_CLOCK_LAG_S, LoggedHistory, OnlineStates
from noetik.data.rewards import SIGNALS, RewardConfig, reward_from_signals
from noetik.errors import ConfigError
from noetik.simulators import core
from noetik.simulators.core import Float32Array, FloatArray, IntArray, Signals, Users
from noetik.simulators.kuairand.env_config import KuaiRandEnvConfig
from noetik.simulators.kuairand.examples import HEADS
from noetik.simulators.kuairand.leave import (
    FixedLength,
    HazardLeave,
    LogSessionStats,
    empirical_hazard,
    main_tags,
    reference_reward,
    repeat_share,
    session_stats,
)
from noetik.simulators.kuairand.signals import StayModel, sample_signals
from noetik.simulators.kuairand.uncertainty import ensemble_answer, head_weights
from noetik.simulators.kuairand.users import KuaiRandUsers
from noetik.simulators.kuairand.world import HISTORY_LEN, KuaiRandWorld, load_world


def _observe(world: KuaiRandWorld, users: Users) -> Float32Array:
    """(B, 128) float32 current states of a :class:`KuaiRandUsers` batch (cached)."""
    obs: Float32Array = cast(KuaiRandUsers, users).observe(
        world.tables, HISTORY_LEN, DEFAULT_CLOCK_LAG_S
    )
    return obs


def _states(world: KuaiRandWorld, users: Users) -> OnlineStates:
    """The :class:`OnlineStates` bound to a :class:`KuaiRandUsers` batch."""
    states: OnlineStates = cast(KuaiRandUsers, users).states(
        world.tables, HISTORY_LEN, DEFAULT_CLOCK_LAG_S
    )
    return states


def _take_history(h: LoggedHistory, rows: IntArray) -> LoggedHistory:
    return LoggedHistory(
        h.items[rows],
        h.signals[rows],
        h.time_s[rows],
        h.mask[rows],
        h.n_past[rows],
        h.cum_sum[rows],
    )


class LoggedUsers(core.UserSampler):
    """Users of the standard log, uniformly, with their logged past (warm) or none (cold)."""

    def __init__(self, world: KuaiRandWorld, config: KuaiRandEnvConfig, sessions: LogSessionStats):
        n = len(world.population) if config.n_users is None else config.n_users
        if n > len(world.population):
            raise ConfigError(
                f"n_users: {n} asked, the standard log has {len(world.population)} users"
            )
        self.world, self.config, self.sessions, self.n = world, config, sessions, n
        self.last_time_s = world.history.time_s[:, -1]
        self.n_members = len(world.sim.members) if config.ensemble == "sample" else 0

    def sample(self, rng: np.random.Generator, n: int) -> Users:
        """``n`` new sessions (draws: users, sessions, then a between-session gap if warm, then
        an ensemble member if ``ensemble="sample"``)."""
        rows = rng.integers(0, self.n, size=n)
        session = rng.integers(0, len(self.sessions.lengths), size=n)
        tab = self.sessions.start_tab[session]
        if self.config.tab is not None:
            tab = np.full(n, self.config.tab, dtype=np.int64)
        user_id = self.world.population[rows]
        states = OnlineStates(self.world.tables, n, HISTORY_LEN, clock_lag_s=DEFAULT_CLOCK_LAG_S)
        if self.config.warm_start:
            gaps = self.sessions.between_gaps_s
            time_s = self.last_time_s[rows] + gaps[rng.integers(0, len(gaps), size=n)]
            states.reset(np.arange(n), user_id, _take_history(self.world.history, rows))
        else:
            time_s = self.sessions.start_s[session].copy()
            states.reset(np.arange(n), user_id)
        member = rng.integers(0, self.n_members, size=n) if self.n_members else None
        return KuaiRandUsers.fresh(user_id, time_s, tab.astype(np.int64), states, member)


class CandidatePool(core.ItemModel):
    """A fixed catalog: action ``a`` shows vocabulary item ``items.item_id[a]`` to every user."""

    def __init__(self, world: KuaiRandWorld, pool: IntArray) -> None:
        n = len(pool)
        self.pool = pool
        """(A_pool,) int64 vocabulary index of each action."""
        self.video_ids = world.vocab.decode(pool)
        """(A_pool,) int64 KuaiRand video id of each action."""
        self.vocab_video_ids = world.vocab.video_ids
        """(A_vocab,) int64 video id of each vocabulary index (the ids in ``info`` history)."""
        cluster = main_tags(world.tables.action_tags[pool])
        features = world.sim.items.features[pool].astype(np.float64)
        self.items = core.Items(pool, features, world.duration_s[pool], np.zeros(n), cluster)

    def sample(self, rng: np.random.Generator, users: Users) -> None:
        """No per-user pools."""
        return None


def candidate_pool(world: KuaiRandWorld, config: KuaiRandEnvConfig) -> IntArray:
    """(A_pool,) int64 sorted vocabulary indices of the candidate pool of ``config``."""
    spec = config.candidate_pool
    if spec == "all":
        return np.arange(len(world.vocab), dtype=np.int64)
    if spec == "random":
        if world.random is None or not len(world.random.action):
            raise ConfigError("candidate_pool='random': the dataset has no random-exposure log")
        return np.unique(world.random.action)
    try:
        return np.unique(world.vocab.encode(np.asarray(spec, dtype=np.int64)))
    except KeyError as exc:
        raise ConfigError(f"candidate_pool: {exc.args[0]}") from None


class ResponseModel(core.UserModel):
    """The fitted response model: one batched prediction, then sampled signals."""

    def __init__(
        self, world: KuaiRandWorld, pool: IntArray, config: KuaiRandEnvConfig, gap_mean_s: float
    ) -> None:
        self.world, self.pool, self.config, self.gap_mean_s = world, pool, config, gap_mean_s
        self.stay = StayModel.from_logs(world.standard, world.random)
        self.device = world.sim.device
        self.pool_t = torch.from_numpy(pool).to(self.device)
        self.duration_s = world.duration_s[pool]
        self.hazard = config.leave_model == "hazard"
        self.weights = head_weights(config.reward_config, self.device)
        self.repeat = config.leave_repeat_coef > 0
        self.main_tag = main_tags(world.tables.action_tags) if self.repeat else np.zeros(0)

    def predict(self, users: KuaiRandUsers, action: IntArray) -> None:
        """Set ``users.predicted`` (B, 9) float32 for the current states and ``action`` (B,);
        with ensemble members also ``users.pred_std`` and ``users.reward_sigma``."""
        obs_t = torch.from_numpy(_observe(self.world, users)).to(self.device)
        item_t = self.pool_t[torch.from_numpy(action).to(self.device)]
        sim, exposure = self.world.sim, self.config.exposure
        if not self.config.uses_members:
            users.predicted = sim.predict_torch(obs_t, item_t, exposure).cpu().numpy()
            return
        mode = self.config.ensemble
        base = sim.predict_torch(obs_t, item_t, exposure) if mode == "off" else None
        member = torch.from_numpy(users.member).to(self.device)
        members = sim.predict_members_torch(obs_t, item_t, exposure)
        answer = ensemble_answer(members, base, mode, member, self.weights)
        users.predicted, users.pred_std = answer.predicted, answer.pred_std
        users.reward_sigma = answer.reward_sigma

    def response(self, rng: np.random.Generator, users: Users, action: IntArray) -> Signals:
        """Signals ``{name: (B,)}`` drawn from the predictions for the current states."""
        kr = cast(KuaiRandUsers, users)
        self.predict(kr, action)
        kr.signals = sample_signals(
            rng,
            kr.predicted,
            self.duration_s[action],
            self.config.watch_ratio_concentration,
            self.stay,
        )
        columns = np.ascontiguousarray(kr.signals.T)  # (12, B): rows are independent copies
        return dict(zip(SIGNALS, columns, strict=True))

    def preference_dynamics(
        self, rng: np.random.Generator, users: Users, action: IntArray, signals: Signals
    ) -> None:
        """Push the step into the history; advance the clock; draw the leave uniforms."""
        kr = cast(KuaiRandUsers, users)
        states = _states(self.world, kr)
        if self.repeat:  # the window before this step's video is pushed into it
            kr.repeat_share = repeat_share(
                states.history(kr.time_s)[0], self.pool[action], self.main_tag
            )
        states.push(self.pool[action], kr.signals, kr.time_s)
        kr.obs_fresh[:] = False
        kr.time_s += rng.exponential(self.gap_mean_s, size=len(action))
        if self.hazard:
            kr.leave_draw = rng.random(len(action))


class ConfigReward(core.RewardFunction):
    """The weighted sum of signals of a :class:`RewardConfig` (float64), minus ``pessimism``
    times the ensemble's reward uncertainty ``users.reward_sigma`` (MOPO)."""

    def __init__(self, reward: RewardConfig, pessimism: float = 0.0) -> None:
        self.reward, self.pessimism = reward, pessimism

    def __call__(self, signals: Signals, users: Users) -> FloatArray:
        """Reward (B,) float64 (:func:`~noetik.data.rewards.reward_from_signals`); the
        unpenalised one is kept in ``users.reward_raw``."""
        raw = reward_from_signals(signals, self.reward, dtype=np.float64)
        kr = cast(KuaiRandUsers, users)
        kr.reward_raw = raw
        if self.pessimism == 0.0:
            return raw
        penalised: FloatArray = raw - self.pessimism * kr.reward_sigma
        return penalised


#: Slices whose every dimension is at most 1.
_UNIT_SLICES = (
    "user.active_degree",
    "user.flags",
    "user.onehot",
    "user.missing",
    "hist.cum_mean",
    "hist.tags",
    "ctx.hour",
    "ctx.weekday",
    "ctx.tab",
)


def state_space() -> spaces.Box:
    """Box of the 128-d state: >= -1 (sin/cos; other dimensions are >= 0 up to float rounding
    of the running window sums), <= 1 on the unit slices; the log-scaled dimensions (times,
    counts) are bounded by the float32 maximum only."""
    high = np.full(STATE_DIM, np.finfo(np.float32).max, dtype=np.float32)
    for name in _UNIT_SLICES:
        high[STATE_SLICES[name]] = 1.0
    return spaces.Box(np.full(STATE_DIM, -1.0, dtype=np.float32), high, dtype=np.float32)


class StateObserver(core.Observer):
    """The 128-d state of each user before the next request."""

    def __init__(self, world: KuaiRandWorld) -> None:
        self.world = world
        self.space = state_space()

    def __call__(self, rng: np.random.Generator, users: Users) -> Float32Array:
        """(B, 128) float32."""
        obs = _observe(self.world, users)
        return obs.copy() if obs is cast(KuaiRandUsers, users).obs else obs


#: Heads whose spread over the ensemble members ``info`` reports as ``pred_std_<head>``.
_STD_HEADS = ("is_click", "long_view")


class AnalystReport(core.Reporter):
    """Everything an analyst needs per user (see the module table and docs/environments.md)."""

    def __init__(
        self,
        world: KuaiRandWorld,
        pool: CandidatePool,
        return_history: bool,
        uses_members: bool = False,
    ) -> None:
        self.world, self.pool, self.return_history = world, pool, return_history
        self.uses_members = uses_members

    def __call__(
        self, users: Users, action: IntArray | None, result: core.StepResult | None
    ) -> dict[str, np.ndarray]:
        """Arrays with leading dim B."""
        kr = cast(KuaiRandUsers, users)
        info: dict[str, np.ndarray] = {
            "user_id": kr.user_id.copy(),
            "t": kr.t.copy(),
            "time_s": kr.time_s.copy(),
            "tab": kr.tab.copy(),
        }
        if action is not None and result is not None:
            item = self.pool.pool[action]
            info["action"] = action
            info["item"] = item
            info["video_id"] = self.pool.video_ids[action]
            info["reward"] = result.reward
            info.update(result.signals)
            info.update({f"pred_{h}": kr.predicted[:, j] for j, h in enumerate(HEADS)})
            info["duration_s"] = self.pool.items.length[action]
            info["tags"] = self.world.tables.action_tags[item]
            info["item_features"] = self.world.sim.items.features[item]
            info["leave_prob"] = kr.leave_prob.copy()
            if self.uses_members:
                info["reward_raw"] = kr.reward_raw.copy()
                info["reward_sigma"] = kr.reward_sigma.copy()
                for head in _STD_HEADS:
                    info[f"pred_std_{head}"] = kr.pred_std[:, HEADS.index(head)].copy()
        if self.return_history:
            states = _states(self.world, kr)
            names = ("history_items", "history_signals", "history_gap_s", "history_mask")
            info.update(zip(names, states.history(kr.time_s), strict=True))
        return info


def build_kuairand_simulator(config: KuaiRandEnvConfig) -> core.Simulator:
    """The KuaiRand simulator of ``config`` (loads, or reuses, the fitted model and logs)."""
    world = load_world(config.sim_dir, config.data_dir, config.device)
    if config.uses_members and not world.sim.members:
        option = f"ensemble={config.ensemble!r}" if config.ensemble != "off" else "pessimism > 0"
        raise ConfigError(
            f"{option} needs ensemble members, the simulator has none: run "
            "`noetik sim ensemble SIM_DIR --members 5` first"
        )
    sessions = session_stats(world.standard, config.session_gap_minutes)
    pool = candidate_pool(world, config)
    catalog = CandidatePool(world, pool)
    gap = sessions.within_gap_mean_s if config.gap_mean_s is None else config.gap_mean_s
    termination: core.Termination = FixedLength(config.episode_length, config.max_steps)
    if config.leave_model == "hazard":
        reward = config.reward_config
        termination = HazardLeave(
            empirical_hazard(sessions.lengths, config.max_steps),
            reward,
            config.leave_reward_coef,
            reference_reward(world.random, world.standard, reward),
            config.max_steps,
            repeat_coef=config.leave_repeat_coef,
        )
    return core.Simulator(
        user_sampler=LoggedUsers(world, config, sessions),
        item_model=catalog,
        user_model=ResponseModel(world, pool, config, gap),
        reward=ConfigReward(config.reward_config, config.pessimism),
        termination=termination,
        observer=StateObserver(world),
        reporter=AnalystReport(world, catalog, config.return_history, config.uses_members),
        action_space=spaces.Discrete(len(pool)),
    )
