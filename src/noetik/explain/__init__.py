"""Interpretability: attributions (one verb, :func:`attribute`, defined in
:mod:`~noetik.explain.attributions`), attention over the history
(:mod:`~noetik.explain.attention`) and their faithfulness (:mod:`~noetik.explain.faithfulness`).

>>> import noetik.explain
>>> a = noetik.explain.attribute(agent, obs, history, method="integrated_gradients", target="q")
"""

from __future__ import annotations

import sys

from noetik.explain import attributions
from noetik.explain.attributions import METHODS, Attribution, attribute

# The module was ``noetik.explain.attribute`` before ``attribute`` became the function; the old
# dotted path still imports (``from noetik.explain.attribute import METHODS``) until its last
# caller (``noetik/cli/explain.py``) reads ``noetik.explain.attributions``.
sys.modules.setdefault(f"{__name__}.attribute", attributions)

__all__ = ["METHODS", "Attribution", "attribute"]
