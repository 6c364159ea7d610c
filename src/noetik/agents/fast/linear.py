"""Linear layers whose CPU products run through oneDNN where that is faster than PyTorch's
default.

On CPU, PyTorch sends float32 ``F.linear``/``addmm`` to MKL, which on AMD processors does not
use AVX-512; oneDNN (also inside every PyTorch CPU build) does (``ONEDNN_VERBOSE=1`` reports
``brg_matmul:avx512_core``). Measured on the AMD EPYC (Zen 5) of the reference machine, two
threads, (256 x 256) @ (256 x 1,000): MKL 0.70 ms (184 GFLOPS, about the AVX2 peak of two
cores), oneDNN 0.33 ms (399 GFLOPS).

:func:`linear` is ``F.linear`` with the three products of a training step (forward, input
gradient, weight gradient) done by oneDNN's ``mkldnn::_linear_pointwise`` (the fp32 kernel
PyTorch's Inductor uses on CPU) when all of these hold, else plain ``F.linear``:

* the backend is ``"onednn"`` (:func:`set_cpu_matmul`; default from the environment variable
  ``NOETIK_CPU_MATMUL``, ``"onednn"`` when unset) and PyTorch was built with oneDNN;
* the tensors are float32 on the CPU, outside autocast (bf16 autocast keeps its own path),
  outside ``torch.func`` transforms (vmap) and ``torch.compile``;
* the product has at least :data:`MIN_MACS` multiply-adds. Below that the fixed costs lose
  (about 12 us per oneDNN call, and the Python autograd node). Training step (forward and
  both gradients), MKL vs oneDNN, two threads: 64 x 128 -> 64 50 vs 87 us, 64 x 64 -> 1,000
  181 vs 182 us, 256 x 128 -> 256 382 vs 370 us, 256 x 256 -> 1,000 2.25 vs 1.13 ms. On one
  thread oneDNN wins alone from about 2^21 (256 x 128 -> 64), but inside PPO's update on one
  thread its 64 x 64 -> 1,000 head made a minibatch 6 % slower, so the bound stays.

The arithmetic is IEEE float32 on both paths; sums are ordered differently, so results agree to
float32 rounding (about 1e-6 relative), not bit for bit. A backward pass that builds a graph
(``create_graph=True``, e.g. the interpretability terms' input gradients) computes its products
with differentiable torch ops, so second derivatives work as with ``F.linear``.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from noetik.errors import ConfigError

__all__ = ["MIN_MACS", "CpuMatmul", "get_cpu_matmul", "linear", "set_cpu_matmul", "uses_onednn"]

CpuMatmul = Literal["onednn", "torch"]
MIN_MACS = 1 << 23
"""Smallest product (rows x in x out multiply-adds) sent to oneDNN: 256 x 128 -> 256 and up."""

_BACKENDS: tuple[CpuMatmul, ...] = ("onednn", "torch")


def _check(backend: str, source: str) -> CpuMatmul:
    if backend not in _BACKENDS:
        raise ConfigError(f"{source} must be one of {', '.join(_BACKENDS)}, got {backend!r}")
    return backend


def _onednn_available() -> bool:
    try:
        return torch._C._has_mkldnn and hasattr(torch.ops.mkldnn, "_linear_pointwise")
    except (AttributeError, RuntimeError):  # a build without the op
        return False


_AVAILABLE = _onednn_available()
_SETTING: dict[str, CpuMatmul] = {
    "backend": _check(os.environ.get("NOETIK_CPU_MATMUL", "onednn"), "NOETIK_CPU_MATMUL")
}


def set_cpu_matmul(backend: str) -> None:
    """Route large float32 CPU products through ``"onednn"`` (default) or ``"torch"`` (MKL)."""
    _SETTING["backend"] = _check(backend, "cpu_matmul")


def get_cpu_matmul() -> CpuMatmul:
    """The backend set by :func:`set_cpu_matmul` or ``NOETIK_CPU_MATMUL``."""
    return _SETTING["backend"]


def uses_onednn(x: Tensor, weight: Tensor) -> bool:
    """Whether :func:`linear` sends ``x (..., in) @ weight (out, in).T`` to oneDNN."""
    if x.numel() * weight.shape[0] < MIN_MACS or x.dim() < 2:  # the cheap test first
        return False
    if _SETTING["backend"] != "onednn" or not _AVAILABLE:
        return False
    if x.device.type != "cpu" or x.dtype != torch.float32 or weight.dtype != torch.float32:
        return False
    if torch.is_autocast_enabled("cpu") or torch.compiler.is_compiling():
        return False
    return not torch._C._are_functorch_transforms_active()


def _product(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``x (N, in) @ weight (out, in).T (+ bias (out,))`` by oneDNN; strided views are read
    in place (no transposed copies)."""
    out: Tensor = torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")
    return out


class _OneDNNLinear(torch.autograd.Function):
    """``(x (N, in), weight (out, in), bias (out,) | None) -> (N, out)`` float32."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _product(x, weight, bias)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        grad_x = grad_w = grad_b = None
        if torch.is_grad_enabled():  # create_graph: products autograd can differentiate
            grad_x = grad @ weight if need_x else None
            grad_w = grad.t() @ x if need_w else None
        else:
            grad_x = _product(grad, weight.t(), None) if need_x else None
            grad_w = _product(grad.t(), x.t(), None) if need_w else None
        if ctx.has_bias and need_b:
            grad_b = grad.sum(0)
        return grad_x, grad_w, grad_b


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``F.linear(x, weight, bias)``: ``x`` (..., in), ``weight`` (out, in), ``bias`` (out,);
    returns (..., out). Large float32 CPU products go to oneDNN (see the module docstring)."""
    if not uses_onednn(x, weight):
        return F.linear(x, weight, bias)
    flat = x.reshape(-1, x.shape[-1])
    if torch.is_grad_enabled() and (
        x.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)
    ):
        out: Tensor = _OneDNNLinear.apply(flat, weight, bias)  # type: ignore[no-untyped-call]
    else:
        out = _product(flat, weight, bias)
    return out.reshape(*x.shape[:-1], weight.shape[0])
