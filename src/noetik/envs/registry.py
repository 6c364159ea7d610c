"""Versioned ids of the Noetik environments, registered with Gymnasium.

``import noetik`` (or ``import noetik.envs``) registers them; then
``gymnasium.make(id, **options)`` builds one user's environment and
``gymnasium.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point")`` the native
batched one. Each id's options are the fields of its config dataclass. The passive
environment checker is off (it costs a wrapper layer on every step); ``tests/test_envs_core.py``
runs ``gymnasium.utils.env_checker.check_env`` on every id instead. Order enforcement is off
too: every environment raises on ``step()`` before ``reset()`` itself, without a wrapper.

:data:`ENV_IDS` are the recommendation environments (single and batched);
:data:`DECISION_ENV_IDS` the decision tasks of :mod:`noetik.envs.decision` (one participant
each, no batched form); :data:`ALL_ENV_IDS` both.
"""

from __future__ import annotations

import gymnasium as gym

#: (id, single-env entry point, vector-env entry point) of every environment.
_ENVS: tuple[tuple[str, str, str], ...] = (
    ("noetik/RECEnv-v0", "noetik.envs.rec_env:RECEnv", "noetik.envs.rec_env:RECVectorEnv"),
    (
        "noetik/InterestEvolution-v0",
        "noetik.envs.interest_env:InterestEvolutionEnv",
        "noetik.envs.interest_env:InterestEvolutionVectorEnv",
    ),
    (
        "noetik/KuaiRand-v0",
        "noetik.envs.kuairand_env:KuaiRandEnv",
        "noetik.envs.kuairand_env:KuaiRandVectorEnv",
    ),
)

#: (id, entry point) of every decision-task environment (no native batched form).
_DECISION_ENVS: tuple[tuple[str, str], ...] = (
    ("noetik/Bandit2Arm-v0", "noetik.envs.decision.bandit:BanditEnv"),
    ("noetik/Bandit4Arm-v0", "noetik.envs.decision.gain_loss_bandit:GainLossBanditEnv"),
    ("noetik/IowaGambling-v0", "noetik.envs.decision.igt:IowaGamblingEnv"),
    ("noetik/TwoStep-v0", "noetik.envs.decision.two_step:TwoStepEnv"),
    ("noetik/ReversalLearning-v0", "noetik.envs.decision.reversal:ReversalLearningEnv"),
)

#: Every recommendation environment id (each with a native batched form).
ENV_IDS: tuple[str, ...] = tuple(env_id for env_id, _, _ in _ENVS)

#: Every decision-task environment id.
DECISION_ENV_IDS: tuple[str, ...] = tuple(env_id for env_id, _ in _DECISION_ENVS)

#: Every registered environment id.
ALL_ENV_IDS: tuple[str, ...] = ENV_IDS + DECISION_ENV_IDS


def register_envs() -> None:
    """Register every id with Gymnasium (idempotent)."""
    entries = [*_ENVS, *((env_id, entry, None) for env_id, entry in _DECISION_ENVS)]
    for env_id, entry_point, vector_entry_point in entries:
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point=entry_point,
                vector_entry_point=vector_entry_point,
                disable_env_checker=True,  # the test suite runs check_env on every id instead
                order_enforce=False,  # the envs refuse step() before reset() themselves
            )
