"""The task: what problem a run solves, saved as ``task.json`` in every run folder.

A :class:`TaskConfig` holds everything that defines the problem, apart from the agent:

* ``data``: the KuaiRand folder (stored resolved), its release and the cache of typed copies;
* ``reward``: the weights over the 12 feedback signals (``watch_ratio`` is the watch ratio
  clipped to [0, 1], 0 when the duration is unknown; reward *scaling* before the Bellman
  backup is the agent's ``reward_scale_mode``, saved in its ``config.json``);
* ``episodes``, ``split`` and ``states``: how the log is cut into episodes, into train and test
  by time, and how states are computed (history window);
* ``train_rows``: which rows an offline agent learns from (the training split, or all);
* ``env``: for online runs, the environment id and options (the reward becomes the
  environment's ``reward`` option, so the agent learns the task's reward);
* ``simulator``: for offline runs, the simulator fitted on the same data, in which the online
  lens evaluates the agent.

Every command that reads a run (``act``, ``evaluate``, ``explain``, ``report``) rebuilds its
data, reward and environment from the task, never from defaults. A task file (``--task``)
holds the same JSON; its reward weights may be an object ``{"is_like": 1.0}``.

Paths are stored absolute, and also relative to the run folder: a run moved together with its
data (keeping their relative layout, e.g. ``project/runs/iql`` and ``project/data``) still
finds it.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from noetik.data.episodes import EpisodeConfig
from noetik.data.features import FeatureConfig
from noetik.data.rewards import SIGNALS, RewardConfig
from noetik.data.splits import SplitConfig
from noetik.errors import ConfigError
from noetik.utils.config import from_json
from noetik.utils.io import expect_object, read_json, write_json

__all__ = [
    "TASK_FILE",
    "DataSource",
    "EnvTask",
    "TaskConfig",
    "parse_reward",
    "read_task",
    "write_task",
]

TASK_FILE = "task.json"

#: Environments whose reward is a weighted sum of KuaiRand signals (their ``reward`` option).
SIGNAL_REWARD_ENVS = frozenset({"noetik/KuaiRand-v0"})


@dataclass(frozen=True)
class DataSource:
    """Where the logged data comes from."""

    folder: str | None = None
    """KuaiRand folder, absolute (None: the built-in synthetic KuaiRand-Pure dataset)."""
    cache_dir: str | None = None
    """Folder of the typed Parquet copies, absolute (None: the default cache)."""
    release: str | None = None
    """The release detected in ``folder`` when the run was made (``pure``, ``1k``, ``27k``);
    informational, None when not recorded."""
    out_of_core: bool | None = None
    """Train from transitions on disk, built per user shard (:mod:`noetik.data.ondisk`), rather
    than in memory. None: only for the 27K release, whose log does not fit in memory."""

    def uses_disk(self, release: str) -> bool:
        """Whether offline training on data of ``release`` reads its transitions from disk."""
        return self.out_of_core if self.out_of_core is not None else release == "27k"


@dataclass(frozen=True)
class EnvTask:
    """The environment of an online task."""

    id: str
    """Gymnasium id, e.g. ``noetik/KuaiRand-v0``."""
    options: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of ``gymnasium.make_vec`` (paths in them are stored absolute)."""
    num_envs: int = 256
    """Users stepped per call of the batched environment during training."""

    def __post_init__(self) -> None:
        if self.num_envs < 1:
            raise ConfigError(f"env.num_envs must be >= 1, got {self.num_envs}")


@dataclass(frozen=True)
class TaskConfig:
    """What a run learns: data, reward, episodes, split, states, and its environment."""

    data: DataSource = field(default_factory=DataSource)
    """The logged data (offline runs; online runs in KuaiRand-v0 record their simulator's)."""
    reward: RewardConfig = field(default_factory=RewardConfig)
    """The reward: weights over the 12 signals (default ``0.5*is_click + 0.5*watch_ratio``)."""
    episodes: EpisodeConfig = field(default_factory=EpisodeConfig)
    """How the log is cut into episodes (sessions at inactivity gaps, or fixed windows)."""
    split: SplitConfig = field(default_factory=SplitConfig)
    """How the log is cut into train and test by time (test feeds the OPE lens)."""
    states: FeatureConfig = field(default_factory=FeatureConfig)
    """How the 128-d states are computed (history window ``history_len``)."""
    train_rows: Literal["train", "all"] = "train"
    """Offline rows the agent learns from: the training split (honest evaluation on the test
    split and on random exposure) or all rows."""
    env: EnvTask | None = None
    """Online runs: the environment the agent learns in (None: an offline run)."""
    simulator: str | None = None
    """Offline runs: a simulator run folder (``noetik sim fit``) fitted on ``data``, for the
    online lens; None on the built-in data means its default simulator."""

    def __post_init__(self) -> None:
        if self.env is not None and self.env.id in SIGNAL_REWARD_ENVS:
            given = self.env.options.get("reward")
            if given is not None and RewardConfig(given) != self.reward:
                raise ConfigError(
                    "the task's reward and env option 'reward' differ; give the reward once "
                    "(--reward)"
                )
        elif self.env is not None and self.reward != RewardConfig():
            raise ConfigError(
                f"{self.env.id} has its own reward, not a weighted sum of KuaiRand signals; "
                "--reward applies to offline runs and noetik/KuaiRand-v0"
            )

    @property
    def online(self) -> bool:
        """Whether the agent learns in an environment."""
        return self.env is not None

    def env_options(self) -> dict[str, Any]:
        """The options of ``env`` with the task's reward applied (signal-reward envs)."""
        if self.env is None:
            raise ConfigError("an offline task has no environment")
        options = dict(self.env.options)
        if self.env.id in SIGNAL_REWARD_ENVS:
            options["reward"] = self.reward.weights
        return options

    def describe(self) -> str:
        """One line: where the data is and what is rewarded."""
        source = self.data.folder or "built-in synthetic data"
        if self.env is not None:
            source = f"{self.env.id}"
        return f"{source}; reward {self.reward.describe()}"

    def to_json(self, run_dir: Path | None = None) -> dict[str, Any]:
        """JSON-ready dict; with ``run_dir`` the paths also relative to it (``relative``)."""
        payload: dict[str, Any] = dataclasses.asdict(self)
        payload["reward"] = {"weights": self.reward.as_dict()}
        if run_dir is not None:
            payload["relative"] = {
                name: os.path.relpath(path, Path(run_dir).resolve())
                for name, path in self._paths().items()
            }
        return payload

    def _paths(self) -> dict[str, str]:
        """The task's absolute paths by name (``data.folder``, ``simulator``, ...)."""
        paths = {"data.folder": self.data.folder, "data.cache_dir": self.data.cache_dir}
        paths["simulator"] = self.simulator
        if self.env is not None:
            for key in ("sim_dir", "data_dir"):
                value = self.env.options.get(key)
                paths[f"env.options.{key}"] = value if isinstance(value, str) else None
        return {k: v for k, v in paths.items() if v}

    def resolved(self) -> TaskConfig:
        """A copy with every path absolute (as given relative to the working directory)."""

        def absolute(path: str | None) -> str | None:
            return None if path is None else str(Path(path).expanduser().resolve())

        data = dataclasses.replace(
            self.data, folder=absolute(self.data.folder), cache_dir=absolute(self.data.cache_dir)
        )
        env = self.env
        if env is not None:
            options = dict(env.options)
            for key in ("sim_dir", "data_dir"):
                if isinstance(options.get(key), str):
                    options[key] = absolute(options[key])
            env = dataclasses.replace(env, options=options)
        return dataclasses.replace(self, data=data, env=env, simulator=absolute(self.simulator))

    @classmethod
    def from_json(cls, payload: Any, where: str, run_dir: Path | None = None) -> TaskConfig:
        """Inverse of :meth:`to_json`; a stored path that no longer exists is looked up
        relative to ``run_dir`` (a run moved together with its data)."""
        payload = dict(expect_object(payload, where, "task file"))
        relative = payload.pop("relative", None) or {}
        reward = payload.get("reward")
        if isinstance(reward, dict) and isinstance(reward.get("weights"), dict):
            payload["reward"] = {**reward, "weights": list(reward["weights"].items())}
        task: TaskConfig = from_json(cls, payload, where)
        if run_dir is not None and isinstance(relative, dict):
            task = task._relocated(run_dir, relative)
        return task

    def _relocated(self, run_dir: Path, relative: dict[str, Any]) -> TaskConfig:
        moved: dict[str, str] = {}
        for name, path in self._paths().items():
            rel = relative.get(name)
            if not Path(path).exists() and isinstance(rel, str):
                candidate = (Path(run_dir) / rel).resolve()
                if candidate.exists():
                    moved[name] = str(candidate)
        if not moved:
            return self
        data = dataclasses.replace(
            self.data,
            folder=moved.get("data.folder", self.data.folder),
            cache_dir=moved.get("data.cache_dir", self.data.cache_dir),
        )
        env = self.env
        if env is not None:
            options = dict(env.options)
            for key in ("sim_dir", "data_dir"):
                if f"env.options.{key}" in moved:
                    options[key] = moved[f"env.options.{key}"]
            env = dataclasses.replace(env, options=options)
        simulator = moved.get("simulator", self.simulator)
        return dataclasses.replace(self, data=data, env=env, simulator=simulator)


def parse_reward(text: str) -> RewardConfig:
    """A reward from ``"is_click=0.5,watch_ratio=0.5"`` (any of the 12 signal names)."""
    weights: list[tuple[str, float]] = []
    for item in text.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--reward must look like SIGNAL=WEIGHT,..., got '{text}'")
        if name.strip() not in SIGNALS:
            raise ConfigError(
                f"--reward: unknown signal '{name.strip()}' (valid: {', '.join(SIGNALS)})"
            )
        try:
            weights.append((name.strip(), float(value)))
        except ValueError:
            raise ConfigError(f"--reward: weight of '{name.strip()}' is not a number") from None
    return RewardConfig(tuple(weights))


def write_task(run_dir: Path, task: TaskConfig) -> None:
    """``task.json`` of ``run_dir`` (atomic)."""
    write_json(Path(run_dir) / TASK_FILE, task.to_json(run_dir))


def read_task(path: Path, run_dir: Path | None = None) -> TaskConfig:
    """The task in JSON file ``path`` (a run's ``task.json`` or a ``--task`` file)."""
    return TaskConfig.from_json(read_json(path, "task file"), str(path), run_dir)
