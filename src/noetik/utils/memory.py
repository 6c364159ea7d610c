"""Memory you can plan for: estimate a stage's arrays before allocating them, stop if too big.

The kernel's out-of-memory killer ends a process without a word. Stages that allocate large
arrays (transitions, item tables, replay buffers, propensities) call :func:`require` first with
their estimate; when it exceeds what is available (``MemAvailable`` of ``/proc/meminfo``, or
the cgroup limit when lower, minus a safety margin) they stop with one line::

    transitions: needs about 14.1 GB, 9.6 GB available; lower it with --train-rows or a smaller
    states window

``NOETIK_MEMORY_LIMIT_GB`` caps the budget below the machine's (to plan for a smaller machine,
and in tests).
"""

from __future__ import annotations

import os
from pathlib import Path

from noetik.errors import OutOfMemoryPlan

__all__ = ["GB", "available_bytes", "format_bytes", "require"]

GB = 1024**3
#: Share of the available memory a stage may plan to use (the rest is headroom).
SAFETY = 0.9


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _cgroup_available() -> int | None:
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else int(limit) - used


def available_bytes() -> int:
    """Bytes this process can still allocate: the lowest of ``MemAvailable``, the cgroup's
    headroom and ``NOETIK_MEMORY_LIMIT_GB`` (when set); 2**62 when none is known."""
    known = [v for v in (_meminfo_available(), _cgroup_available()) if v is not None]
    cap = os.environ.get("NOETIK_MEMORY_LIMIT_GB")
    if cap:
        known.append(int(float(cap) * GB))
    return min(known) if known else 2**62


def format_bytes(n: float) -> str:
    """``"14.1 GB"`` / ``"350 MB"``."""
    return f"{n / GB:.1f} GB" if n >= GB / 10 else f"{n / 1024**2:.0f} MB"


def require(need: float, stage: str, lower_with: str) -> None:
    """Raise :class:`OutOfMemoryPlan` when ``need`` bytes exceed the plannable memory."""
    budget = available_bytes() * SAFETY
    if need > budget:
        raise OutOfMemoryPlan(
            f"{stage}: needs about {format_bytes(need)}, {format_bytes(budget)} available; "
            f"lower it with {lower_with}"
        )
