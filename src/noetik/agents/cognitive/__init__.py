"""Classic cognitive models of a person's choices, named by their equations, with their
likelihood, maximum-likelihood fits and simulation in the task environments.

==========================  =====================================  =========================
model                       parameters                             tasks
==========================  =====================================  =========================
:class:`RescorlaWagner`     alpha, beta                            one choice per trial
:class:`GainLossRW`         alpha_gain, alpha_loss, beta           one choice per trial
:class:`WinStayLoseShift`   p_stay_win, p_shift_lose               any
:class:`PVLDelta`           A, alpha, c, lambda (Ahn et al. 2008)  one choice per trial (IGT)
:class:`HybridMBMF`         alpha1, alpha2, beta1, beta2,          two-step
                            lambda, w, p (Daw et al. 2011)
==========================  =====================================  =========================

>>> from noetik.agents.cognitive import fit_subjects, models_for, trial_log_likelihood
>>> from noetik.data.choices import read_choices
>>> episodes = read_choices("../shared/data/decision-tasks/igt_exampleData.txt", "igt")
>>> for model in models_for(episodes.design):
...     fits = fit_subjects(model, episodes)
...     print(model.name, fits.aic.sum())
"""

from __future__ import annotations

from noetik.agents.cognitive.base import (
    ChoicePredictions,
    CognitiveModel,
    Learners,
    Parameter,
    log_softmax,
    predict,
    trial_log_likelihood,
)
from noetik.agents.cognitive.fit import (
    FitConfig,
    PooledFit,
    SubjectFits,
    fit_pooled,
    fit_subjects,
)
from noetik.agents.cognitive.gain_loss import GainLossRW
from noetik.agents.cognitive.hybrid import HybridMBMF
from noetik.agents.cognitive.optimise import Minimum, minimise
from noetik.agents.cognitive.pvl_delta import PVLDelta
from noetik.agents.cognitive.rescorla_wagner import RescorlaWagner
from noetik.agents.cognitive.simulate import simulate
from noetik.agents.cognitive.wsls import WinStayLoseShift
from noetik.data.choices import TaskDesign

__all__ = [
    "MODELS",
    "ChoicePredictions",
    "CognitiveModel",
    "FitConfig",
    "GainLossRW",
    "HybridMBMF",
    "Learners",
    "Minimum",
    "PVLDelta",
    "Parameter",
    "PooledFit",
    "RescorlaWagner",
    "SubjectFits",
    "WinStayLoseShift",
    "fit_pooled",
    "fit_subjects",
    "log_softmax",
    "minimise",
    "models_for",
    "predict",
    "simulate",
    "trial_log_likelihood",
]

#: One instance of every model, by name.
MODELS: dict[str, CognitiveModel] = {
    m.name: m
    for m in (RescorlaWagner(), GainLossRW(), WinStayLoseShift(), PVLDelta(), HybridMBMF())
}


def models_for(design: TaskDesign) -> tuple[CognitiveModel, ...]:
    """Every model whose equations apply to tasks of ``design``."""
    return tuple(m for m in MODELS.values() if m.supports(design))
