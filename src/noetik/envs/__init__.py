"""Gymnasium environments for recommendation; ``import noetik`` (or this package) registers
their ids (:data:`ENV_IDS`).

>>> import gymnasium, noetik
>>> env = gymnasium.make("noetik/KuaiRand-v0")                      # one user
>>> envs = gymnasium.make_vec(
...     "noetik/KuaiRand-v0", num_envs=8, vectorization_mode="vector_entry_point"
... )                                                                # the native batched env
"""

from __future__ import annotations

from noetik.envs.registry import ENV_IDS, register_envs

register_envs()

__all__ = ["ENV_IDS", "register_envs"]
