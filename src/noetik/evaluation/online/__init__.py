"""The online lens: sessions of an agent in a (simulated) environment."""
