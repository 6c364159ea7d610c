"""The contract every model of choice keeps, cognitive or neural, and loading either kind.

Why not the recommender :class:`~noetik.agents.core.base.Agent`? That contract is built around
a :class:`~noetik.agents.core.base.ProblemSpec` of items and a 128-d state, trains on logged
:class:`~noetik.data.transitions.Transitions` or in a vectorised environment, and scores actions
for one state at a time. A model of a person's choices instead reads whole episodes of trials
(:class:`~noetik.data.choices.ChoiceEpisodes`), is scored by the probability it gave each
observed choice, and may hold one parameter set per subject (a cognitive fit) or none (a
network trained across subjects). So models of choice keep this smaller contract, a
:class:`typing.Protocol` that :class:`~noetik.agents.choice_nets.cognitive.CognitiveChoiceModel`
(a thin adapter over the cognitive models' equations and fits) and
:class:`~noetik.agents.choice_nets.model.NeuralChoiceModel` both implement, and that held-out
evaluation (:mod:`noetik.evaluation.choices`) and explanations
(:mod:`noetik.explain.choices`) rely on:

* ``name``; ``fitted_params``: (P,) pooled or (S, P) per-subject parameters (P = 0 for a
  network);
* ``fit(episodes, scope)`` -> a new fitted model (``"pooled"``: one model for everyone;
  ``"subjects"``: per-subject parameters where the model has them);
* ``predict(episodes)`` -> :class:`~noetik.agents.cognitive.ChoicePredictions` (per-trial
  log-likelihood and hits, (S, T));
* ``log_probs(episodes, level)`` -> (S, T, k) per-trial option log-probabilities;
* ``next_log_probs(episodes)`` / ``act(episodes, seed=, greedy=)``: the first choice of the
  trial after each subject's history;
* ``save(folder)``, and :func:`load_choice_model` for either kind.

>>> from noetik.agents.choice_nets import load_choice_model
>>> model = load_choice_model("runs/gru")         # a NeuralChoiceModel or CognitiveChoiceModel
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from noetik.agents.choice_nets.cognitive import CognitiveChoiceModel
from noetik.agents.choice_nets.model import CONFIG_FILE, NeuralChoiceModel
from noetik.agents.cognitive import ChoicePredictions
from noetik.data.choices import ChoiceEpisodes, FloatArray, IntArray
from noetik.errors import ConfigError
from noetik.utils.io import expect_object, read_json

__all__ = ["ChoiceModel", "load_choice_model"]


@runtime_checkable
class ChoiceModel(Protocol):
    """A model of a person's trial-by-trial choices (see the module docstring)."""

    @property
    def name(self) -> str:
        """Short name (``"rw"``, ``"gru"``, ...)."""
        ...

    @property
    def fitted_params(self) -> FloatArray:
        """(P,) pooled or (S, P) per-subject float64 parameters (P = 0 for networks)."""
        ...

    def fit(
        self, episodes: ChoiceEpisodes, scope: Literal["pooled", "subjects"] = "pooled"
    ) -> ChoiceModel:
        """A new model fitted to ``episodes``."""
        ...

    def predict(self, episodes: ChoiceEpisodes) -> ChoicePredictions:
        """(S, T) log-likelihood and hits of every observed trial."""
        ...

    def log_probs(self, episodes: ChoiceEpisodes, level: int = 0) -> FloatArray:
        """(S, T, k) float64 option log-probabilities of choice ``level`` on every trial."""
        ...

    def next_log_probs(self, episodes: ChoiceEpisodes) -> FloatArray:
        """(S, n_options[0]) float64 log-probabilities of the next trial's first choice."""
        ...

    def act(self, episodes: ChoiceEpisodes, *, seed: int = 0, greedy: bool = False) -> IntArray:
        """(S,) int64 next first-level choice of each subject."""
        ...

    def save(self, path: str | Path) -> Path:
        """Write the fitted model to a folder."""
        ...


def load_choice_model(path: str | Path) -> NeuralChoiceModel | CognitiveChoiceModel:
    """The model of choice saved in folder ``path``, of whichever kind."""
    where = Path(path) / CONFIG_FILE
    payload = expect_object(read_json(where, "model of choice"), where, "model of choice")
    kind = payload.get("kind")
    if kind == "neural":
        return NeuralChoiceModel.load(path)
    if kind == "cognitive":
        return CognitiveChoiceModel.load(path)
    raise ConfigError(f"{where}: unknown kind of model of choice {kind!r}")
