"""A small gated recurrent network over a subject's trials (Cho et al., 2014).

::

    rows (B, T + 1, F) -> GRU (n_layers x hidden) -> features (B, T + 1, hidden) -> heads

The recurrent state after row ``t`` has read trials ``0 .. t - 1`` and predicts trial ``t``;
it starts at zero for every subject.
"""

from __future__ import annotations

from torch import Tensor, nn

from noetik.agents.choice_nets.base import ChoiceNet
from noetik.agents.choice_nets.config import NeuralChoiceConfig
from noetik.agents.choice_nets.inputs import n_features
from noetik.data.choices import TaskDesign

__all__ = ["ChoiceGRU"]


class ChoiceGRU(ChoiceNet):
    """GRU features + per-level heads (:class:`~noetik.agents.choice_nets.base.ChoiceNet`)."""

    def __init__(self, design: TaskDesign, config: NeuralChoiceConfig) -> None:
        super().__init__(design, config.hidden)
        self.gru = nn.GRU(
            n_features(design),
            config.hidden,
            num_layers=config.n_layers,
            batch_first=True,
            dropout=config.dropout if config.n_layers > 1 else 0.0,
        )

    def features(self, rows: Tensor) -> Tensor:
        out: Tensor = self.gru(rows)[0]
        return out
