"""Gymnasium environments for recommendation (:data:`ENV_IDS`) and decision tasks
(:data:`DECISION_ENV_IDS`, :mod:`noetik.envs.decision`); ``import noetik`` (or this package)
registers their ids (:data:`ALL_ENV_IDS`).

>>> import gymnasium, noetik
>>> env = gymnasium.make("noetik/KuaiRand-v0")                      # one user
>>> envs = gymnasium.make_vec(
...     "noetik/KuaiRand-v0", num_envs=8, vectorization_mode="vector_entry_point"
... )                                                                # the native batched env
"""

from __future__ import annotations

from noetik.envs.registry import ALL_ENV_IDS, DECISION_ENV_IDS, ENV_IDS, register_envs

register_envs()

__all__ = ["ALL_ENV_IDS", "DECISION_ENV_IDS", "ENV_IDS", "register_envs"]
