"""Torch intra-op threads for small networks (the on-policy agents' rollouts and updates).

A PPO minibatch of 64 rows through [64, 64] networks is a few hundred small operations of a
few microseconds each. With two threads every operation above PyTorch's grain size forks and
joins the second thread, which costs more than it saves: on the reference machine (2 cores) our
PPO on the benchmark's toy task runs 2,700 environment steps per second with two threads and
4,000 with one. :func:`auto_threads` picks one thread when the largest product of an update is
below the size at which a second core pays off (:data:`~noetik.agents.fast.linear.MIN_MACS`), and
:func:`intra_op_threads` applies a choice for the duration of a block and then restores torch's
setting, so nothing outside the agent's own calls changes.

Networks that step through a sequence one position at a time (the GRU models of choice: 100
trials are 100 products of a few subjects' rows by a 32 x 96 matrix) gain nothing from a
second thread and lose much: training the GRU of choice for 2,000 updates on hBayesDM's
two-armed bandit took 205 s with two threads and under half of that with one.
:func:`sequence_threads` is that policy: one thread for a recurrent network on the CPU, else
:func:`auto_threads`.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Concatenate, ParamSpec, TypeVar

import torch
from torch import nn

from noetik.agents.fast.linear import MIN_MACS

__all__ = [
    "auto_threads",
    "intra_op_threads",
    "largest_product",
    "sequence_threads",
    "with_intra_op_threads",
]

S = TypeVar("S")
P = ParamSpec("P")
R = TypeVar("R")


def largest_product(module: nn.Module, rows: int) -> int:
    """Multiply-adds of ``module``'s largest matrix product on ``rows`` input rows: ``rows x
    in x out`` of its largest 2-D parameter (0 for a module without one)."""
    sizes = [p.numel() for p in module.parameters() if p.dim() == 2]
    return rows * max(sizes, default=0)


def auto_threads(module: nn.Module, rows: int, device: torch.device) -> int:
    """1 for CPU networks whose products are all too small to gain from more threads (see the
    module docstring), else 0 (keep torch's setting)."""
    if device.type != "cpu":
        return 0
    return 1 if largest_product(module, rows) < MIN_MACS else 0


def sequence_threads(module: nn.Module, rows: int, device: torch.device, *, recurrent: bool) -> int:
    """Intra-op threads for a sequence network: 1 for a ``recurrent`` network on the CPU
    (its step-by-step products are all small, however many steps there are), else
    :func:`auto_threads` on ``rows`` rows (0: keep torch's setting)."""
    if recurrent and device.type == "cpu":
        return 1
    return auto_threads(module, rows, device)


@contextlib.contextmanager
def intra_op_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (``n <= 0``: unchanged), then restore
    the previous count."""
    before = torch.get_num_threads()
    if n <= 0 or n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def with_intra_op_threads(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """Decorate a method of an object with an ``intra_op_threads`` attribute (an int, as for
    :func:`intra_op_threads`) to run under that thread count."""

    def wrapped(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with intra_op_threads(self.intra_op_threads):  # type: ignore[attr-defined]
            return method(self, *args, **kwargs)

    functools.update_wrapper(wrapped, method)
    return wrapped
