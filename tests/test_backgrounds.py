"""Tests for the background bank: photo crops and the procedural fallback."""
from __future__ import annotations

import logging

import numpy as np

from training.synth.backgrounds import BackgroundBank


def test_background_bank_with_photos():
    bank = BackgroundBank()
    rng = np.random.default_rng(0)
    for w, h in ((64, 48), (200, 150)):
        img = bank.sample(rng, w, h)
        assert img.shape == (h, w, 3) and img.dtype == np.uint8
    a = bank.sample(np.random.default_rng(7), 96, 96)
    np.testing.assert_array_equal(a, bank.sample(np.random.default_rng(7), 96, 96))


def test_background_bank_falls_back_to_procedural(caplog, tmp_path):
    with caplog.at_level(logging.WARNING):
        bank = BackgroundBank(photo_paths=[tmp_path / "missing.jpg"])
    assert bank.photos == [] and "missing.jpg" in caplog.text
    empty = BackgroundBank(photo_paths=[])
    rng = np.random.default_rng(1)
    images = [empty.sample(rng, 80, 60) for _ in range(20)]
    assert all(im.shape == (60, 80, 3) and im.dtype == np.uint8 for im in images)
    assert np.std([im.mean() for im in images]) > 5  # varied, not one flat colour
