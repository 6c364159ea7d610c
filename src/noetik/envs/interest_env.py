"""``noetik/InterestEvolution-v0``: RecSim-style slates with evolving interests and a time budget.

Observation (float32): ``[interests (num_topics, if observe_interests), budget left (fraction),
candidate features (n_candidates * num_topics)]``. Action: ``MultiDiscrete([n_candidates] *
slate_size)``, the pool positions shown in slate order; a repeated document is shown once, at its
first position (later copies are empty positions, never clicked; ``info["slate_valid"]``).
Reward: watch time of the clicked document (or 1 per click). The episode terminates when the
time budget is spent and is truncated after ``max_steps``. ``info``: ``user_id``, ``t``,
``budget``, ``interests``, the user's traits, the slate shown (ids, features, length, quality,
cluster) and the signals ``click``, ``watch_time``, ``position``, ``item_id``, ``quality``,
``cluster``, ``utility``. Options: :class:`~noetik.simulators.interest.InterestConfig`.
"""

from __future__ import annotations

from typing import Any

from noetik.envs.vector import SimEnv, SimVectorEnv
from noetik.simulators.core import make_config
from noetik.simulators.interest import InterestConfig, build_interest_simulator

ENV_ID = "noetik/InterestEvolution-v0"


class InterestEvolutionEnv(SimEnv):
    """One user per episode; ``gymnasium.make("noetik/InterestEvolution-v0", **options)``."""

    def __init__(self, render_mode: str | None = None, **options: Any) -> None:
        self.config = make_config(InterestConfig, options, ENV_ID)
        super().__init__(build_interest_simulator(self.config), render_mode)


class InterestEvolutionVectorEnv(SimVectorEnv):
    """``num_envs`` users per call (native batched stepping with next-step autoreset)."""

    def __init__(self, num_envs: int = 1, render_mode: str | None = None, **options: Any) -> None:
        self.config = make_config(InterestConfig, options, ENV_ID)
        super().__init__(build_interest_simulator(self.config), num_envs, render_mode)
