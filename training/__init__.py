"""Training side (torch allowed): synthetic data engine, dataset readers, losses, trainer, evaluation, export."""
