"""The detector in torch (the only part of `core` that imports torch): face model, backbones, heads, create_model."""
