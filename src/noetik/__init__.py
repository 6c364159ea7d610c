"""Noetik: interpretable reinforcement learning for recommendation on KuaiRand.

Stages, each importing only from the ones before it::

    data -> simulators / envs -> agents -> evaluation -> explain -> analysis / reports -> cli

``import noetik`` registers every environment id with Gymnasium (cheap: the registry imports
only ``gymnasium``; entry points are strings, loaded by ``gymnasium.make``)::

    import gymnasium, noetik
    env = gymnasium.make("noetik/KuaiRand-v0")
    envs = gymnasium.make_vec(
        "noetik/KuaiRand-v0", num_envs=8, vectorization_mode="vector_entry_point"
    )
"""

from __future__ import annotations

from noetik.envs.registry import register_envs

register_envs()

__version__ = "0.1.0"
