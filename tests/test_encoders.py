"""The MLP encoder's fast path computes exactly what its layers compute."""

from __future__ import annotations

import torch


def test_mlp_fast_path_is_the_sequential_network_exactly() -> None:
    from noetik.agents.networks.encoders import MLPEncoder

    torch.manual_seed(0)
    enc = MLPEncoder(7, (16, 8))
    x = torch.randn(5, 7)
    assert enc._linears is not None
    assert torch.equal(enc(x), enc.net(x))  # same arithmetic, bit for bit
    assert sum(1 for _ in enc.parameters()) == 4  # references are not registered twice
    normed = MLPEncoder(7, (16, 8), layer_norm=True)
    assert normed._linears is None and torch.equal(normed(x), normed.net(x))
