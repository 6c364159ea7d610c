"""Run folders: train any registered agent on its task, and reload both from any directory.

A run folder holds:

* ``task.json``: the :class:`~noetik.agents.core.task.TaskConfig` (data, reward, episodes,
  split, states, environment), with paths stored absolute and relative to the folder;
* ``run.json``: the algorithm, the steps asked for and done, the seed and the status
  (``running``, ``interrupted``, ``done``), written when training starts;
* the agent (``config.json``, ``spec.json``, ``model.safetensors``), ``metrics.csv`` and
  ``checkpoint/`` (resumable).

:func:`train_run` refuses a folder that already holds a run unless asked to overwrite or resume
it, and holds a lock (``.lock``) while it writes, so two trainings never write one folder. An
interrupt (Ctrl-C) stops after the current update, saves a checkpoint and says how to resume.

Offline agents train on the **training split** of the standard log (the first 80 % by time,
``task.split``), so later evaluation on the test split and on the random-exposure log is honest.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from rich.progress import Progress

from noetik.agents.core import serving
from noetik.agents.core.base import Agent, AgentConfig, ProblemSpec
from noetik.agents.core.recommend import Recommendations, decision_states, sample_users, top_k
from noetik.agents.core.serving import seen_exclusions
from noetik.agents.core.task import (
    TASK_FILE,
    DataSource,
    EnvTask,
    TaskConfig,
    read_task,
    write_task,
)
from noetik.agents.core.trainer import TrainerConfig, TrainResult
from noetik.data.dataset import KuaiRandDataset, load_kuairand
from noetik.data.item_content import ItemContent
from noetik.data.ondisk import DiskTransitions, build_disk_transitions
from noetik.data.store import prepare_store
from noetik.data.transitions import Transitions, build_transitions
from noetik.errors import ConfigError, TrainingInterrupted
from noetik.utils.io import expect_object, read_json, write_json
from noetik.utils.progress import make_progress

RUN_FILE = "run.json"
LOCK_FILE = ".lock"
#: What a run folder may hold (``--overwrite`` removes exactly these).
RUN_ENTRIES = (
    RUN_FILE,
    TASK_FILE,
    "config.json",
    "spec.json",
    "spec.safetensors",
    "model.safetensors",
    "metrics.csv",
    "checkpoint",
    "checkpoint.tmp",
    "checkpoint.old",
    "tensorboard",
    "report.html",  # noetik report's default output: derived from the run, stale once replaced
)


def task_dataset(task: TaskConfig) -> KuaiRandDataset:
    """The dataset of ``task`` (its folder, or the built-in data)."""
    return load_kuairand(task.data.folder, cache_dir=task.data.cache_dir)


def task_transitions(
    task: TaskConfig, split: str | None, ds: KuaiRandDataset | None = None
) -> Transitions:
    """The standard log's transitions under ``task`` (reward, episodes, states, split):
    ``split`` ``"train"``, ``"test"`` or None (every row)."""
    return build_transitions(
        ds or task_dataset(task),
        reward=task.reward,
        episodes=task.episodes,
        features=task.states,
        split=split,  # type: ignore[arg-type]
        split_config=task.split,
    )


def offline_transitions(
    task: TaskConfig, ds: KuaiRandDataset | None = None, progress: Progress | None = None
) -> Transitions | DiskTransitions:
    """The transitions an offline agent of ``task`` learns from (``task.train_rows``): in
    memory, or on disk when the task says so (:meth:`DataSource.uses_disk`), built from the
    dataset's shard store (both are prepared on first use, and reused)."""
    ds = ds or task_dataset(task)
    split = "train" if task.train_rows == "train" else None
    if not task.data.uses_disk(ds.release.value):
        return task_transitions(task, split, ds)
    folder = build_disk_transitions(
        ds,
        prepare_store(ds, progress=progress),
        ds.cache.directory / "transitions",
        reward=task.reward,
        episodes=task.episodes,
        features=task.states,
        split=split,  # type: ignore[arg-type]
        split_config=task.split,
        progress=progress,
    )
    return DiskTransitions.load(folder)


def make_envs(task: TaskConfig, num_envs: int | None = None) -> gym.vector.VectorEnv[Any, Any, Any]:
    """The batched environment of an online ``task`` (``vector_entry_point`` mode)."""
    import noetik.envs  # noqa: F401  (registers the ids)

    if task.env is None:
        raise ConfigError("an offline task has no environment")
    return gym.make_vec(
        task.env.id,
        num_envs=num_envs or task.env.num_envs,
        vectorization_mode="vector_entry_point",
        **task.env_options(),
    )


def _spec_and_data(task: TaskConfig) -> tuple[ProblemSpec, Any]:
    if not task.online:
        ds = task_dataset(task)
        with make_progress() as progress:
            transitions = offline_transitions(task, ds, progress)
        catalogue = ItemContent.from_dataset(ds, transitions.vocab.video_ids)
        return ProblemSpec.from_transitions(transitions, catalogue=catalogue), transitions
    envs = make_envs(task)
    video_ids = getattr(envs, "candidate_video_ids", None)
    spec = ProblemSpec.from_env(envs)
    if video_ids is not None:
        spec = dataclasses.replace(spec, video_ids=np.asarray(video_ids, dtype=np.int64))
    return spec, envs


def finalise_task(task: TaskConfig) -> TaskConfig:
    """``task`` with absolute paths and the detected release recorded (offline runs)."""
    task = task.resolved()
    if not task.online:
        ds = task_dataset(task)
        release = str(getattr(ds.release, "value", ds.release))
        task = dataclasses.replace(task, data=dataclasses.replace(task.data, release=release))
    return task


def train_run(
    config: AgentConfig,
    task: TaskConfig,
    out: Path,
    steps: int,
    *,
    resume: bool = False,
    overwrite: bool = False,
) -> TrainResult:
    """Train ``config``'s agent on ``task`` for ``steps`` updates into run folder ``out``.

    Refuses a folder holding a run unless ``overwrite`` (start afresh) or ``resume`` (go on
    from its checkpoint); raises :class:`~noetik.errors.TrainingInterrupted` after a Ctrl-C,
    once the checkpoint of the last finished update is saved.
    """
    if steps < 1:
        raise ConfigError(f"steps must be >= 1, got {steps}")
    if resume and overwrite:
        raise ConfigError("give --resume or --overwrite, not both")
    out = Path(out).resolve()
    task = finalise_task(task)
    with run_lock(out):
        _prepare_folder(out, config, task, resume=resume, overwrite=overwrite)
        spec, data = _spec_and_data(task)
        agent = config.create(spec)
        trainer = TrainerConfig(
            out_dir=str(out),
            log_every=max(1, steps // 50),
            checkpoint_every=max(1, steps // 4),
            progress=True,
            resume=resume,
        )
        write_task(out, task)
        _write_status(out, config, steps, "running")
        try:
            result = agent.fit(data, steps, trainer=trainer)
        except TrainingInterrupted as stop:
            _write_status(out, config, steps, "interrupted", done=stop.step)
            raise TrainingInterrupted(stop.step, f"{stop} (run folder {out})") from None
        except BaseException as exc:  # a second Ctrl-C, or an error: the folder says so
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            _write_status(out, config, steps, status)
            raise
        agent.save(out)
        _write_status(out, config, steps, "done", done=result.steps)
    return result


def _write_status(
    out: Path, config: AgentConfig, steps: int, status: str, done: int | None = None
) -> None:
    write_json(
        out / RUN_FILE,
        {
            "algo": config.algo,
            "steps": steps,
            "steps_done": done,
            "seed": config.seed,
            "status": status,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "task": TASK_FILE,
        },
    )


def _prepare_folder(
    out: Path, config: AgentConfig, task: TaskConfig, *, resume: bool, overwrite: bool
) -> None:
    """Check what ``out`` holds against the flags; clear it for ``overwrite``."""
    entries = [p for p in out.iterdir() if p.name != LOCK_FILE]
    holds_run = (out / RUN_FILE).is_file() or (out / "checkpoint").exists()
    if resume:
        if not holds_run:
            raise ConfigError(f"--resume: {out} holds no run to continue")
        ckpt = out / "checkpoint"
        if not (ckpt / "trainer.json").is_file() and not (out / "checkpoint.old").is_dir():
            raise ConfigError(
                f"--resume: {out} has no checkpoint yet (stopped before the first one); "
                "start it again with --overwrite"
            )
        meta, saved = read_run(out)
        if meta["algo"] != config.algo:
            raise ConfigError(f"--resume: {out} holds a {meta['algo']} run, not {config.algo}")
        if saved.to_json() != task.to_json():
            raise ConfigError(f"--resume: {out} was trained on another task ({saved.describe()})")
        return
    if not entries:
        return
    if not overwrite:
        what = "a run" if holds_run else "other files"
        raise ConfigError(
            f"--out {out} already holds {what}; give --overwrite to replace it"
            + (" or --resume to continue it" if holds_run else "")
        )
    foreign = [p.name for p in entries if p.name not in RUN_ENTRIES]
    if foreign:
        raise ConfigError(
            f"--overwrite: {out} holds files that are not a run's ({', '.join(sorted(foreign))});"
            " refusing to delete them"
        )
    for path in entries:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


@contextlib.contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Hold ``out/.lock`` (created with ``out``) while writing; a second writer fails at once
    with a message naming the holder's process id."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise ConfigError(
                f"--out {out} is being written by another noetik train (pid {holder})"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        try:
            yield
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def read_run(run_dir: Path) -> tuple[dict[str, Any], TaskConfig]:
    """``run.json`` of ``run_dir`` and its task (``task.json``); one-line errors for a folder
    that is not a run, or a damaged or mistyped file."""
    run_dir = Path(run_dir).resolve()
    path = run_dir / RUN_FILE
    if not path.is_file():
        raise ConfigError(f"{run_dir}: not a run folder (no {RUN_FILE}; run noetik train first)")
    meta = expect_object(read_json(path, "run file"), path, "run file")
    if not isinstance(meta.get("algo"), str):
        raise ConfigError(f"{path}: field 'algo' must be str, got {meta.get('algo')!r}")
    if (run_dir / TASK_FILE).is_file():
        return meta, read_task(run_dir / TASK_FILE, run_dir)
    if isinstance(meta.get("source"), dict):  # a run folder written before task.json
        return meta, _legacy_task(meta["source"], path)
    raise ConfigError(f"{run_dir}: missing {TASK_FILE} (the run folder is incomplete)")


def _legacy_task(source: dict[str, Any], path: Path) -> TaskConfig:
    """The task of a ``run.json`` ``source`` entry of earlier versions (default reward)."""
    env_id = source.get("env_id")
    env = None
    if isinstance(env_id, str):
        env = EnvTask(
            env_id, dict(source.get("env_kwargs") or {}), int(source.get("num_envs", 256))
        )
    folder, cache = source.get("data_dir"), source.get("cache_dir")
    if not all(isinstance(v, str | None) for v in (folder, cache)):
        raise ConfigError(f"{path}: field 'source' is damaged")
    task = TaskConfig(DataSource(folder, cache), env=env)
    return dataclasses.replace(task, train_rows="all") if source.get("split") == "all" else task


def load_run(run_dir: Path) -> tuple[dict[str, Any], TaskConfig, Agent]:
    """``run.json``, the task and the agent (in eval mode) of a finished run folder."""
    meta, task = read_run(run_dir)
    if (
        meta.get("status") not in (None, "done")
        and not (Path(run_dir) / "model.safetensors").is_file()
    ):
        raise ConfigError(
            f"{run_dir}: training is {meta.get('status')} (no final model yet); "
            "finish it with noetik train ... --resume"
        )
    agent = Agent.load(run_dir)
    agent.eval()
    return meta, task, agent


def recommend_for_run(
    run_dir: Path, users: list[int] | None, k: int, n_sample: int = 3
) -> Recommendations:
    """Top-``k`` of the agent in ``run_dir`` for ``users`` (or ``n_sample`` sampled users)."""
    _, task, agent = load_run(run_dir)
    if task.online:
        if users:
            raise ConfigError("--user needs an agent trained on logged data (--data)")
        return _recommend_in_env(agent, task, k, n_sample)
    if users and min(users) < 0:
        raise ConfigError(f"--user must be a non-negative user id, got {min(users)}")
    ds = task_dataset(task)
    transitions = task_transitions(task, None, ds)
    ids = np.asarray(users, dtype=np.int64) if users else sample_users(transitions, n_sample)
    known = np.isin(ids, transitions.user_id)
    if not known.all():
        raise ConfigError(f"--user {int(ids[~known][0])} has no interaction in {ds.root}")
    states = decision_states(agent, ds, transitions, ids, task.states.history_len)
    return top_k(agent, states, k, seen_exclusions(ids, transitions.user_id, transitions.action))


def _recommend_in_env(agent: Agent, task: TaskConfig, k: int, n: int) -> Recommendations:
    """Top-``k`` for the first users of a freshly reset environment (seed 0)."""
    envs = make_envs(task, num_envs=n)
    obs, info = envs.reset(seed=0)
    obs_t = torch.as_tensor(obs, dtype=torch.float32)
    values, best = serving.top_k(agent, obs_t, None, min(k, agent.spec.n_actions))
    actions = best.numpy().astype(np.int64)
    video_ids = agent.spec.video_ids[actions] if agent.spec.video_ids is not None else actions
    user_ids = np.asarray(info.get("user_id", np.arange(n)), dtype=np.int64)
    return Recommendations(user_ids, actions, video_ids, values.numpy().astype(np.float32))
