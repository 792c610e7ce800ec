"""Small torch detectors for the tests of the model, its export, the runtime, predict and the evaluator: one reduced
configuration (`SMALL`) that builds in a moment, with or without small random weights in the output layers that
start at zero (without them an untrained model's outputs hardly depend on the image)."""
from __future__ import annotations

import dataclasses

import torch

from core.model import MODEL_VARIANTS, create_model

SMALL = {"crop_size": 64, "stn_input": 32, "hidden": 64}


def randomise(module: torch.nn.Module, std: float = 0.05) -> None:
    """Give the zero-initialised output layers some weights, so outputs are not at their initial values."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            if p.abs().sum() == 0:
                p.copy_(torch.randn(p.shape, generator=g) * std)


def small_model(variant: str = "full", **overrides) -> torch.nn.Module:
    """A reduced `variant` detector, seeded, in training mode as `create_model` returns it."""
    torch.manual_seed(0)
    return create_model(dataclasses.replace(MODEL_VARIANTS[variant], **{**SMALL, **overrides}))


def small_untrained(variant: str = "full") -> torch.nn.Module:
    """A reduced untrained model whose zero-initialised output layers get small random weights, so that its
    outputs depend on the image (otherwise parity and resize tests would compare constants); in eval mode."""
    model = small_model(variant)
    randomise(model)
    return model.eval()
