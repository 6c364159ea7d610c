"""Gymnasium environments for recommendation; importing this package registers their ids."""

from __future__ import annotations

from noetik.envs.registry import ENV_IDS, register_envs

register_envs()

__all__ = ["ENV_IDS", "register_envs"]
