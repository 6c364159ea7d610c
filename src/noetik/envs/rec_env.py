"""``noetik/RECEnv-v0``: a RECGym-style recommender environment (single and batched).

Observation: the user's unit preference vector plus Gaussian noise ``obs_std``, clipped to
[-1, 1], float32 ``(user_feature_dim,)``. Action: an item index in ``[0, n_items)``. Reward: the
user/item affinity (continuous, with Gaussian noise ``reward_std``) or a Bernoulli click with
probability ``sigmoid(affinity)`` (binary). An episode terminates after ``step_per_episode``
steps. ``info``: ``user_id``, ``t``, ``state`` (true preference), and after a step ``item_id``,
``item_features`` and ``reward``. Options: :class:`~noetik.simulators.rec.RECConfig`.
"""

from __future__ import annotations

from typing import Any

from noetik.envs.vector import SimEnv, SimVectorEnv
from noetik.simulators.core import make_config
from noetik.simulators.rec import RECConfig, build_rec_simulator

ENV_ID = "noetik/RECEnv-v0"


class RECEnv(SimEnv):
    """One user per episode; ``gymnasium.make("noetik/RECEnv-v0", **RECConfig fields)``."""

    def __init__(self, render_mode: str | None = None, **options: Any) -> None:
        self.config = make_config(RECConfig, options, ENV_ID)
        super().__init__(build_rec_simulator(self.config), render_mode)


class RECVectorEnv(SimVectorEnv):
    """``num_envs`` users per call; ``gymnasium.make_vec("noetik/RECEnv-v0", num_envs=N)``."""

    def __init__(self, num_envs: int = 1, render_mode: str | None = None, **options: Any) -> None:
        self.config = make_config(RECConfig, options, ENV_ID)
        super().__init__(build_rec_simulator(self.config), num_envs, render_mode)
