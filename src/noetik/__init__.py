"""Noetik: interpretable reinforcement learning for recommendation on KuaiRand.

Stages, each importing only from the ones before it::

    data -> simulators / envs -> agents -> evaluation -> explain -> analysis / reports -> cli
"""

from __future__ import annotations

__version__ = "0.1.0"
