"""Gymnasium environments of classic decision tasks, to simulate fitted models of choice.

=================================  =============================================================
id                                 task
=================================  =============================================================
``noetik/Bandit2Arm-v0``           two-armed bandit, fixed reward probabilities, outcome 1 / -1
``noetik/Bandit4Arm-v0``           four-armed bandit, separate drifting gain and loss chances
``noetik/IowaGambling-v0``         Iowa Gambling Task, Bechara et al. (1994) payoffs
``noetik/TwoStep-v0``              two-step task, Daw et al. (2011), drifting reward chances
``noetik/ReversalLearning-v0``     probabilistic reversal learning, performance-based reversals
=================================  =============================================================

Every environment is a :class:`DecisionEnv`: one step per choice (the two-step task takes two
per trial), observations and ``info`` as described there, and a ``design``
(:class:`~noetik.data.choices.TaskDesign`) that matches the episodes read from data files.

>>> import gymnasium as gym, noetik
>>> env = gym.make("noetik/IowaGambling-v0")
>>> obs, info = env.reset(seed=1)
>>> obs, reward, terminated, truncated, info = env.step(2)    # a card from deck C
>>> info["gain"], info["loss"]
"""

from __future__ import annotations

from noetik.envs.decision.bandit import BanditConfig, BanditEnv
from noetik.envs.decision.base import DecisionEnv
from noetik.envs.decision.gain_loss_bandit import GainLossBanditConfig, GainLossBanditEnv
from noetik.envs.decision.igt import IGTConfig, IowaGamblingEnv
from noetik.envs.decision.reversal import ReversalConfig, ReversalLearningEnv
from noetik.envs.decision.two_step import TwoStepConfig, TwoStepEnv

__all__ = [
    "BanditConfig",
    "BanditEnv",
    "DecisionEnv",
    "GainLossBanditConfig",
    "GainLossBanditEnv",
    "IGTConfig",
    "IowaGamblingEnv",
    "ReversalConfig",
    "ReversalLearningEnv",
    "TwoStepConfig",
    "TwoStepEnv",
]
