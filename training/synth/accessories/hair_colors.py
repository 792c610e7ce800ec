"""Hair colours (a weighted palette at three brightness levels) and the procedural strand textures of the hair
cap, hanging sheets and cards, and beards, cached per process and colour."""
from __future__ import annotations

import functools

import numpy as np
import scipy.ndimage

# Albedo (linear-ish RGB) per hair colour name; a sample scales it by a small brightness jitter.
HAIR_COLORS: dict[str, tuple[float, float, float]] = {
    "black": (0.025, 0.022, 0.02), "dark_brown": (0.07, 0.045, 0.03), "brown": (0.17, 0.1, 0.055),
    "blonde": (0.55, 0.42, 0.24), "red": (0.38, 0.13, 0.05), "grey": (0.36, 0.35, 0.34),
    "white": (0.72, 0.71, 0.68), "dyed_pink": (0.65, 0.2, 0.4), "dyed_blue": (0.1, 0.22, 0.55),
    "dyed_purple": (0.3, 0.12, 0.45),
}
HAIR_COLOR_WEIGHTS = (0.3, 0.25, 0.16, 0.1, 0.05, 0.07, 0.03, 0.013, 0.013, 0.014)
NATURAL_COLORS = ("black", "dark_brown", "brown", "blonde", "red", "grey", "white")
BRIGHTNESS_LEVELS = (0.8, 1.0, 1.25)


def sample_color_key(rng: np.random.Generator, name: str | None) -> tuple[str, int]:
    names = list(HAIR_COLORS)
    if name is None:
        name = names[rng.choice(len(names), p=HAIR_COLOR_WEIGHTS)]
    elif name not in HAIR_COLORS:
        raise ValueError(f"unknown hair colour {name!r}; known: {names}")
    return name, int(rng.integers(len(BRIGHTNESS_LEVELS)))


def nearest_color_key(rgb) -> tuple[str, int]:
    """The natural palette colour and brightness level closest to an RGB albedo (textures stay cached)."""
    rgb = np.asarray(rgb, float)
    keys = [(n, k) for n in NATURAL_COLORS for k in range(len(BRIGHTNESS_LEVELS))]
    return min(keys, key=lambda key: float(np.sum((hair_rgb(key) - rgb) ** 2)))


def hair_rgb(key: tuple[str, int]) -> np.ndarray:
    return np.clip(np.array(HAIR_COLORS[key[0]]) * BRIGHTNESS_LEVELS[key[1]], 0, 1)


@functools.lru_cache(maxsize=128)
def strand_texture(kind: str, key: tuple[str, int]) -> np.ndarray:
    """RGBA strand texture for a hair colour. kind: "cap" (v: 0 at the hairline -> 1 inside; u around the head),
    "card" (v: 1 at the root -> 0 at the tip; u across the card) or "beard" (like "cap", shorter, curlier)."""
    rng = np.random.default_rng(("cap", "card", "sheet", "beard").index(kind))  # one pattern per kind
    if kind in ("card", "sheet"):
        h, w = (256, 128) if kind == "card" else (256, 512)
        clump = np.repeat(rng.random(w // 2), 2)                               # strands two texels wide
        strand_len = 0.7 + 0.3 * np.sqrt(rng.random(w))
        edge = np.minimum(np.arange(w), w - 1 - np.arange(w)) / (w / 2)
        if kind == "card":  # ragged, thinner edges
            strand_len *= np.where(rng.random(w) < 0.8 * (1 - edge) ** 1.5, rng.uniform(0.2, 0.8, w), 1.0)
        v = 1 - (np.arange(h)[:, None] + 0.5) / h                              # 1 at the root (row 0)
        alpha = (1 - v) < strand_len[None, :]
        alpha &= rng.random(w)[None, :] > 0.06                                 # a few gaps between strands
        lum = 0.7 + 0.55 * clump[None, :] + 0.06 * rng.standard_normal((h, w))
        lum = lum * (0.85 + 0.15 * v)                                          # tips a little darker
    else:
        h, w = (256, 512) if kind == "cap" else (128, 256)
        v = 1 - (np.arange(h)[:, None] + 0.5) / h
        tip = rng.uniform(0.1, 0.16 if kind == "cap" else 0.3, w)[None, :]
        alpha = v > tip                                                       # jagged strand tips at the edge
        lum = 0.7 + 0.55 * scipy.ndimage.uniform_filter1d(rng.random(w), 3, mode="wrap")[None, :]
        lum = lum * (1 + 0.08 * rng.standard_normal((h, w)))
        if kind == "beard":
            alpha &= rng.random((h, w)) > 0.12
            lum = lum * (0.8 + 0.4 * rng.random((h, w)))
    rgb = np.clip(hair_rgb(key)[None, None, :] * lum[..., None], 0, 1)
    tex = np.empty((h, w, 4), np.uint8)
    tex[..., :3] = (rgb * 255 + 0.5).astype(np.uint8)
    tex[..., 3] = np.where(np.broadcast_to(alpha, (h, w)), 255, 0)
    tex.flags.writeable = False
    return tex
