"""Minibatches of logged transitions as device tensors, sampled without Python loops.

* :class:`Batch` — what ``Agent.update`` receives from an offline source.
* :class:`DeviceReplay` — the whole :class:`Transitions` kept on the device (states as
  float16) and gathered there: sampling a batch is a handful of indexing kernels and no
  host→device copy at all. The default for offline training.
* :class:`HostReplay` — for logs larger than device memory: rows are gathered with numpy and
  moved in one pinned, non-blocking copy per dtype.
  It also samples logs larger than host memory (:class:`DiskTransitions`), reading each
  batch's rows from disk.

Both draw rows with their own ``torch.Generator`` (seeded from the agent seed) whose state is
part of every checkpoint (:meth:`state_tensors`), so a resumed run draws the same batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from noetik.agents.networks.encoders import History
from noetik.data.ondisk import DiskTransitions
from noetik.data.transitions import Transitions

__all__ = ["Batch", "DeviceReplay", "HostReplay", "device_history"]


@dataclass(frozen=True)
class Batch:
    """B logged transitions on one device."""

    rows: Tensor
    """(B,) int64 row indices into the :class:`Transitions`."""
    obs: Tensor
    """(B, 128) float32 states."""
    action: Tensor
    """(B,) int64 actions."""
    reward: Tensor
    """(B,) float32 rewards."""
    next_obs: Tensor
    """(B, 128) float32 next states (equal to ``obs`` where ``done``)."""
    done: Tensor
    """(B,) float32, 1.0 at the last step of an episode (ready for ``gamma * (1 - done)``)."""
    history: History | None = None
    """History before ``obs`` (when the encoder reads it), else None."""
    next_history: History | None = None
    """History before ``next_obs`` (includes this step's interaction), else None."""


class _Source:
    """Common part: a seeded generator whose state is checkpointed."""

    def __init__(self, batch_size: int, seed: int, device: torch.device) -> None:
        self.batch_size = batch_size
        self.device = device
        gen_device = device if device.type == "cuda" else torch.device("cpu")
        self.generator = torch.Generator(device=gen_device)
        self.generator.manual_seed(seed)

    def state_tensors(self) -> dict[str, Tensor]:
        """The sampling RNG state (uint8 tensor) for checkpoints."""
        return {"generator": self.generator.get_state()}

    def load_state_tensors(self, tensors: dict[str, Tensor]) -> None:
        """Restore :meth:`state_tensors`."""
        self.generator.set_state(tensors["generator"].cpu())

    def _rows(self, n: int) -> Tensor:
        return torch.randint(
            0,
            n,
            (self.batch_size,),
            generator=self.generator,
            device=self.generator.device,
            dtype=torch.int64,
        )


def device_history(
    rows: Tensor,
    k: int,
    *,
    action: Tensor,
    user_id: Tensor,
    time_ms: Tensor,
    signals: Tensor,
    n_actions: int,
) -> History:
    """:meth:`Transitions.history` computed on the device from the log's columns as tensors."""
    past = rows[:, None] - k + torch.arange(k, device=rows.device)[None, :]
    safe = past.clamp_min(0)
    mask = (past >= 0) & (user_id[safe] == user_id[rows][:, None])
    items = torch.where(mask, action[safe], n_actions)
    sig = signals[safe] * mask.unsqueeze(-1)
    gap = (time_ms[rows][:, None] - time_ms[safe]).to(torch.float64) / 1000.0
    return History(items, sig, torch.where(mask, gap, 0.0).to(torch.float32), mask)


class DeviceReplay(_Source):
    """All of ``transitions`` resident on ``device``; ``sample()`` gathers a :class:`Batch` there.

    Memory: 2 bytes per state dimension (float16 states) plus ~70 bytes per row with history.
    """

    def __init__(
        self,
        transitions: Transitions,
        batch_size: int,
        *,
        history_len: int = 0,
        seed: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__(batch_size, seed, torch.device(device))
        dev = self.device
        t = transitions
        self.n, self.history_len, self.n_actions = len(t), history_len, t.n_actions
        self.obs = torch.as_tensor(t.obs, device=dev)  # stored dtype (float16 by default)
        self.action = torch.as_tensor(t.action, dtype=torch.int64, device=dev)
        self.reward = torch.as_tensor(t.reward, dtype=torch.float32, device=dev)
        self.done = torch.as_tensor(t.done, device=dev).to(torch.float32)
        self.next_index = torch.as_tensor(t.next_index, dtype=torch.int64, device=dev)
        if history_len:
            self.user_id = torch.as_tensor(t.user_id, dtype=torch.int64, device=dev)
            self.time_ms = torch.as_tensor(t.time_ms, dtype=torch.int64, device=dev)
            self.signals = torch.as_tensor(t.signals, dtype=torch.float32, device=dev)

    def history(self, rows: Tensor) -> History:
        """History before ``rows`` (B,) int64 on the device."""
        return device_history(
            rows,
            self.history_len,
            action=self.action,
            user_id=self.user_id,
            time_ms=self.time_ms,
            signals=self.signals,
            n_actions=self.n_actions,
        )

    def batch(self, rows: Tensor) -> Batch:
        """The :class:`Batch` of given ``rows`` (B,) int64."""
        rows = rows.to(self.device)
        nxt = self.next_index[rows]
        has_history = self.history_len > 0
        return Batch(
            rows=rows,
            obs=self.obs[rows].float(),
            action=self.action[rows],
            reward=self.reward[rows],
            next_obs=self.obs[nxt].float(),
            done=self.done[rows],
            history=self.history(rows) if has_history else None,
            next_history=self.history(nxt) if has_history else None,
        )

    def sample(self) -> Batch:
        """A uniform minibatch (with replacement) of ``batch_size`` rows."""
        return self.batch(self._rows(self.n))


class HostReplay(_Source):
    """Transitions kept in host memory, or on disk (:class:`DiskTransitions`); each batch is
    gathered with numpy and copied to the device once per dtype.

    On disk, a batch first reads the window of each of its rows (the history before it, the
    row and the row after it) from the record files: memory is one batch's windows,
    ``B * (history_len + 2)`` records, whatever the size of the log.
    """

    def __init__(
        self,
        transitions: Transitions | DiskTransitions,
        batch_size: int,
        *,
        history_len: int = 0,
        seed: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__(batch_size, seed, torch.device(device))
        self.generator = torch.Generator()  # rows are drawn on the host
        self.generator.manual_seed(seed)
        self.t, self.history_len = transitions, history_len
        self.pin = self.device.type == "cuda"

    def _to_device(self, arrays: list[np.ndarray], dtype: torch.dtype) -> list[Tensor]:
        """One (pinned, non-blocking) copy for all ``arrays``, split back on the device."""
        flat = [torch.from_numpy(np.ascontiguousarray(a).reshape(-1)) for a in arrays]
        host = torch.cat([f.to(dtype) for f in flat])
        if self.pin:
            host = host.pin_memory()
        dev = host.to(self.device, non_blocking=True)
        parts = torch.split(dev, [f.numel() for f in flat])
        return [p.view(a.shape) for p, a in zip(parts, arrays, strict=True)]

    def batch(self, rows_t: Tensor) -> Batch:
        """The :class:`Batch` of given ``rows`` (B,) int64."""
        rows = rows_t.cpu().numpy()
        if isinstance(self.t, DiskTransitions):
            window, at, nxt = self.t.window(rows, self.history_len)
            return self.gather(window, at, nxt, rows)
        return self.gather(self.t, rows, self.t.next_index[rows], rows)

    def sample(self) -> Batch:
        """A uniform minibatch (with replacement) of ``batch_size`` rows."""
        return self.batch(self._rows(len(self.t)))

    def gather(self, t: Transitions, rows: np.ndarray, nxt: np.ndarray, ids: np.ndarray) -> Batch:
        """The :class:`Batch` of ``rows`` (B,) of ``t`` with next rows ``nxt`` (B,), reported as
        rows ``ids`` (B,) int64."""
        floats = [t.obs[rows], t.reward[rows], t.obs[nxt], t.done[rows]]
        ints = [ids, t.action[rows]]
        k = self.history_len
        if k:
            h, nh = t.history(rows, k), t.history(nxt, k)
            floats += [h[1], h[2], nh[1], nh[2]]
            ints += [h[0], h[3], nh[0], nh[3]]
        f = self._to_device(floats, torch.float32)
        i = self._to_device(ints, torch.int64)
        hist = nhist = None
        if k:
            hist = History(i[2], f[4], f[5], i[3].bool())
            nhist = History(i[4], f[6], f[7], i[5].bool())
        return Batch(i[0], f[0], i[1], f[1], f[2], f[3], hist, nhist)
