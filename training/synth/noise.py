"""Noise fields for procedural textures and backgrounds: blurred white noise, fractal value noise, and a fixed
bank of large fields (pores, stubble, spots, hair grain) from which each texture takes a random window."""
from __future__ import annotations

import functools
from typing import Sequence

import cv2
import numpy as np
from scipy import special


def line_kernel(length: int, angle_deg: float) -> np.ndarray:
    """A centred, normalised line kernel (odd size), for directional blur."""
    size = length | 1
    k = np.zeros((size, size), np.float32)
    c = size // 2
    d = np.array([np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))]) * (length / 2)
    cv2.line(k, (int(round(c - d[0])), int(round(c - d[1]))), (int(round(c + d[0])), int(round(c + d[1]))), 1.0, 1,
             cv2.LINE_AA)
    return k / k.sum()


def _gauss_field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Blurred white noise with unit standard deviation."""
    n = cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), sigma)
    return n / n.std()


@functools.lru_cache(maxsize=4)
def noise_bank(size: int) -> dict[str, np.ndarray]:
    """Fixed noise fields twice the texture size; per-sample noise is a random window into them (no copy)."""
    rng = np.random.default_rng(1234)
    n = 2 * size
    s = size / 512
    fine = _gauss_field(rng, (n, n), 0.7 * s) + 0.5 * _gauss_field(rng, (n, n), 2.5 * s)
    return {
        "pores": (fine / fine.std()).astype(np.float32),                                   # unit std
        "stubble": special.ndtr(_unit(cv2.filter2D(_gauss_field(rng, (n, n), max(0.5 * s, 0.4)), -1,
                                                   line_kernel(max(int(4 * s), 3), 100)))).astype(np.float32),
        "spots": special.ndtr(_gauss_field(rng, (n, n), 1.6 * s)).astype(np.float32),      # uniform 0..1
        "hair": special.ndtr(_unit(cv2.filter2D(_gauss_field(rng, (n, n), 0.6 * s), -1,
                                                line_kernel(max(int(7 * s), 3), 80)))).astype(np.float32),
    }


def _unit(x: np.ndarray) -> np.ndarray:
    return x / x.std()


def window(rng: np.random.Generator, field: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    r = int(rng.integers(field.shape[0] - shape[0] + 1))
    c = int(rng.integers(field.shape[1] - shape[1] + 1))
    return field[r:r + shape[0], c:c + shape[1]]


def fractal_noise(rng: np.random.Generator, size: int, cells: Sequence[int] = (3, 6, 12, 24),
                  falloff: float = 0.6) -> np.ndarray:
    """Smooth value noise summed over octaves, roughly unit std, (size, size) float32."""
    out = np.zeros((size, size), np.float32)
    amp, total = 1.0, 0.0
    for c in cells:
        out += amp * cv2.resize(rng.standard_normal((c + 1, c + 1)).astype(np.float32), (size, size),
                                interpolation=cv2.INTER_CUBIC)
        total += amp * amp
        amp *= falloff
    return out / np.sqrt(total)
