"""How the accessory generators read their caller's choices: a named option, forced or drawn by weight
(`pick`), and the skin colour, given as RGB or as an appearance object (`as_skin_rgb`)."""
from __future__ import annotations

import numpy as np


def pick(rng: np.random.Generator, forced: str | None, options: tuple[str, ...], weights, what: str) -> str:
    if forced is not None:
        if forced not in options:
            raise ValueError(f"unknown {what} {forced!r}; known: {options}")
        return forced
    return options[rng.choice(len(options), p=weights)]


def as_skin_rgb(skin) -> tuple[float, float, float]:
    """Accept None (a mid tone), an RGB triple or array (0..1 or 0..255), or an object with an albedo attribute
    (skin_rgb as in `appearance.SkinParams`, albedo, albedo_rgb, base_color, color, rgb)."""
    if skin is None:
        return (0.6, 0.42, 0.33)
    for attr in ("skin_rgb", "albedo", "albedo_rgb", "base_color", "color", "rgb"):
        if hasattr(skin, attr):
            skin = getattr(skin, attr)
            break
    try:
        rgb = np.asarray(skin, float).reshape(-1)[:3]
    except (TypeError, ValueError) as exc:
        raise TypeError(f"skin must be an RGB triple or have an albedo-like attribute, got {type(skin).__name__}"
                        ) from exc
    if rgb.shape != (3,):
        raise TypeError(f"skin must give 3 colour channels, got {rgb.shape}")
    if rgb.max() > 1.5:
        rgb = rgb / 255.0
    return tuple(float(c) for c in np.clip(rgb, 0, 1))
