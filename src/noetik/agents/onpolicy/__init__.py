"""On-policy machinery: batched rollouts in vector environments and episode logs."""
