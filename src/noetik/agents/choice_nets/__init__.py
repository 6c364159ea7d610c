"""Neural sequence models of human choice, and the contract shared with cognitive models.

* :class:`NeuralChoiceModel` (:mod:`~noetik.agents.choice_nets.model`): a small GRU
  (:class:`ChoiceGRU`) or a causal history Transformer (:class:`ChoiceTransformer`) trained
  across subjects to predict each next choice from earlier choices and outcomes, configured by
  :class:`NeuralChoiceConfig`; inputs encoded by :func:`encode_inputs`.
* :class:`ChoiceModel` (:mod:`~noetik.agents.choice_nets.contract`): fit / predict /
  log-probabilities / act / save, kept by both the networks and
  :class:`CognitiveChoiceModel`, the adapter over the cognitive models; why it is not the
  recommender ``Agent`` contract is told there.

>>> from noetik.agents.choice_nets import NeuralChoiceConfig, NeuralChoiceModel
>>> gru = NeuralChoiceModel(NeuralChoiceConfig(kind="gru")).fit(episodes)
>>> gru.predict(episodes).log_lik           # (S, T), as the cognitive models' predict
"""

from __future__ import annotations

from noetik.agents.choice_nets.base import ChoiceNet, observed_log_probs, state_logits
from noetik.agents.choice_nets.cognitive import CognitiveChoiceModel, CognitiveTrace
from noetik.agents.choice_nets.config import NeuralChoiceConfig
from noetik.agents.choice_nets.contract import ChoiceModel, load_choice_model
from noetik.agents.choice_nets.gru import ChoiceGRU
from noetik.agents.choice_nets.inputs import ChoiceInputs, encode_inputs, input_parts
from noetik.agents.choice_nets.model import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    NeuralChoiceModel,
    TrainLog,
    make_net,
    sample_options,
)
from noetik.agents.choice_nets.transformer import ChoiceTransformer

__all__ = [
    "CONFIG_FILE",
    "WEIGHTS_FILE",
    "ChoiceGRU",
    "ChoiceInputs",
    "ChoiceModel",
    "ChoiceNet",
    "ChoiceTransformer",
    "CognitiveChoiceModel",
    "CognitiveTrace",
    "NeuralChoiceConfig",
    "NeuralChoiceModel",
    "TrainLog",
    "encode_inputs",
    "input_parts",
    "load_choice_model",
    "make_net",
    "observed_log_probs",
    "sample_options",
    "state_logits",
]
