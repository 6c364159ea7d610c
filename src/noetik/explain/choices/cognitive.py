"""What a fitted cognitive model implies at one trial: its latent state (a Rescorla-Wagner
fit's Q-values) and its choice probabilities, to set beside a network's explanation.

>>> from noetik.agents.choice_nets import CognitiveChoiceModel
>>> from noetik.agents.cognitive import RescorlaWagner
>>> rw = CognitiveChoiceModel(RescorlaWagner()).fit(episodes, scope="subjects")
>>> view = cognitive_view(rw, episodes, subject=0, trial=37)
>>> view.state, view.probabilities          # Q before trial 37, P(option) on it
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from noetik.agents.choice_nets import CognitiveChoiceModel
from noetik.agents.cognitive.base import OptionValueModel
from noetik.data.choices import ChoiceEpisodes, FloatArray
from noetik.errors import ConfigError

__all__ = ["CognitiveView", "cognitive_view"]


@dataclass(frozen=True, eq=False)
class CognitiveView:
    """A fitted cognitive model's state and choice probabilities at one trial."""

    model: str
    """Name of the model (``"rw"``, ...)."""
    parameters: MappingProxyType[str, float]
    """The subject's fitted parameters (or the pooled ones), by name."""
    state_name: str
    """What the state is: ``"Q"`` for one learned value per option, else ``"state"``."""
    state: FloatArray
    """(K,) float64 latent state before the trial (for ``"Q"``: one value per option)."""
    probabilities: FloatArray
    """(k,) float64 probabilities of the trial's first-level options."""


def cognitive_view(
    fitted: CognitiveChoiceModel, episodes: ChoiceEpisodes, subject: int, trial: int
) -> CognitiveView:
    """The view of ``fitted`` on ``trial`` (0-based) of subject row ``subject``."""
    if not 0 <= subject < episodes.n_subjects:
        raise ConfigError(f"subject must lie in [0, {episodes.n_subjects}), got {subject}")
    if not 0 <= trial < int(episodes.n_trials[subject]):
        raise ConfigError(f"trial must lie in [0, {int(episodes.n_trials[subject])}), got {trial}")
    trace = fitted.trace(episodes)
    params = fitted.fitted_params
    row = params[subject] if params.ndim == 2 else params
    model = fitted.model
    single = isinstance(model, OptionValueModel) and model.values_per_option == 1
    return CognitiveView(
        model=fitted.name,
        parameters=MappingProxyType(
            {name: float(v) for name, v in zip(model.parameter_names, row, strict=True)}
        ),
        state_name="Q" if single else "state",
        state=trace.states[subject, trial].copy(),
        probabilities=np.exp(trace.log_probs[0][subject, trial]),
    )
