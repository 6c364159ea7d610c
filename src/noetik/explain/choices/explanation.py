"""One predicted choice explained: the network's prediction, the earlier trials that drove it
(integrated gradients, and the Transformer's attention), in plain words built from that
trial's numbers, beside what a fitted cognitive model implies there.

>>> from noetik.explain.choices import explain_choice
>>> e = explain_choice(gru, episodes, subject=0, trial=37, cognitive=rw)
>>> print(e.text)
Subject 1, trial 38: the gru model predicts option 2 (p = 0.71); they chose option 2. Most of
it came from trial 37, where option 2 paid +1 (share 42%, for), then ...
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from noetik.agents.choice_nets import ChoiceTransformer, CognitiveChoiceModel, NeuralChoiceModel
from noetik.data.choices import ChoiceEpisodes, FloatArray
from noetik.explain.choices.attention import HistoryAttention, history_attention
from noetik.explain.choices.attributions import HistoryAttribution, attribute_history
from noetik.explain.choices.cognitive import CognitiveView, cognitive_view

__all__ = ["ChoiceExplanation", "describe_trial", "explain_choice"]


@dataclass(frozen=True, eq=False)
class ChoiceExplanation:
    """Everything said about one predicted choice."""

    subject: str
    """Subject id."""
    trial_number: int
    """The trial's number as in the source (1-based)."""
    predicted: int
    """0-based first-level option the network finds most likely."""
    probabilities: FloatArray
    """(k,) float64 the network's probabilities of the first-level options."""
    chosen: int
    """0-based option the subject chose."""
    attribution: HistoryAttribution
    """Integrated gradients of log P(predicted) over the earlier trials."""
    shares: FloatArray
    """(t,) float64 each earlier trial's share of the summed |attribution| (sums to 1)."""
    attention: HistoryAttention | None
    """The Transformer's attention over the earlier trials (None for the GRU)."""
    cognitive: CognitiveView | None
    """What the fitted cognitive model implies on the trial (when one was given)."""
    text: str
    """The plain-word explanation."""
    earlier: tuple[str, ...] = ()
    """Each earlier trial described (:func:`describe_trial`), ``per_trial``'s order."""

    def as_dict(self, top: int = 10) -> dict[str, Any]:
        """JSON form: the prediction (1-based options), the text, every earlier trial's
        attribution and share, the ``top`` earlier trials by share with their descriptions,
        the attention over earlier trials (Transformer) and the cognitive view."""
        per_trial = self.attribution.per_trial
        order = [int(i) for i in np.argsort(-self.shares, kind="stable")[:top]]
        out: dict[str, Any] = {
            "subject": self.subject,
            "trial": self.trial_number,
            "predicted": self.predicted + 1,
            "chosen": self.chosen + 1,
            "probabilities": [float(p) for p in self.probabilities],
            "text": self.text,
            "attribution": {
                "per_trial": [float(v) for v in per_trial],
                "shares": [float(v) for v in self.shares],
                "parts": {k: float(v.sum()) for k, v in self.attribution.parts.items()},
                "log_prob": self.attribution.log_prob,
                "baseline_log_prob": self.attribution.baseline_log_prob,
                "delta": self.attribution.delta,
            },
            "top": [
                {
                    "trial": self.earlier[i] if i < len(self.earlier) else str(i),
                    "attribution": float(per_trial[i]),
                    "share": float(self.shares[i]),
                }
                for i in order
                if self.shares[i] > 0
            ],
            "attention": None
            if self.attention is None
            else [float(v) for v in self.attention.per_trial],
            "cognitive": None,
        }
        if self.cognitive is not None:
            view = self.cognitive
            out["cognitive"] = {
                "model": view.model,
                "parameters": dict(view.parameters),
                "state_name": view.state_name,
                "state": [float(v) for v in view.state],
                "probabilities": [float(v) for v in view.probabilities],
            }
        return out


def _number(x: float) -> str:
    return f"{x:+g}" if float(x).is_integer() else f"{x:+.2f}"


def describe_trial(episodes: ChoiceEpisodes, subject: int, trial: int) -> str:
    """``"trial 37, where option 2 paid +1"``: a trial's number, choices and outcomes."""
    design = episodes.design
    number = int(episodes.trial[subject, trial])
    chosen = " then ".join(
        f"option {int(c) + 1}" for c in episodes.choices[subject, trial, : design.n_levels]
    )
    values = episodes.outcomes[subject, trial]
    if design.outcomes == ("reward",):
        paid = f"paid {_number(values[0])}"
    else:
        paid = f"won {_number(values[0])} and lost {_number(values[1])}"
    return f"trial {number}, where {chosen} {paid}"


def explain_choice(
    model: NeuralChoiceModel,
    episodes: ChoiceEpisodes,
    subject: int,
    trial: int,
    *,
    cognitive: CognitiveChoiceModel | None = None,
    top: int = 3,
    n_steps: int = 64,
) -> ChoiceExplanation:
    """Explain the network's prediction of the first choice of ``trial`` (0-based) of subject
    row ``subject``, naming the ``top`` earlier trials by attribution share; ``cognitive`` (a
    fitted :class:`CognitiveChoiceModel`, e.g. Rescorla-Wagner) adds its view of the trial."""
    probs = np.exp(model.log_probs(episodes.select([subject]))[0, trial])
    attribution = attribute_history(model, episodes, subject, trial, n_steps=n_steps)
    predicted = attribution.option
    chosen = int(episodes.choices[subject, trial, 0])
    magnitude = np.abs(attribution.per_trial)
    total = magnitude.sum()
    shares = magnitude / total if total > 0 else np.zeros_like(magnitude)
    name = episodes.subjects[subject]
    number = int(episodes.trial[subject, trial])
    lines = [
        f"Subject {name}, trial {number}: the {model.name} model predicts option "
        f"{predicted + 1} (p = {probs[predicted]:.2f}); they chose option {chosen + 1}."
    ]
    order = [int(i) for i in np.argsort(-magnitude, kind="stable")[:top] if magnitude[i] > 0]
    if order:
        said = [
            f"{describe_trial(episodes, subject, i)} (share {shares[i]:.0%}, "
            f"{'for' if attribution.per_trial[i] > 0 else 'against'})"
            for i in order
        ]
        lines.append("Most of it came from " + ", then ".join(said) + ".")
        parts = {k: float(np.abs(v).sum()) for k, v in attribution.parts.items()}
        whole = sum(parts.values())
        if whole > 0:
            lines.append(
                f"Outcomes carried {parts['outcome'] / whole:.0%} of it, choices "
                f"{parts['choice'] / whole:.0%}."
            )
    else:
        lines.append("No earlier trial moved the prediction (the first trial).")
    attention = None
    if isinstance(model.net, ChoiceTransformer) and trial > 0:
        attention = history_attention(model, episodes, subject, trial)
        looked = int(np.argmax(attention.per_trial))
        lines.append(
            f"The transformer attended most to trial {int(episodes.trial[subject, looked])} "
            f"(weight {attention.per_trial[looked]:.2f}, last layer, mean over heads)."
        )
    view = None
    if cognitive is not None:
        view = cognitive_view(cognitive, episodes, subject, trial)
        params = ", ".join(f"{k} = {v:.2f}" for k, v in view.parameters.items())
        state = ", ".join(f"{v:.2f}" for v in view.state)
        lines.append(
            f"The fitted {view.model} model ({params}) has {view.state_name} = ({state}) "
            f"before this trial and gives option {predicted + 1} "
            f"p = {view.probabilities[predicted]:.2f}."
        )
    return ChoiceExplanation(
        subject=name,
        trial_number=number,
        predicted=predicted,
        probabilities=probs,
        chosen=chosen,
        attribution=attribution,
        shares=shares,
        attention=attention,
        cognitive=view,
        text=" ".join(lines),
        earlier=tuple(describe_trial(episodes, subject, i) for i in range(trial)),
    )
