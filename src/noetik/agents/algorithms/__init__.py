"""One readable file per algorithm; each registers its config in ``ALGOS``."""
