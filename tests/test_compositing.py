"""Scene augmentations of synthetic samples (training.compositing); their use in SyntheticDataset is tested in
test_train.py, beside the tiny synthetic set."""
from __future__ import annotations

import numpy as np
import pytest

from training import compositing


def scene(h: int = 96, w: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """A grey frame with a 'person' (part ids >= 0) filling the lower middle, touching the bottom edge."""
    image = np.full((h, w, 3), 100, np.uint8)
    part_id = np.full((h, w), -1, np.int16)
    part_id[30:, 30:66] = 0
    image[30:, 30:66] = (200, 150, 120)
    return image, part_id


def test_zoom_out_maps_points_and_keeps_a_cut_body_on_the_bottom_edge():
    image, part_id = scene()
    background = np.zeros_like(image)
    out, A = compositing.zoom_out(image, part_id, background, np.random.default_rng(0), scale_range=(0.5, 0.5))
    assert A[0, 0] == A[1, 1] == pytest.approx(0.5) and A[0, 1] == A[1, 0] == 0
    assert A[1, 2] == pytest.approx(96 * 0.5)  # bottom-aligned: the person touched the render's bottom edge
    # The person's centre pixel lands where A sends it; the background stays where the person is not.
    x, y = A[:, :2] @ np.array([48.0, 70.0]) + A[:, 2]
    assert np.abs(out[int(y), int(x)].astype(int) - (200, 150, 120)).max() <= 2
    assert (out[:20] == 0).all()


def test_headless_removes_the_face_and_skips_close_ups():
    image, part_id = scene()
    background = np.zeros_like(image)
    out = compositing.headless(image, part_id, np.array([30.0, 30.0, 66.0, 50.0]), background)
    assert out is not None and (out[30:50, 30:66] == 0).all()
    assert (out[60:, 40:56] == image[60:, 40:56]).all()
    assert compositing.headless(image, part_id, np.array([0.0, 0.0, 96.0, 96.0]), background) is None


def test_distractors_stay_out_of_the_face():
    image = np.full((128, 128, 3), 50, np.uint8)
    keep_out = np.array([40.0, 40.0, 80.0, 80.0])
    for seed in range(10):
        out = compositing.paste_distractors(image, np.random.default_rng(seed), keep_out, count=3)
        assert (out[40:80, 40:80] == 50).all()
    assert (compositing.paste_distractors(image, np.random.default_rng(0), None, count=3) != 50).any()
