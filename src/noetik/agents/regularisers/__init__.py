"""Interpretability regularisers added to the agents' training objectives."""
