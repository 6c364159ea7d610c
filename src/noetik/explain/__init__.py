"""Interpretability: attributions (one verb, :func:`attribute`, defined in
:mod:`~noetik.explain.attributions`), attention over the history
(:mod:`~noetik.explain.attention`) and their faithfulness (:mod:`~noetik.explain.faithfulness`).

>>> import noetik.explain
>>> a = noetik.explain.attribute(agent, obs, history, method="integrated_gradients", target="q")
"""

from __future__ import annotations

from noetik.explain.attributions import METHODS, Attribution, attribute

__all__ = ["METHODS", "Attribution", "attribute"]
