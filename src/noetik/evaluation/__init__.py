"""Stage 4, evaluation: simulator rollouts, off-policy evaluation, random-exposure evaluation."""

from noetik.evaluation import oracle  # noqa: F401  (registers the simulator's oracle, ``greedy``)
