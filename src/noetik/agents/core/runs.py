"""Run folders: train any registered agent on logged data or in an environment, and reload it.

``<run>/run.json`` records what the agent was trained on (data folder or env id and options),
the algorithm, steps and seed; the agent itself (``config.json``, ``spec.json``,
``model.safetensors``), ``metrics.csv`` and ``checkpoint/`` sit beside it.

Offline agents train on the **training split** of the standard log (the first 80 % by time,
:class:`~noetik.data.splits.SplitConfig`), so later evaluation on the test split and on the
random-exposure log is honest.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from noetik.agents.core.base import Agent, AgentConfig, ProblemSpec
from noetik.agents.core.recommend import Recommendations, sample_users, top_k, user_states
from noetik.agents.core.trainer import TrainerConfig, TrainResult
from noetik.data.dataset import load_kuairand
from noetik.data.transitions import Transitions, build_transitions
from noetik.errors import ConfigError, NoetikError
from noetik.utils.io import write_json

RUN_FILE = "run.json"


@dataclass(frozen=True)
class RunSource:
    """What an agent trains on: a KuaiRand folder (offline) or an environment (online)."""

    data_dir: str | None = None
    """KuaiRand folder for offline training; None (and no env) means the built-in dataset."""
    env_id: str | None = None
    """Gymnasium id for online training, e.g. ``noetik/KuaiRand-v0``."""
    num_envs: int = 256
    """Users stepped per call of the batched environment (online)."""
    env_kwargs: tuple[tuple[str, Any], ...] = ()
    """Options passed to ``gymnasium.make_vec`` (online)."""
    cache_dir: str | None = None
    """Cache folder of the typed Parquet copies (offline)."""
    split: str = "train"
    """Offline rows to train on: ``train`` (first 80 % by time) or ``all``."""

    @property
    def online(self) -> bool:
        """Whether the agent trains in an environment."""
        return self.env_id is not None


def offline_transitions(source: RunSource) -> Transitions:
    """The transitions of ``source``'s standard log (its split)."""
    if source.split not in ("train", "all"):
        raise ConfigError(f"split must be 'train' or 'all', got {source.split!r}")
    ds = load_kuairand(source.data_dir, cache_dir=source.cache_dir)
    return build_transitions(ds, split="train" if source.split == "train" else None)


def make_envs(source: RunSource) -> gym.vector.VectorEnv[Any, Any, Any]:
    """The batched environment of ``source`` (``vector_entry_point`` mode)."""
    import noetik.envs  # noqa: F401  (registers the ids)

    assert source.env_id is not None
    return gym.make_vec(
        source.env_id,
        num_envs=source.num_envs,
        vectorization_mode="vector_entry_point",
        **dict(source.env_kwargs),
    )


def _spec_and_data(source: RunSource) -> tuple[ProblemSpec, Any]:
    if not source.online:
        transitions = offline_transitions(source)
        return ProblemSpec.from_transitions(transitions), transitions
    envs = make_envs(source)
    video_ids = getattr(envs, "candidate_video_ids", None)
    spec = ProblemSpec.from_env(envs)
    if video_ids is not None:
        spec = dataclasses.replace(spec, video_ids=np.asarray(video_ids, dtype=np.int64))
    return spec, envs


def train_run(
    config: AgentConfig, source: RunSource, out: Path, steps: int, *, resume: bool = False
) -> TrainResult:
    """Train ``config``'s agent on ``source`` for ``steps`` updates into run folder ``out``."""
    if steps < 1:
        raise ConfigError(f"steps must be >= 1, got {steps}")
    spec, data = _spec_and_data(source)
    agent = config.create(spec)
    trainer = TrainerConfig(
        out_dir=str(out),
        log_every=max(1, steps // 50),
        checkpoint_every=max(1, steps // 4),
        progress=True,
        resume=resume,
    )
    result = agent.fit(data, steps, trainer=trainer)
    agent.save(out)
    write_json(
        out / RUN_FILE,
        {
            "algo": config.algo,
            "steps": steps,
            "seed": config.seed,
            "source": {**dataclasses.asdict(source), "env_kwargs": dict(source.env_kwargs)},
        },
    )
    return result


def read_run(run_dir: Path) -> tuple[dict[str, Any], RunSource]:
    """``run.json`` of ``run_dir`` and the source it names."""
    path = run_dir / RUN_FILE
    try:
        meta: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise NoetikError(f"{path}: cannot read run file ({exc})") from None
    raw = dict(meta["source"])
    raw["env_kwargs"] = tuple(sorted(dict(raw.get("env_kwargs") or {}).items()))
    return meta, RunSource(**raw)


def recommend_for_run(
    run_dir: Path, users: list[int] | None, k: int, n_sample: int = 3
) -> Recommendations:
    """Top-``k`` of the agent in ``run_dir`` for ``users`` (or ``n_sample`` sampled users)."""
    _, source = read_run(run_dir)
    agent = Agent.load(run_dir)
    agent.eval()
    if source.online:
        if users:
            raise ConfigError("--user needs an agent trained on logged data (--data)")
        return _recommend_in_env(agent, source, k, n_sample)
    ds = load_kuairand(source.data_dir, cache_dir=source.cache_dir)
    transitions = build_transitions(ds)
    ids = np.asarray(users, dtype=np.int64) if users else sample_users(transitions, n_sample)
    known = np.isin(ids, transitions.user_id)
    if not known.all():
        raise ConfigError(f"--user {int(ids[~known][0])} has no interaction in {ds.root}")
    history_len = getattr(agent.config.encoder, "history_len", 10)
    return top_k(agent, user_states(ds, transitions, ids, history_len), k)


def _recommend_in_env(agent: Agent, source: RunSource, k: int, n: int) -> Recommendations:
    """Top-``k`` for the first users of a freshly reset environment (seed 0)."""
    envs = make_envs(dataclasses.replace(source, num_envs=n))
    obs, info = envs.reset(seed=0)
    with torch.inference_mode():
        scores = agent.scores(torch.as_tensor(obs, dtype=torch.float32))
        best = torch.topk(scores, min(k, scores.shape[1]), dim=1)
    actions = best.indices.numpy().astype(np.int64)
    video_ids = agent.spec.video_ids[actions] if agent.spec.video_ids is not None else actions
    user_ids = np.asarray(info.get("user_id", np.arange(n)), dtype=np.int64)
    return Recommendations(user_ids, actions, video_ids, best.values.numpy().astype(np.float32))
