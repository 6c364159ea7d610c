"""Gymnasium faces of a batch-first :class:`~noetik.simulators.core.Simulator`.

* :class:`SimEnv` — the exact ``gymnasium.Env`` API for one user (the simulator with B = 1).
* :class:`SimVectorEnv` — a native ``gymnasium.vector.VectorEnv`` stepping B users in one call,
  with next-step autoreset.

Determinism contract: all randomness comes from one generator, ``np_random``, seeded by
``reset(seed=...)``. The same seed and actions give the same trajectory; a vector env with
``num_envs=1`` gives exactly the single env's trajectory (its autoreset draws the next user as
``reset()`` would). With ``num_envs=N`` the N users share the stream, so user ``i``'s
trajectory depends on N (reproducible for a fixed N and seed).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from noetik.simulators.core import Float32Array, IntArray, Simulator, StepResult, Users


def _action_limit(space: spaces.Space[Any]) -> int:
    if isinstance(space, spaces.Discrete):
        return int(space.n)
    if isinstance(space, spaces.MultiDiscrete):
        return int(space.nvec.flat[0])
    raise TypeError(f"unsupported action space {space}")


def _check_actions(action: IntArray, limit: int) -> None:
    if action.size <= 8:  # a single user's action: Python is faster than numpy reductions
        values = action.ravel().tolist()
        bad = bool(values) and (min(values) < 0 or max(values) >= limit)
    else:
        bad = bool(action.min() < 0 or action.max() >= limit)
    if bad:
        raise ValueError(f"actions must be item indices in [0, {limit}), got {action.tolist()}")


class SimEnv(gym.Env[Float32Array, Any]):
    """One user at a time: ``reset`` draws a user, ``step`` shows them an item (or a slate)."""

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012

    def __init__(self, simulator: Simulator, render_mode: str | None = None) -> None:
        self.simulator = simulator
        self.observation_space = simulator.observer.space  # type: ignore[assignment]
        self.action_space = simulator.action_space
        self.render_mode = render_mode
        self._limit = _action_limit(simulator.action_space)
        self._scalar_action = isinstance(simulator.action_space, spaces.Discrete)
        self._users: Users | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Float32Array, dict[str, Any]]:
        """Start a session with a new user; ``info`` holds the hidden state and user id."""
        super().reset(seed=seed)
        users = self._users = self.simulator.reset(self.np_random, 1)
        obs = self.simulator.observe(self.np_random, users)[0]
        return obs, _row(self.simulator.info(users, None, None))

    def step(self, action: Any) -> tuple[Float32Array, float, bool, bool, dict[str, Any]]:
        """Show ``action``; ``info`` holds every feedback signal, the item features and state."""
        if self._users is None:
            raise RuntimeError("call reset() before step()")
        if type(action) is int and self._scalar_action:  # the common case, checked cheaply
            if not 0 <= action < self._limit:
                raise ValueError(
                    f"actions must be item indices in [0, {self._limit}), got {action}"
                )
            batch = np.array([action], dtype=np.int64)
        else:
            batch = np.asarray(action, dtype=np.int64)[None]
            _check_actions(batch, self._limit)
        rng, users = self.np_random, self._users
        result = self.simulator.step(rng, users, batch)
        obs = self.simulator.observe(rng, users)[0]
        info = _row(self.simulator.info(users, batch, result))
        reward = float(result.reward[0])
        return obs, reward, bool(result.terminated[0]), bool(result.truncated[0]), info


def _row(info: dict[str, np.ndarray]) -> dict[str, Any]:
    """Row 0 of batched info: scalars as Python numbers, vectors as arrays."""
    for key, value in info.items():
        info[key] = value.item() if value.ndim == 1 else value[0]
    return info


class SimVectorEnv(VectorEnv[Float32Array, IntArray, np.ndarray]):
    """B users stepped together; finished sessions restart on the next step (next-step mode).

    ``info`` holds batched arrays (leading dim B) for every key, plus ``"autoreset"`` ``(B,)``:
    True for rows that were restarted by this call, whose reward is 0 and whose step fields
    (item, signals) do not describe the new session.
    """

    metadata: dict[str, Any] = {  # noqa: RUF012
        "render_modes": [],
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def __init__(self, simulator: Simulator, num_envs: int, render_mode: str | None = None):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.simulator = simulator
        self.num_envs = num_envs
        self.render_mode = render_mode
        self.single_observation_space = simulator.observer.space
        self.single_action_space = simulator.action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._limit = _action_limit(simulator.action_space)
        self._users: Users | None = None
        self._done = np.zeros(num_envs, dtype=bool)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Float32Array, dict[str, Any]]:
        """Start ``num_envs`` new sessions."""
        super().reset(seed=seed)
        users = self._users = self.simulator.reset(self.np_random, self.num_envs)
        self._done[:] = False
        info: dict[str, Any] = self.simulator.info(users, None, None)
        info["autoreset"] = np.ones(self.num_envs, dtype=bool)
        return self.simulator.observe(self.np_random, users), info

    def step(
        self, actions: IntArray
    ) -> tuple[Float32Array, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every user; rows that finished on the previous call restart instead."""
        if self._users is None:
            raise RuntimeError("call reset() before step()")
        if self._done.all():
            return self._restart_all()
        actions = np.asarray(actions, dtype=np.int64)
        _check_actions(actions, self._limit)
        rng, users, done = self.np_random, self._users, self._done.copy()
        result = self.simulator.step(rng, users, actions)
        if done.any():
            users.put(done, self.simulator.reset(rng, int(done.sum())))
            _blank(result, done)
        obs = self.simulator.observe(rng, users)
        info: dict[str, Any] = self.simulator.info(users, actions, result)
        info["autoreset"] = done
        self._done = result.terminated | result.truncated
        return obs, result.reward, result.terminated, result.truncated, info

    def _restart_all(
        self,
    ) -> tuple[Float32Array, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        obs, info = self.reset()
        zeros = np.zeros(self.num_envs, dtype=bool)
        return obs, np.zeros(self.num_envs), zeros, zeros.copy(), info


def _blank(result: StepResult, rows: np.ndarray) -> None:
    """Rows restarted by this call report no reward, signals or termination."""
    result.reward[rows] = 0.0
    result.terminated[rows] = False
    result.truncated[rows] = False
    for signal in result.signals.values():
        signal[rows] = 0.0
