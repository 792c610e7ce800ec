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


def test_zoom_out_anywhere_places_a_cut_body_at_any_height():
    image, part_id = scene()
    heights = [compositing.zoom_out(image, part_id, np.zeros_like(image), np.random.default_rng(seed),
                                    scale_range=(0.5, 0.5), anywhere=True)[1][1, 2] for seed in range(20)]
    assert min(heights) >= 0 and max(heights) <= 96 * 0.5
    assert min(heights) < 96 * 0.25  # some high in the frame, the cut shown


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


@pytest.mark.parametrize("seed", range(6))
def test_letterbox_keeps_the_face_band_centred_between_black_bars(seed: int):
    image = np.random.default_rng(seed).integers(1, 255, (90, 120, 3)).astype(np.uint8)
    box = np.array([50.0, 30.0, 70.0, 55.0])
    out, A = compositing.letterbox(image, box, np.random.default_rng(seed), portrait=0.5)
    assert A[0, 0] == A[1, 1] == 1 and A[0, 1] == A[1, 0] == 0 and A[:, 2].min() * A[:, 2].max() == 0
    inside = out.max(-1) > 0
    rows, cols = np.flatnonzero(inside.any(1)), np.flatnonzero(inside.any(0))
    # One axis is cut to a band centred in the frame, the other is whole; the band holds the face, moved by A.
    band = (rows[0], len(out) - 1 - rows[-1]) if len(rows) < len(out) else (cols[0], out.shape[1] - 1 - cols[-1])
    assert abs(band[0] - band[1]) <= 1 and (len(rows) < len(out)) != (len(cols) < out.shape[1])
    x0, y0 = (box[:2] + A[:, 2]).astype(int)
    x1, y1 = (box[2:] + A[:, 2]).astype(int)
    assert (out[y0:y1, x0:x1] == image[y0 - int(A[1, 2]):y1 - int(A[1, 2]), x0 - int(A[0, 2]):x1 - int(A[0, 2])]).all()


def test_letterbox_refuses_a_face_taller_than_any_band():
    image = np.full((100, 100, 3), 50, np.uint8)
    rng = np.random.default_rng(0)
    assert all(compositing.letterbox(image, np.array([0.0, 0.0, 100.0, 100.0]), rng) is None for _ in range(5))


def test_flat_shapes_are_few_flat_colours_and_include_grey_on_black():
    rng = np.random.default_rng(0)
    images = [compositing.flat_shapes(64, 80, rng) for _ in range(40)]
    assert all(im.shape == (64, 80, 3) and im.dtype == np.uint8 for im in images)
    for im in images:  # flat fills: a few colours cover nearly every pixel (anti-aliased edges are the rest)
        _, counts = np.unique(im.reshape(-1, 3), axis=0, return_counts=True)
        assert np.sort(counts)[-4:].sum() > 0.9 * im.shape[0] * im.shape[1]
    grey_on_black = [im for im in images if (im[0, 0] == 0).all() and (im[..., 0] == im[..., 2]).all()]
    assert grey_on_black  # the synthetic test image that was taken for a face (issue 20)
    again = compositing.flat_shapes(64, 80, np.random.default_rng(0))
    assert (again == images[0]).all()
