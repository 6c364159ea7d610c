"""The KuaiRand user response model, learned from the logs and debiased with random exposure.

>>> from noetik.simulators.kuairand import ResponseModelConfig, fit_response_model
>>> sim = fit_response_model(load_kuairand(path), ResponseModelConfig(epochs=4))
>>> sim.save("runs/sim")                          # noetik sim fit PATH --out runs/sim
>>> sim = load_simulator("runs/sim")
>>> sim.predict(obs, item_idx)                    # {"is_click": (B,), ..., "watch_ratio": (B,)}
>>> validate(sim, "heldout_random.csv")           # noetik sim validate runs/sim --log ...

See ``docs/simulator.md`` for the model, the debiasing and the figures.
"""

from __future__ import annotations

from noetik.simulators.kuairand.examples import BINARY_HEADS, HEADS, ItemTable
from noetik.simulators.kuairand.fit import fit_response_model
from noetik.simulators.kuairand.model import FittedSimulator, ResponseModelConfig, ResponseNet
from noetik.simulators.kuairand.store import load_simulator
from noetik.simulators.kuairand.validate import validate

__all__ = [
    "BINARY_HEADS",
    "HEADS",
    "FittedSimulator",
    "ItemTable",
    "ResponseModelConfig",
    "ResponseNet",
    "fit_response_model",
    "load_simulator",
    "validate",
]
