"""The two-step task's signature analysis (Daw et al., 2011): first-stage stay probability by
the previous trial's reward and transition.

A transition is *common* when the first-stage option led to its usual second-stage state
(option 0 -> state A, option 1 -> state B) and *rare* otherwise. A model-free learner repeats
rewarded first-stage choices whatever the transition (a main effect of reward); a model-based
learner repeats after a reward on a common transition but switches after a reward on a rare
one (a reward x transition interaction). Per subject, with rewarded = net outcome > 0:

* ``stay[reward, transition]`` for the four cells;
* ``model_free`` = (stay after reward - stay after no reward), averaged over transitions;
* ``model_based`` = the interaction: (common rewarded - common unrewarded) -
  (rare rewarded - rare unrewarded), halved (so both indices are on the same scale).

Each is a mean over subjects with its 95 % interval. Tasks other than a two-step design
(two levels, 2 first-stage options, 2 second-stage states) have no such analysis.

>>> from noetik.analysis.choices import two_step_stays
>>> result = two_step_stays(episodes, config)
>>> result.model_based.format()
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from noetik.analysis.choices.config import ChoiceAnalysisConfig
from noetik.analysis.choices.rates import estimate_dicts, over_subjects, subject_rate
from noetik.data.choices import ChoiceEpisodes, FloatArray, TaskDesign
from noetik.errors import ConfigError
from noetik.utils.bootstrap import Estimate

__all__ = ["TWO_STEP_CELLS", "TwoStepStays", "is_two_step", "two_step_stays"]

#: The four cells, ``(rewarded, common)``, by name.
TWO_STEP_CELLS: dict[str, tuple[bool, bool]] = {
    "rewarded_common": (True, True),
    "rewarded_rare": (True, False),
    "unrewarded_common": (False, True),
    "unrewarded_rare": (False, False),
}


def is_two_step(design: TaskDesign) -> bool:
    """Whether ``design`` has the two-step shape (two levels, 2 options, 2 states)."""
    return design.n_levels == 2 and design.n_options[0] == 2 and design.states[1] == 2


@dataclass(frozen=True, eq=False)
class TwoStepStays:
    """First-stage stay probabilities by previous reward and transition."""

    stay: dict[str, Estimate]
    """``{cell: P(stay)}`` for :data:`TWO_STEP_CELLS`."""
    model_free: Estimate
    """Main effect of reward on stay."""
    model_based: Estimate
    """Reward x transition interaction on stay (halved)."""
    common_share: float
    """Share of trials whose transition was common (about 0.7 by design)."""

    def as_dict(self) -> dict[str, object]:
        """JSON form: estimates as ``{"mean", "low", "high"}``."""
        return {
            "stay": estimate_dicts(self.stay),
            "model_free": self.model_free.as_dict(),
            "model_based": self.model_based.as_dict(),
            "common_share": self.common_share,
        }


def two_step_stays(episodes: ChoiceEpisodes, config: ChoiceAnalysisConfig) -> TwoStepStays:
    """The two-step analysis of ``episodes`` (a ConfigError for another task shape)."""
    design = episodes.design
    if not is_two_step(design):
        raise ConfigError(f"task '{design.task}' does not have the two-step shape")
    mask = episodes.mask
    first = episodes.choices[:, :, 0]
    state = episodes.choices[:, :, 1] // design.options_per_state(1)
    common = (first == state) & mask
    rewarded = (episodes.reward > 0) & mask
    pair = np.zeros_like(mask)
    pair[:, 1:] = mask[:, 1:] & mask[:, :-1]
    stay = np.zeros_like(mask)
    stay[:, 1:] = first[:, 1:] == first[:, :-1]
    prev_common, prev_rewarded = np.zeros_like(mask), np.zeros_like(mask)
    prev_common[:, 1:], prev_rewarded[:, 1:] = common[:, :-1], rewarded[:, :-1]
    columns: dict[str, FloatArray] = {}
    for name, (r, c) in TWO_STEP_CELLS.items():
        cell = pair & (prev_rewarded == r) & (prev_common == c)
        columns[name] = subject_rate(stay, cell)
    rc, rr = columns["rewarded_common"], columns["rewarded_rare"]
    uc, ur = columns["unrewarded_common"], columns["unrewarded_rare"]
    columns["model_free"] = ((rc + rr) - (uc + ur)) / 2.0
    columns["model_based"] = ((rc - uc) - (rr - ur)) / 2.0
    est = over_subjects(columns, config)
    return TwoStepStays(
        stay={name: est[name] for name in TWO_STEP_CELLS},
        model_free=est["model_free"],
        model_based=est["model_based"],
        common_share=float(common.sum() / max(mask.sum(), 1)),
    )
