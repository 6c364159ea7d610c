"""Save and load a fitted simulator: safetensors for arrays and weights, JSON for the rest.

A run directory holds::

    simulator.json            format version, config, item feature names, provenance (meta)
    model.safetensors         debiased network weights and buffers
    uncorrected.safetensors   baseline network (absent when not fitted)
    tables.safetensors        vocabulary video ids, item features, popularity counts
    members.safetensors       the ensemble's K networks, keys ``member<k>.<name>`` (absent
                              without an ensemble; ``meta["ensemble"]`` describes it); their
                              item features are the tables' (not stored K more times)

Every file is written atomically; nothing is pickled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from noetik.data.transitions import ItemVocab
from noetik.errors import ConfigError
from noetik.simulators.kuairand.examples import HEADS, ItemTable
from noetik.simulators.kuairand.model import FittedSimulator, ResponseModelConfig, ResponseNet
from noetik.utils.io import write_json
from noetik.utils.tensor_files import load_tensors, save_tensors

FORMAT = "noetik.kuairand-response-model"
VERSION = 1
CONFIG_FILE = "simulator.json"
_WEIGHTS = {"model": "model.safetensors", "uncorrected": "uncorrected.safetensors"}
_TABLES = "tables.safetensors"
MEMBERS_FILE = "members.safetensors"
#: Buffers every member shares with the base model, so not stored with the members.
_SHARED_BUFFERS = frozenset({"item_features"})


def save_simulator(sim: FittedSimulator, run_dir: Path) -> None:
    """Write ``sim`` into ``run_dir`` (created if needed); the JSON config is written last."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_tensors(run_dir / _WEIGHTS["model"], dict(sim.model.state_dict()))
    if sim.uncorrected is not None:
        save_tensors(run_dir / _WEIGHTS["uncorrected"], dict(sim.uncorrected.state_dict()))
    elif (run_dir / _WEIGHTS["uncorrected"]).exists():
        (run_dir / _WEIGHTS["uncorrected"]).unlink()
    save_members(run_dir, sim.members)
    tables = {
        "video_ids": torch.from_numpy(sim.vocab.video_ids.astype(np.int64)),
        "item_features": torch.from_numpy(sim.items.features.astype(np.float32)),
        "popularity": torch.from_numpy(sim.popularity.astype(np.float64)),
    }
    save_tensors(run_dir / _TABLES, tables)
    payload: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "heads": list(HEADS),
        "config": sim.config.to_dict(),
        "item_feature_names": list(sim.items.names),
        "meta": sim.meta,
    }
    write_json(run_dir / CONFIG_FILE, payload)


def save_members(run_dir: Path, members: tuple[ResponseNet, ...]) -> None:
    """Write the ensemble ``members`` to ``run_dir/members.safetensors`` atomically (remove the
    file when there are none); the caller records ``meta["ensemble"]`` in the JSON config."""
    path = Path(run_dir) / MEMBERS_FILE
    if not members:
        path.unlink(missing_ok=True)
        return
    state = {
        f"member{k}.{name}": value
        for k, net in enumerate(members)
        for name, value in net.state_dict().items()
        if name not in _SHARED_BUFFERS
    }
    save_tensors(path, state)


def _read_config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"{run_dir}: not a simulator run directory (no {CONFIG_FILE})")
    try:
        payload: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: invalid JSON ({exc.msg}, line {exc.lineno})") from None
    if payload.get("format") != FORMAT or payload.get("version") != VERSION:
        raise ConfigError(f"{path}: not a {FORMAT} v{VERSION} file")
    if payload.get("heads") != list(HEADS):
        raise ConfigError(f"{path}: heads {payload.get('heads')} differ from {list(HEADS)}")
    return payload


def read_meta(run_dir: Path) -> dict[str, Any]:
    """The provenance (``meta``: dataset, cache, users, losses) of the simulator in ``run_dir``,
    without loading its weights; a clear ``ConfigError`` when it is not a simulator folder."""
    meta: dict[str, Any] = _read_config(Path(run_dir)).get("meta", {})
    return meta


def _load_net(
    path: Path,
    items: ItemTable,
    config: ResponseModelConfig,
    device: torch.device | str,
    state: dict[str, torch.Tensor] | None = None,
) -> ResponseNet:
    state = load_tensors(path, device) if state is None else state
    if "obs_mean" not in state:
        raise ConfigError(f"{path}: weights do not match the config (no obs_mean)")
    dim = int(state["obs_mean"].shape[0])
    net = ResponseNet(items.features, config, np.zeros(dim, np.float32), np.ones(dim, np.float32))
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise ConfigError(f"{path}: weights do not match the config ({exc})") from None
    return net.to(device).eval()


def _load_members(
    run_dir: Path,
    meta: dict[str, Any],
    items: ItemTable,
    config: ResponseModelConfig,
    device: torch.device | str,
) -> tuple[ResponseNet, ...]:
    """The ensemble of ``run_dir`` (``()`` when it has no members file)."""
    path = run_dir / MEMBERS_FILE
    if not path.is_file():
        return ()
    described = meta.get("ensemble", {})
    expected = described.get("config", {}).get("members") if isinstance(described, dict) else None
    state = load_tensors(path, device)
    shared = {"item_features": torch.as_tensor(items.features, dtype=torch.float32)}
    groups: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        head, _, name = key.partition(".")
        if not head.startswith("member") or not head[6:].isdigit() or not name:
            raise ConfigError(f"{path}: unexpected key {key!r} (not member<k>.<name>)")
        groups.setdefault(int(head[6:]), dict(shared))[name] = value
    if sorted(groups) != list(range(len(groups))) or len(groups) != expected:
        raise ConfigError(
            f"{path}: holds members {sorted(groups)}, {CONFIG_FILE} describes {expected} "
            "(rerun `noetik sim ensemble`)"
        )
    return tuple(_load_net(path, items, config, device, groups[k]) for k in range(len(groups)))


def load_simulator(
    run_dir: Path | str, device: torch.device | str | None = None, *, members: bool = True
) -> FittedSimulator:
    """The simulator saved in ``run_dir`` (on ``device``, default CUDA when available), with
    its ensemble members unless ``members`` is False (then its members file is not read).

    Raises ConfigError (a NoetikError) for a missing or malformed run directory.
    """
    run_dir = Path(run_dir)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    payload = _read_config(run_dir)
    config = ResponseModelConfig.from_dict(payload["config"])
    tables = load_tensors(run_dir / _TABLES, "cpu")
    items = ItemTable(
        features=tables["item_features"].numpy(), names=tuple(payload["item_feature_names"])
    )
    model = _load_net(run_dir / _WEIGHTS["model"], items, config, device)
    unc_path = run_dir / _WEIGHTS["uncorrected"]
    uncorrected = _load_net(unc_path, items, config, device) if unc_path.is_file() else None
    meta = dict(payload.get("meta", {}))
    return FittedSimulator(
        config=config,
        vocab=ItemVocab(tables["video_ids"].numpy()),
        items=items,
        model=model,
        uncorrected=uncorrected,
        popularity=tables["popularity"].numpy(),
        meta=meta,
        members=_load_members(run_dir, meta, items, config, device) if members else (),
    )
