"""Off-policy evaluation: estimators, behaviour models, FQE, validation."""
