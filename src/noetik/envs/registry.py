"""Versioned ids of the Noetik environments, registered with Gymnasium.

``import noetik`` (or ``import noetik.envs``) registers them; then
``gymnasium.make(id, **options)`` builds one user's environment and
``gymnasium.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point")`` the native
batched one. Each id's options are the fields of its config dataclass. The passive
environment checker is off (it costs a wrapper layer on every step); ``tests/test_envs_core.py``
runs ``gymnasium.utils.env_checker.check_env`` on every id instead. Order enforcement is off
too: every environment raises on ``step()`` before ``reset()`` itself, without a wrapper.
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

#: Every registered environment id.
ENV_IDS: tuple[str, ...] = tuple(env_id for env_id, _, _ in _ENVS)


def register_envs() -> None:
    """Register every id with Gymnasium (idempotent)."""
    for env_id, entry_point, vector_entry_point in _ENVS:
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point=entry_point,
                vector_entry_point=vector_entry_point,
                disable_env_checker=True,  # the test suite runs check_env on every id instead
                order_enforce=False,  # the envs refuse step() before reset() themselves
            )
