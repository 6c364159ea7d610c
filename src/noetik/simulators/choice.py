"""Slate choice models (RecSim semantics), vectorised over a batch of users.

Each model maps the user's scores of the ``k`` slate items, ``(B, k)``, to choice probabilities
``(B, k + 1)`` whose last column is the *no click* option. Parameters are model defaults that a
user's traits (``(B,)`` arrays with the same name) override, so each user may behave differently.

* :class:`MultinomialLogit` — ``p(i) ∝ exp(score_i)``, no click ``∝ exp(no_click_mass)``
  (``no_click_mass = -inf`` removes the option).
* :class:`Proportional` — ``p(i) ∝ score_i - min_normalizer``, no click
  ``∝ no_click_mass - min_normalizer`` (negative masses are clipped to 0).
* :class:`Cascade` — the user examines the slate in order; position ``i`` is clicked with
  probability ``attention_prob * clip(score_scaling * f(score_i), 0, 1)`` if nothing before it
  was, where ``f`` is ``exp`` (``kind="exponential"``) or ``score - min_normalizer``
  (``kind="proportional"``); no click is what is left.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np

from noetik.errors import ConfigError
from noetik.simulators.core import BoolArray, ChoiceModel, FloatArray

ChoiceName = Literal["mnl", "proportional", "cascade", "proportional_cascade"]
CHOICE_MODELS: tuple[str, ...] = ("mnl", "proportional", "cascade", "proportional_cascade")


def _param(traits: Mapping[str, FloatArray], name: str, default: float) -> FloatArray | float:
    """A per-user parameter as a ``(B, 1)`` column, or the model default."""
    value = traits.get(name)
    return default if value is None else value[:, None]


class MultinomialLogit(ChoiceModel):
    """Multinomial logit over the shown items plus a no-click logit."""

    def __init__(self, no_click_mass: float = float("-inf")) -> None:
        self.no_click_mass = no_click_mass

    def probabilities(
        self, scores: FloatArray, shown: BoolArray, traits: Mapping[str, FloatArray]
    ) -> FloatArray:
        """Softmax of ``[scores, no_click_mass]`` with empty positions at ``-inf``."""
        no_click = np.broadcast_to(
            _param(traits, "no_click_mass", self.no_click_mass), (scores.shape[0], 1)
        )
        logits = np.concatenate([np.where(shown, scores, -np.inf), no_click], axis=1)
        top = logits.max(axis=1, keepdims=True)
        top = np.where(np.isfinite(top), top, 0.0)
        weights = np.exp(logits - top)
        total = weights.sum(axis=1, keepdims=True)
        weights[:, -1:] += total == 0  # nothing choosable: no click for sure
        probs: FloatArray = weights / np.maximum(total, 1e-300)
        return probs


class Proportional(ChoiceModel):
    """Choice proportional to shifted scores, with a no-click mass."""

    def __init__(self, no_click_mass: float = 0.0, min_normalizer: float = -1.0) -> None:
        self.no_click_mass = no_click_mass
        self.min_normalizer = min_normalizer

    def probabilities(
        self, scores: FloatArray, shown: BoolArray, traits: Mapping[str, FloatArray]
    ) -> FloatArray:
        """``max(score - min_normalizer, 0)`` normalised; empty positions get 0."""
        shift = _param(traits, "min_normalizer", self.min_normalizer)
        no_click = np.broadcast_to(
            _param(traits, "no_click_mass", self.no_click_mass), (scores.shape[0], 1)
        )
        mass = np.concatenate([np.where(shown, scores, shift), no_click], axis=1) - shift
        mass = np.maximum(mass, 0.0)
        total = mass.sum(axis=1, keepdims=True)
        mass[:, -1:] += total == 0
        probs: FloatArray = mass / np.maximum(total, 1e-300)
        return probs


class Cascade(ChoiceModel):
    """Position-by-position examination that stops at the first click."""

    def __init__(
        self,
        kind: Literal["exponential", "proportional"] = "exponential",
        attention_prob: float = 1.0,
        score_scaling: float = 0.05,
        min_normalizer: float = -1.0,
    ) -> None:
        if not 0.0 <= attention_prob <= 1.0:
            raise ConfigError(f"attention_prob must be in [0, 1], got {attention_prob!r}")
        if score_scaling < 0:
            raise ConfigError(f"score_scaling must be >= 0, got {score_scaling!r}")
        self.kind = kind
        self.attention_prob = attention_prob
        self.score_scaling = score_scaling
        self.min_normalizer = min_normalizer

    def probabilities(
        self, scores: FloatArray, shown: BoolArray, traits: Mapping[str, FloatArray]
    ) -> FloatArray:
        """``p(i) = prod_{j<i}(1 - q_j) q_i`` with ``q_i = attention * click prob of i``."""
        attention = _param(traits, "attention_prob", self.attention_prob)
        scaling = _param(traits, "score_scaling", self.score_scaling)
        if self.kind == "exponential":
            base = np.exp(scores)
        else:
            base = scores - _param(traits, "min_normalizer", self.min_normalizer)
        q = np.where(shown, attention * np.clip(scaling * base, 0.0, 1.0), 0.0)
        survive = np.cumprod(1.0 - q, axis=1)
        before = np.concatenate([np.ones((q.shape[0], 1)), survive[:, :-1]], axis=1)
        return np.concatenate([before * q, survive[:, -1:]], axis=1)


def make_choice_model(
    name: str,
    *,
    no_click_mass: float = 1.0,
    min_normalizer: float = -1.0,
    attention_prob: float = 0.65,
    score_scaling: float = 0.05,
) -> ChoiceModel:
    """The choice model called ``name`` (one of :data:`CHOICE_MODELS`) with these defaults."""
    if name == "mnl":
        return MultinomialLogit(no_click_mass)
    if name == "proportional":
        return Proportional(no_click_mass, min_normalizer)
    if name == "cascade":
        return Cascade("exponential", attention_prob, score_scaling, min_normalizer)
    if name == "proportional_cascade":
        return Cascade("proportional", attention_prob, score_scaling, min_normalizer)
    raise ConfigError(f"choice_model must be one of {', '.join(CHOICE_MODELS)}, got {name!r}")
