"""``noetik/KuaiRand-v0``: a recommender environment learned from KuaiRand logs.

Observation: the 128-d state of :mod:`noetik.data.features` (user, history summary, context),
float32 ``(128,)``, computed online exactly as the offline transitions compute it. Action: an
index into the candidate pool (default: the videos of the random-exposure log;
``candidate_video_ids`` maps it to video ids). Reward: the data layer's :class:`RewardConfig`
applied to the sampled signals (default ``0.5 * is_click + 0.5 * watch_ratio``). Sessions last
``episode_length`` steps (default 10) or end by the logs' leave hazard (``leave_model=
"hazard"``). ``info``: ``user_id``, ``t``, ``time_s``, ``tab`` and after a step ``action``,
``item``, ``video_id``, ``reward``, the 12 signals by name, ``pred_<head>`` (the model's
probabilities), ``duration_s``, ``tags``, ``item_features``, ``leave_prob``; with
``return_history=True`` also the raw history window. Options:
:class:`~noetik.simulators.kuairand.env_config.KuaiRandEnvConfig`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from noetik.envs.vector import SimEnv, SimVectorEnv
from noetik.simulators.core import Simulator, make_config
from noetik.simulators.kuairand.env_config import KuaiRandEnvConfig
from noetik.simulators.kuairand.parts import CandidatePool, build_kuairand_simulator

ENV_ID = "noetik/KuaiRand-v0"


class _PoolIds:
    """Video ids of the actions and of the vocabulary, for both faces of the environment."""

    simulator: Simulator

    @property
    def candidate_video_ids(self) -> np.ndarray:
        """(n_actions,) int64 KuaiRand video id shown by each action."""
        pool: CandidatePool = self.simulator.item_model  # type: ignore[assignment]
        return pool.video_ids

    @property
    def vocab_video_ids(self) -> np.ndarray:
        """(A_vocab,) int64 video id of each vocabulary index (``info["history_items"]``)."""
        pool: CandidatePool = self.simulator.item_model  # type: ignore[assignment]
        return pool.vocab_video_ids


class KuaiRandEnv(_PoolIds, SimEnv):
    """One user per episode; ``gymnasium.make("noetik/KuaiRand-v0", sim_dir=..., **options)``."""

    def __init__(self, render_mode: str | None = None, **options: Any) -> None:
        self.config = make_config(KuaiRandEnvConfig, options, ENV_ID)
        super().__init__(build_kuairand_simulator(self.config), render_mode)


class KuaiRandVectorEnv(_PoolIds, SimVectorEnv):
    """``num_envs`` users per call (one batched model call per step, next-step autoreset)."""

    def __init__(self, num_envs: int = 1, render_mode: str | None = None, **options: Any) -> None:
        self.config = make_config(KuaiRandEnvConfig, options, ENV_ID)
        super().__init__(build_kuairand_simulator(self.config), num_envs, render_mode)
