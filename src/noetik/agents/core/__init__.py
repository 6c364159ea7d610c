"""Agent core: the contract, the trainer, replay batches, run folders and serving."""
