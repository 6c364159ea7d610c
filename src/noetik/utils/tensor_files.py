"""Tensors on disk as safetensors (never pickle): atomic writes, one-line errors on bad files."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from noetik.errors import ConfigError
from noetik.utils.io import atomic_path

__all__ = ["load_tensors", "save_tensors"]


def save_tensors(path: Path, tensors: Mapping[str, Tensor]) -> None:
    """Write ``tensors`` atomically as safetensors (copied to CPU, contiguous, unshared)."""
    flat = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(flat, str(tmp))


def load_tensors(path: Path, device: str | torch.device = "cpu") -> dict[str, Tensor]:
    """The tensors of safetensors file ``path`` on ``device``; a missing, truncated or damaged
    file raises a one-line :class:`~noetik.errors.ConfigError` naming it."""
    if not Path(path).is_file():
        raise ConfigError(f"{path}: missing (the folder is incomplete)")
    try:
        return load_file(str(path), device=str(device))
    except Exception as exc:  # safetensors raises its own error types (and OSError, ValueError)
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{path}: damaged or truncated safetensors file ({detail})") from None
