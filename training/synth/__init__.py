"""Synthetic data engine: scene sampling, appearance (albedo textures), accessories, backgrounds, noise fields,
rendering, camera effects, annotation styles, sequences, CLI."""
