"""Interpretability: attributions (:mod:`~noetik.explain.attribute`), attention over the
history (:mod:`~noetik.explain.attention`) and their faithfulness
(:mod:`~noetik.explain.faithfulness`)."""
