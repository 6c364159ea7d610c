"""``noetik/IowaGambling-v0``: the Iowa Gambling Task with its standard payoff scheme
(Bechara, Damasio, Damasio & Anderson, 1994).

Four decks, A-D (options 0-3). Every card of A and B pays +100, of C and D +50. Within each
run of 10 cards drawn from a deck, the deck also takes these losses (the other cards take none):

====  =====  ============================  ======================
deck  gain   losses per 10 cards           net per 10 cards
====  =====  ============================  ======================
A     +100   150, 200, 250, 300, 350        -250
B     +100   1250                           -250
C     +50    25, 50, 50, 50, 75             +250
D     +50    250                            +250
====  =====  ============================  ======================

With ``shuffle`` (default) the losses fall at random places within each block of 10 cards of a
deck, drawn per run; without it at Bechara's first-block places (cards 3, 5, 7, 9, 10 of A and
C, card 9 of B, card 10 of D) in every block. Outcomes: ``gain`` (>= 0) and ``loss`` (<= 0),
in the units of the hBayesDM data (whose models divide them by 100, the design's
``outcome_scale``). Decks never run out.

>>> import gymnasium as gym, noetik
>>> env = gym.make("noetik/IowaGambling-v0", n_trials=100)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from noetik.data.choices import FloatArray, IntArray, TaskDesign
from noetik.envs.decision.base import DecisionEnv, check_count
from noetik.simulators.core import make_config

ENV_ID = "noetik/IowaGambling-v0"

#: Gain of every card of each deck.
GAINS = (100.0, 100.0, 50.0, 50.0)

#: Loss of each of the 10 cards of a block, per deck, in Bechara's first-block order.
LOSS_BLOCKS = (
    (0, 0, 150, 0, 300, 0, 200, 0, 250, 350),
    (0, 0, 0, 0, 0, 0, 0, 0, 1250, 0),
    (0, 0, 50, 0, 50, 0, 50, 0, 25, 75),
    (0, 0, 0, 0, 0, 0, 0, 0, 0, 250),
)


@dataclass(frozen=True)
class IGTConfig:
    """Options of ``noetik/IowaGambling-v0``."""

    n_trials: int = 100
    """Cards drawn in a run."""
    shuffle: bool = True
    """Place each deck's losses at random within every block of 10 cards (else fixed)."""

    def __post_init__(self) -> None:
        check_count("n_trials", self.n_trials)


class IowaGamblingEnv(DecisionEnv):
    """``gymnasium.make("noetik/IowaGambling-v0", **IGTConfig fields)``."""

    option_value_names = ("net_A", "net_B", "net_C", "net_D")

    def __init__(self, render_mode: str | None = None, **options: Any) -> None:
        self.config = config = make_config(IGTConfig, options, ENV_ID)
        design = TaskDesign("igt", (4,), (1,), ("gain", "loss"), outcome_scale=100.0)
        bounds = ((0.0, max(GAINS)), (-float(np.max(LOSS_BLOCKS)), 0.0))
        super().__init__(design, config.n_trials, bounds, render_mode)
        self._losses = np.zeros((4, config.n_trials))
        self._drawn = np.zeros(4, dtype=np.int64)

    def _begin(self, rng: np.random.Generator) -> None:
        blocks = -(-self.config.n_trials // 10)
        order = np.tile(np.asarray(LOSS_BLOCKS, dtype=np.float64), (1, blocks))
        if self.config.shuffle:
            order = rng.permuted(order.reshape(4, blocks, 10), axis=2).reshape(4, -1)
        self._losses = -order
        self._drawn = np.zeros(4, dtype=np.int64)

    def _outcomes(self, choices: IntArray, rng: np.random.Generator) -> FloatArray:
        deck = int(choices[0])
        loss = self._losses[deck, self._drawn[deck]]
        self._drawn[deck] += 1
        return np.array([GAINS[deck], loss + 0.0])

    def _option_values(self) -> FloatArray:
        """Expected net outcome of a card of each deck (-25, -25, +25, +25)."""
        out: FloatArray = np.asarray(GAINS) - np.asarray(LOSS_BLOCKS, dtype=np.float64).mean(1)
        return out
