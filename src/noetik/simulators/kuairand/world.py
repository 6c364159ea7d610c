"""What ``noetik/KuaiRand-v0`` reads once from a fitted simulator and its dataset.

:class:`KuaiRandWorld` holds the response model, the state tables, the user population with
its logged histories and the raw log arrays the session statistics are estimated from
(:func:`session_stats`). :func:`load_world` caches worlds per (simulator, dataset, device), so
building many environments on one simulator reads the files once. :func:`default_simulator_dir`
fits (once) and caches the default simulator on the built-in synthetic dataset.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch

from noetik.data.builtin import builtin_dataset_dir
from noetik.data.dataset import KuaiRandDataset, load_kuairand
from noetik.data.features import FeatureConfig
from noetik.data.online_state import LoggedHistory, OnlineStateTables, history_after
from noetik.data.rewards import SIGNALS, RewardConfig, signals_expr
from noetik.data.schema import FileKind
from noetik.data.transitions import ItemVocab, Transitions, episode_links
from noetik.errors import ConfigError
from noetik.simulators.kuairand.fit import fit_response_model
from noetik.simulators.kuairand.model import FittedSimulator, ResponseModelConfig
from noetik.simulators.kuairand.store import CONFIG_FILE, load_simulator

#: History window K of the states (``FeatureConfig.history_len`` of the offline features).
HISTORY_LEN = FeatureConfig().history_len
#: The small, fast configuration of the default simulator (a few seconds on 2 cores).
DEFAULT_FIT = ResponseModelConfig(hidden=64, layers=2, epochs=2, fit_uncorrected=False, seed=0)
_DEFAULT_NAME = "kuairand-sim-h64-l2-e2-s0-v1"


def _cache_base() -> Path:
    return Path(os.environ.get("NOETIK_CACHE_DIR") or Path.home() / ".cache" / "noetik")


def default_simulator_dir() -> Path:
    """Run directory of the default simulator, fitted on CPU on first use (deterministic).

    It lives in ``$NOETIK_CACHE_DIR/builtin/`` beside the built-in dataset; the run is written
    to a temporary folder and renamed, so concurrent first uses never see half a run.
    """
    data = builtin_dataset_dir()
    out = _cache_base() / "builtin" / f"{_DEFAULT_NAME}-{data.name}"
    if (out / CONFIG_FILE).is_file():
        return out
    sim = fit_response_model(load_kuairand(data), DEFAULT_FIT, device=torch.device("cpu"))
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        sim.save(tmp)
        os.replace(tmp, out)
    except OSError:
        if not (out / CONFIG_FILE).is_file():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


@dataclass(frozen=True, eq=False)
class LogArrays:
    """One log's rows, sorted by user and time (N rows)."""

    user_id: np.ndarray
    """(N,) int64 user ids."""
    action: np.ndarray
    """(N,) int64 vocabulary indices of the shown videos."""
    time_ms: np.ndarray
    """(N,) int64 Unix milliseconds."""
    tab: np.ndarray
    """(N,) int64 app tab."""
    signals: np.ndarray
    """(N, 12) float32 signals in :data:`SIGNALS` order."""


@dataclass(frozen=True, eq=False)
class KuaiRandWorld:
    """A fitted simulator and everything its environment needs from the dataset."""

    sim: FittedSimulator
    """The response model (on its device)."""
    tables: OnlineStateTables
    """User features, video tags and durations of the state computation."""
    standard: LogArrays
    """The standard log."""
    random: LogArrays | None
    """The random-exposure log, when the dataset has one."""
    population: np.ndarray
    """(U,) int64 sorted ids of the users with a standard-log history."""
    history: LoggedHistory
    """Each population user's whole standard-log past (rows aligned with ``population``)."""
    duration_s: np.ndarray
    """(A,) float64 duration in seconds of every vocabulary item (0 where unknown)."""

    @property
    def vocab(self) -> ItemVocab:
        """Video id <-> item index of the simulator."""
        return self.sim.vocab


def _log_arrays(ds: KuaiRandDataset, kind: FileKind, vocab: ItemVocab) -> LogArrays:
    cols = [pl.col("user_id"), pl.col("video_id"), pl.col("time_ms"), pl.col("tab")]
    frame = ds.interactions(kind).select(*cols, *signals_expr()).collect()
    try:
        action = vocab.encode(frame["video_id"].to_numpy())
    except KeyError as exc:
        raise ConfigError(f"{ds.root}: {exc.args[0]} (the simulator's vocabulary)") from None
    return LogArrays(
        user_id=frame["user_id"].to_numpy().astype(np.int64),
        action=action,
        time_ms=frame["time_ms"].to_numpy().astype(np.int64),
        tab=frame["tab"].fill_null(-1).to_numpy().astype(np.int64),
        signals=frame.select(SIGNALS).to_numpy().astype(np.float32),
    )


def _transitions(log: LogArrays, vocab: ItemVocab) -> Transitions:
    """The log as :class:`Transitions` without states (only what ``history_after`` reads)."""
    n = len(log.action)
    episode = np.cumsum(np.r_[True, log.user_id[1:] != log.user_id[:-1]]) - 1
    done, next_index = episode_links(episode)
    return Transitions(
        obs=np.zeros((n, 0), dtype=np.float16),
        action=log.action,
        reward=np.zeros(n, dtype=np.float32),
        done=done,
        next_index=next_index,
        episode_id=episode,
        step=np.zeros(n, dtype=np.int32),
        user_id=log.user_id.astype(np.int32),
        time_ms=log.time_ms,
        signals=log.signals,
        vocab=vocab,
        reward_config=RewardConfig(),
    )


def build_world(sim: FittedSimulator, ds: KuaiRandDataset) -> KuaiRandWorld:
    """Read the logs and tables of ``ds`` for simulator ``sim``."""
    if not ds.has(FileKind.LOG_STANDARD):
        raise ConfigError(f"{ds.root}: KuaiRand-v0 needs the standard log (users, sessions)")
    standard = _log_arrays(ds, FileKind.LOG_STANDARD, sim.vocab)
    random = (
        _log_arrays(ds, FileKind.LOG_RANDOM, sim.vocab) if ds.has(FileKind.LOG_RANDOM) else None
    )
    tables = OnlineStateTables.from_dataset(ds, sim.vocab)
    population = np.unique(standard.user_id)
    history = history_after(_transitions(standard, sim.vocab), population, HISTORY_LEN)
    log_dur = tables.action_log_duration[:-1]
    known = tables.action_duration_known[:-1]
    duration_s = np.where(known, np.expm1(log_dur), 0.0)
    return KuaiRandWorld(sim, tables, standard, random, population, history, duration_s)


def _mtime(path: Path) -> float:
    return (path / CONFIG_FILE).stat().st_mtime if (path / CONFIG_FILE).is_file() else 0.0


@functools.lru_cache(maxsize=4)
def _cached_world(sim_dir: str, data_dir: str | None, device: str, stamp: float) -> KuaiRandWorld:
    del stamp  # part of the cache key only: a re-fitted run directory is read again
    sim = load_simulator(sim_dir, None if device == "auto" else device)
    sim.model.eval()
    meta_dir = sim.meta.get("data_dir")
    if data_dir is None and not meta_dir:
        raise ConfigError(f"{sim_dir}: the simulator does not name its dataset; set data_dir")
    if data_dir is None:
        cache = sim.meta.get("cache_dir")
        ds = load_kuairand(meta_dir, cache_dir=cache if cache else None)
    else:
        ds = load_kuairand(data_dir)
    return build_world(sim, ds)


def release_worlds() -> None:
    """Forget every cached world (:func:`load_world` builds it again when next asked): at a
    catalogue of millions of videos a world holds gigabytes that the next stage may need."""
    _cached_world.cache_clear()


def load_world(sim_dir: str | None, data_dir: str | None, device: str = "auto") -> KuaiRandWorld:
    """The (cached) world of simulator ``sim_dir`` (None: the default one) on ``data_dir``
    (None: the simulator's own dataset); ``device`` ``"auto"`` uses CUDA when available."""
    path = Path(sim_dir) if sim_dir is not None else default_simulator_dir()
    if not (path / CONFIG_FILE).is_file():
        raise ConfigError(f"sim_dir: {path} is not a simulator run directory (no {CONFIG_FILE})")
    resolved = str(path.resolve())
    data = None if data_dir is None else str(Path(data_dir).resolve())
    return _cached_world(resolved, data, device, _mtime(path))
