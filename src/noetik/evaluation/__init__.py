"""Stage 4, evaluation: simulator rollouts, off-policy evaluation, random-exposure evaluation."""
