"""One training loop for every agent: seeding, live metrics, evaluation hooks, checkpoints, resume.

>>> result = Trainer(TrainerConfig(out_dir="runs/iql", log_every=1000)).run(agent, train, 100_000)

A run folder holds ``metrics.csv`` (one row per ``log_every`` updates, mean of each metric
over those updates, plus ``eval/*`` columns from hooks), TensorBoard events when TensorBoard is
installed, and ``checkpoint/``: ``config.json``, ``spec.json``, ``model.safetensors`` (loadable
by :meth:`Agent.load`), ``train_state.safetensors`` (optimizer tensors, torch RNG states, the
sampler's RNG) and ``trainer.json`` (step, numpy/python RNG states, optimizer param groups).
``resume=True`` continues from it; on CPU a killed-and-resumed run ends with the same weights,
bit for bit, as an uninterrupted one (offline sources; online sources restart their episodes).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import random
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import Progress
from torch import Tensor

from noetik.agents.core.base import Agent, BatchSource
from noetik.data.transitions import Transitions
from noetik.errors import ConfigError, TrainingInterrupted
from noetik.utils.io import expect_object, read_json, write_json, write_text
from noetik.utils.progress import make_progress
from noetik.utils.tensor_files import load_tensors, save_tensors

__all__ = ["Hook", "MetricsLog", "TrainResult", "Trainer", "TrainerConfig", "seed_everything"]

#: An evaluation hook: ``hook(agent, step) -> {"name": value}`` (logged as ``eval/name``).
Hook = Callable[[Agent, int], Mapping[str, float]]


@dataclass(frozen=True)
class TrainerConfig:
    """How a run is logged, evaluated and checkpointed."""

    out_dir: str | None = None
    """Run folder (metrics, checkpoint); None writes nothing to disk."""
    log_every: int = 1000
    """Updates between metric rows (metrics are averaged on the device in between)."""
    eval_every: int = 0
    """Updates between evaluation hook calls; 0 never calls them."""
    checkpoint_every: int = 0
    """Updates between checkpoints; 0 checkpoints only at the end (needs ``out_dir``)."""
    progress: bool = True
    """Show a progress bar with live metrics (on a terminal)."""
    resume: bool = False
    """Continue from ``out_dir/checkpoint`` when it exists."""
    deterministic: bool = True
    """``torch.use_deterministic_algorithms(True, warn_only=True)`` for the run."""
    tensorboard: bool = True
    """Also write TensorBoard events when TensorBoard is installed."""

    def __post_init__(self) -> None:
        if min(self.log_every, 1 + self.eval_every, 1 + self.checkpoint_every) < 1:
            raise ConfigError("log_every must be >= 1; eval_every, checkpoint_every >= 0")


@dataclass
class TrainResult:
    """What :meth:`Trainer.run` returns."""

    steps: int
    """Updates done in total (including those before a resume)."""
    metrics: dict[str, float] = field(default_factory=dict)
    """The last metrics row (means since the previous row, and the last eval values)."""
    run_dir: Path | None = None
    """The run folder, when the run wrote one."""


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed python, numpy's global RNG and torch (all devices); deterministic algorithms."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (code that uses the global RNG)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)


class MetricsLog:
    """Rows of metrics, rewritten atomically to ``metrics.csv`` (+ TensorBoard) on flush."""

    FIRST = ("step", "wall_s", "updates_per_s")

    def __init__(self, run_dir: Path | None, tensorboard: bool, resume_step: int) -> None:
        self.path = run_dir / "metrics.csv" if run_dir else None
        self.rows: list[dict[str, float]] = []
        if self.path is not None and resume_step and self.path.is_file():
            with self.path.open() as f:
                for row in csv.DictReader(f):
                    values = {k: float(v) for k, v in row.items() if v not in ("", None)}
                    if values.get("step", 0) <= resume_step:
                        self.rows.append(values)
        self.writer: Any = None
        if run_dir is not None and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(run_dir / "tensorboard"))
            except ImportError:
                self.writer = None

    def add(self, row: dict[str, float]) -> None:
        """Append one row (must contain ``step``)."""
        self.rows.append(row)
        if self.writer is not None:
            for k, v in row.items():
                if k != "step":
                    self.writer.add_scalar(k, v, int(row["step"]))

    def flush(self) -> None:
        """Rewrite ``metrics.csv`` with every row (atomic; union of columns)."""
        if self.path is None:
            return
        names = sorted({k for r in self.rows for k in r} - set(self.FIRST))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=[*self.FIRST, *names], lineterminator="\n")
        writer.writeheader()
        for r in self.rows:
            writer.writerow({k: (int(v) if k == "step" else v) for k, v in r.items()})
        write_text(self.path, buffer.getvalue())
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        """Flush and release TensorBoard."""
        self.flush()
        if self.writer is not None:
            self.writer.close()


class _Meter:
    """Sums metric tensors on the device; one host sync per :meth:`means`."""

    def __init__(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.count = 0
        self.since = time.perf_counter()

    def add(self, metrics: Mapping[str, Tensor]) -> None:
        for k, value in metrics.items():
            v = value.detach().float()
            self.sums[k] = self.sums[k] + v if k in self.sums else v.clone()
        self.count += 1

    def means(self) -> dict[str, float]:
        names = list(self.sums)
        values = torch.stack([self.sums[k] for k in names]).tolist() if names else []
        now = time.perf_counter()
        out = {k: v / max(self.count, 1) for k, v in zip(names, values, strict=True)}
        out["updates_per_s"] = self.count / max(now - self.since, 1e-9)
        self.sums, self.count, self.since = {}, 0, now
        return out


def _cuda_ready() -> bool:
    """Whether CUDA is in use (its RNG states then belong to the run's state)."""
    return torch.cuda.is_available() and bool(torch.cuda.is_initialized())  # type: ignore[no-untyped-call]


def _rng_tensors() -> dict[str, Tensor]:
    out = {"rng.torch": torch.get_rng_state()}
    if _cuda_ready():
        out |= {f"rng.cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())}
    return out


def _numpy_state() -> list[Any]:
    state: Any = np.random.get_state(legacy=True)  # noqa: NPY002
    name, keys, pos, has_gauss, gauss = state
    return [name, keys.tolist(), pos, has_gauss, gauss]


class Trainer:
    """Runs ``agent.update`` on batches of ``agent.make_source(data)`` for a number of steps."""

    def __init__(self, config: TrainerConfig | None = None) -> None:
        self.config = config or TrainerConfig()
        self.run_dir = Path(self.config.out_dir) if self.config.out_dir else None

    @property
    def checkpoint_dir(self) -> Path | None:
        """``<out_dir>/checkpoint`` (None without an ``out_dir``)."""
        return self.run_dir / "checkpoint" if self.run_dir else None

    def run(self, agent: Agent, data: Any, steps: int, hooks: Iterable[Hook] = ()) -> TrainResult:
        """Train until ``steps`` updates in total; resume first when configured. A Ctrl-C
        stops after the current update, saves a checkpoint and raises
        :class:`~noetik.errors.TrainingInterrupted`."""
        cfg, hooks = self.config, list(hooks)
        source = agent.make_source(data)
        seed_everything(agent.config.seed, cfg.deterministic)
        start = self._maybe_resume(agent, source)
        log = MetricsLog(self.run_dir, cfg.tensorboard, start)
        meter, t0, last = _Meter(), time.perf_counter(), dict(log.rows[-1]) if log.rows else {}
        agent.train()
        with self._progress() as bar, _interrupt_flag() as interrupted:
            task = bar.add_task(_unit(agent, data), total=steps, completed=start, metrics="")
            for step in range(start + 1, steps + 1):
                meter.add(agent.update(source.sample()))
                row: dict[str, float] = {}
                if step % cfg.log_every == 0 or step == steps or interrupted:
                    row |= meter.means()
                if cfg.eval_every and step % cfg.eval_every == 0:
                    row |= self._evaluate(agent, step, hooks)
                if row:
                    last = self._log(log, row, step, time.perf_counter() - t0, last)
                    bar.update(task, completed=step, metrics=_describe(row, source))
                elif step % 100 == 0:
                    bar.update(task, completed=step, metrics=_describe({}, source))
                checkpoint = cfg.checkpoint_every and step % cfg.checkpoint_every == 0
                if checkpoint or step == steps or interrupted:
                    self.save_checkpoint(agent, source, step)
                if interrupted and step < steps:
                    log.close()
                    raise TrainingInterrupted(step, self._stopped(step, steps))
        log.close()
        return TrainResult(max(steps, start), last, self.run_dir)

    def _stopped(self, step: int, steps: int) -> str:
        """The message of an interrupt after ``step`` of ``steps`` updates."""
        where = f"interrupted after update {step:,} of {steps:,}"
        if self.checkpoint_dir is None:
            return where + " (no run folder, nothing saved)"
        return f"{where}; checkpoint saved in {self.checkpoint_dir}; continue with --resume"

    def _log(
        self,
        log: MetricsLog,
        row: dict[str, float],
        step: int,
        wall: float,
        last: dict[str, float],
    ) -> dict[str, float]:
        row = {"step": float(step), "wall_s": wall, **row}
        log.add(row)
        log.flush()
        return last | row

    def _progress(self) -> Progress:
        return make_progress(self.config.progress, fields=("metrics",))

    def _evaluate(self, agent: Agent, step: int, hooks: list[Hook]) -> dict[str, float]:
        """Run hooks in eval mode on forked RNGs (evaluation never shifts training draws)."""
        out: dict[str, float] = {}
        if not hooks:
            return out
        cuda = list(range(torch.cuda.device_count())) if _cuda_ready() else []
        agent.eval()
        with torch.random.fork_rng(devices=cuda), torch.no_grad():
            np_state = np.random.get_state()  # noqa: NPY002
            for hook in hooks:
                out |= {f"eval/{k}": float(v) for k, v in hook(agent, step).items()}
            np.random.set_state(np_state)  # noqa: NPY002
        agent.train()
        return out

    def save_checkpoint(self, agent: Agent, source: BatchSource, step: int) -> None:
        """Write ``checkpoint/`` atomically (a new folder swapped in for the old one)."""
        final = self.checkpoint_dir
        if final is None:
            return
        tmp, old = final.with_name("checkpoint.tmp"), final.with_name("checkpoint.old")
        shutil.rmtree(tmp, ignore_errors=True)
        agent.save(tmp)
        state = {k: v for k, v in agent.state_tensors().items() if not k.startswith("model.")}
        state |= _rng_tensors() | {f"source.{k}": v for k, v in source.state_tensors().items()}
        save_tensors(tmp / "train_state.safetensors", state)
        meta = {
            "step": step,
            "optimizers": agent.state_meta(),
            "numpy_rng": _numpy_state(),
            "python_rng": list(random.getstate()),
            "trainer": vars(self.config),
        }
        write_json(tmp / "trainer.json", meta)
        if final.exists():
            shutil.rmtree(old, ignore_errors=True)
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)

    def _maybe_resume(self, agent: Agent, source: BatchSource) -> int:
        """Load the checkpoint into ``agent``/``source`` and the RNGs; the step to go on from."""
        ckpt = self.checkpoint_dir
        if not self.config.resume or ckpt is None:
            return 0
        if not ckpt.is_dir() and ckpt.with_name("checkpoint.old").is_dir():
            ckpt = ckpt.with_name("checkpoint.old")  # killed while swapping folders
        if not (ckpt / "trainer.json").is_file():
            return 0
        _check_same_config(agent, ckpt)
        meta = expect_object(read_json(ckpt / "trainer.json", "checkpoint file"), ckpt)
        device = str(agent.device)
        state = load_tensors(ckpt / "train_state.safetensors", device)
        weights = load_tensors(ckpt / "model.safetensors", device)
        agent.load_state_tensors(
            {f"model.{k}": v for k, v in weights.items()} | state, meta["optimizers"]
        )
        source.load_state_tensors({k[7:]: v for k, v in state.items() if k.startswith("source.")})
        _restore_rngs(state, meta)
        return int(meta["step"])


def _restore_rngs(state: Mapping[str, Tensor], meta: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["rng.torch"].cpu())
    cuda = sorted(k for k in state if k.startswith("rng.cuda."))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([state[k].cpu() for k in cuda])
    name, keys, pos, has_gauss, gauss = meta["numpy_rng"]
    keys_array = np.asarray(keys, dtype=np.uint32)
    np.random.set_state((name, keys_array, pos, has_gauss, gauss))  # noqa: NPY002
    version, internal, gauss_next = meta["python_rng"]
    random.setstate((version, tuple(internal), gauss_next))


def _check_same_config(agent: Agent, ckpt: Path) -> None:
    saved = expect_object(read_json(ckpt / "config.json", "agent config"), ckpt / "config.json")
    now = agent.config.to_dict()
    saved_cfg = {k: v for k, v in saved["config"].items() if k != "device"}
    if saved["algo"] != agent.config.algo or saved_cfg != {
        k: v for k, v in now.items() if k != "device"
    }:
        raise ConfigError(f"cannot resume: {ckpt} was written with a different agent config")


def _describe(row: Mapping[str, float], source: Any = None) -> str:
    """Up to six metrics of ``row``, after the environment steps of an online source."""
    shown = [(k, v) for k, v in row.items() if k not in ("step", "wall_s")][:6]
    text = "  ".join(f"{k}={v:.4g}" for k, v in shown)
    env_steps = getattr(source, "env_steps", None)
    return f"{env_steps:,} env steps  {text}" if isinstance(env_steps, int) else text


def _unit(agent: Agent, data: Any) -> str:
    """The progress label: what one step counts (gradient updates on logged data, rollout
    iterations in an environment)."""
    kind = "updates" if isinstance(data, Transitions) else "rollout iterations"
    return f"{type(agent).__name__} ({kind})"


@contextlib.contextmanager
def _interrupt_flag() -> Iterator[_Flag]:
    """A flag set by the first Ctrl-C (SIGINT) while training; a second one interrupts at
    once. Only in the main thread (elsewhere signals cannot be caught): a no-op flag."""
    flag = _Flag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handle(signum: int, frame: Any) -> None:
        if flag:
            raise KeyboardInterrupt
        flag.set = True
        sys.stderr.write("\nstopping after this update (Ctrl-C again to abort at once)\n")

    previous = signal.signal(signal.SIGINT, handle)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


class _Flag:
    """Truthy once :func:`_interrupt_flag`'s handler ran."""

    set: bool = False

    def __bool__(self) -> bool:
        return self.set
