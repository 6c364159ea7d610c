"""Networks shared by the agents: state/history encoders and item-scoring heads."""
