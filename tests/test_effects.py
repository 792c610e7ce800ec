"""Tests for the camera effects: deterministic, identity at strength 0, never moving image content."""
from __future__ import annotations

import numpy as np
import pytest

from training.synth import effects


def _square_image() -> np.ndarray:
    img = np.full((256, 256, 3), 30, np.uint8)
    img[100:140, 150:200] = 220
    return img


def _square_centroid(img: np.ndarray) -> np.ndarray:
    """Intensity centroid of the bright square, measured in a window around it above the window's border level."""
    g = img.astype(np.float64).mean(axis=2)[80:160, 130:220]
    border = np.concatenate([g[:5].ravel(), g[-5:].ravel(), g[:, :5].ravel(), g[:, -5:].ravel()])
    w = g - border.mean()
    ys, xs = np.mgrid[80:160, 130:220]
    return np.array([(w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()])


def test_effects_keep_shape_dtype_and_are_deterministic():
    img = _square_image()
    for seed in range(10):
        out = effects.apply_camera_effects(img, np.random.default_rng(seed))
        assert out.shape == img.shape and out.dtype == np.uint8
        np.testing.assert_array_equal(out, effects.apply_camera_effects(img, np.random.default_rng(seed)))
    out, params = effects.apply_camera_effects(img, np.random.default_rng(3), return_params=True)
    assert isinstance(params, effects.EffectParams) and params.strength == 1.0


def test_effects_strength_zero_is_identity():
    img = _square_image()
    out, params = effects.apply_camera_effects(img, np.random.default_rng(0), strength=0.0, return_params=True)
    np.testing.assert_array_equal(out, img)
    assert params.names() == []


@pytest.mark.parametrize("name", ["defocus", "gaussian_blur", "motion_blur", "noise", "jpeg", "low_resolution",
                                  "chromatic_aberration", "exposure", "white_balance", "grayscale"])
def test_effects_do_not_move_content(name, monkeypatch):
    monkeypatch.setattr(effects, "PROBABILITIES", {k: float(k == name) for k in effects.PROBABILITIES})
    img = _square_image()
    before = _square_centroid(img)
    for seed in range(8):
        out, params = effects.apply_camera_effects(img, np.random.default_rng(seed), strength=1.5,
                                                   return_params=True)
        assert params.names() == [name]
        assert np.abs(_square_centroid(out) - before).max() < 0.5, (name, params.applied)
