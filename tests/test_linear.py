"""`noetik.agents.fast.linear`: oneDNN products agree with F.linear, fall back where they must."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import torch
import torch.nn.functional as F
from torch.func import vmap

from noetik.agents.fast import linear as lin
from noetik.errors import ConfigError

needs_onednn = pytest.mark.skipif(not lin._AVAILABLE, reason="PyTorch built without oneDNN")


@pytest.fixture(autouse=True)
def _onednn_backend() -> Iterator[None]:
    before = lin.get_cpu_matmul()
    lin.set_cpu_matmul("onednn")
    yield
    lin.set_cpu_matmul(before)


def _inputs(n: int, d_in: int, d_out: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d_in, generator=gen, requires_grad=True)
    w = (torch.randn(d_out, d_in, generator=gen) / d_in**0.5).requires_grad_()
    b = torch.randn(d_out, generator=gen, requires_grad=True)
    return x, w, b


@needs_onednn
def test_large_product_goes_to_onednn_and_matches_f_linear() -> None:
    x, w, b = _inputs(256, 256, 1000)
    assert lin.uses_onednn(x, w)
    out = lin.linear(x, w, b)
    ref = F.linear(x, w, b)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(out)
    grads = torch.autograd.grad(out, (x, w, b), g)
    refs = torch.autograd.grad(ref, (x, w, b), g)
    for got, want in zip(grads, refs, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4)


@needs_onednn
def test_batched_leading_dims_and_no_bias() -> None:
    x, w, _ = _inputs(4 * 128, 128, 256)
    x3 = x.detach().view(4, 128, 128).requires_grad_()
    out = lin.linear(x3, w)
    assert out.shape == (4, 128, 256)
    torch.testing.assert_close(out, F.linear(x3, w), rtol=1e-5, atol=1e-5)
    (gx,) = torch.autograd.grad(out.square().sum(), x3)
    (rx,) = torch.autograd.grad(F.linear(x3, w).square().sum(), x3)
    torch.testing.assert_close(gx, rx, rtol=1e-4, atol=1e-4)


@needs_onednn
def test_second_derivative_matches_f_linear() -> None:
    """create_graph backward (the interpretability terms) differentiates like F.linear."""
    x, w, b = _inputs(256, 128, 256, seed=1)

    def penalty(f: Callable[..., torch.Tensor]) -> torch.Tensor:
        out = f(x, w, b)
        (gx,) = torch.autograd.grad(torch.tanh(out).sum(), x, create_graph=True)
        return gx.square().sum()

    got = torch.autograd.grad(penalty(lin.linear), w)[0]
    want = torch.autograd.grad(penalty(F.linear), w)[0]
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_small_products_and_fallbacks_are_exactly_f_linear() -> None:
    x, w, b = _inputs(64, 128, 64)
    assert x.shape[0] * 128 * 64 < lin.MIN_MACS
    assert not lin.uses_onednn(x, w)
    assert torch.equal(lin.linear(x, w, b), F.linear(x, w, b))
    big_x, big_w, big_b = _inputs(256, 256, 1000)
    lin.set_cpu_matmul("torch")
    assert not lin.uses_onednn(big_x, big_w)
    assert torch.equal(lin.linear(big_x, big_w, big_b), F.linear(big_x, big_w, big_b))
    lin.set_cpu_matmul("onednn")
    assert not lin.uses_onednn(big_x.double(), big_w.double())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not lin.uses_onednn(big_x, big_w)
        assert lin.linear(big_x, big_w, big_b).dtype == torch.bfloat16
    inside = vmap(lambda xi: torch.tensor(lin.uses_onednn(xi, big_w)))(big_x[:2, None])
    assert not inside.any()


def test_backend_names_are_checked() -> None:
    with pytest.raises(ConfigError, match="cpu_matmul must be one of onednn, torch"):
        lin.set_cpu_matmul("mkl")


@needs_onednn
def test_training_with_onednn_is_deterministic() -> None:
    """Same seed, same weights: two runs of 20 Adam steps through the oneDNN path."""

    def train() -> torch.Tensor:
        torch.manual_seed(3)
        x = torch.randn(256, 256)
        y = torch.randint(0, 1000, (256,))
        w = torch.nn.Parameter(torch.randn(1000, 256) * 0.05)
        b = torch.nn.Parameter(torch.zeros(1000))
        opt = torch.optim.Adam([w, b], lr=1e-2)
        for _ in range(20):
            loss = F.cross_entropy(lin.linear(x, w, b), y)
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
        return w.detach().clone()

    assert torch.equal(train(), train())
