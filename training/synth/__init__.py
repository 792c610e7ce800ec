"""Synthetic data engine: sampling, appearance, accessories, rendering, annotation styles, sequences, CLI."""
