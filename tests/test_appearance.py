"""Tests for the synthetic appearance: skin parameters, face, back-head and eye textures, material colours."""
from __future__ import annotations

import cv2
import numpy as np

from training.synth import appearance
from training.synth.appearance.face import face_geometry

SIZE = 256  # smaller than the default 512 to keep the tests quick; the code paths are the same


def _texture(seed: int, size: int = SIZE) -> np.ndarray:
    params = appearance.sample_skin(np.random.default_rng(seed))
    return appearance.make_face_texture(params, np.random.default_rng(seed + 1000), size)


def test_face_texture_shape_dtype_and_determinism():
    a, b, c = _texture(1), _texture(1), _texture(2)
    assert a.shape == (SIZE, SIZE, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(int) - c.astype(int)).mean() > 2


def test_same_params_different_rng_give_different_detail():
    params = appearance.sample_skin(np.random.default_rng(5))
    a = appearance.make_face_texture(params, np.random.default_rng(1), SIZE)
    b = appearance.make_face_texture(params, np.random.default_rng(2), SIZE)
    assert not np.array_equal(a, b)


def test_landmarks_lie_in_the_face_tile_as_a_frontal_face():
    g = face_geometry(SIZE)
    lm = g.lm / SIZE  # image coordinates: x right, y down
    assert lm.min() > 0 and lm.max() < 1
    assert lm[36:42, 0].mean() < 0.5 < lm[42:48, 0].mean()   # subject's right eye on the image left
    assert lm[17:27, 1].mean() < lm[36:48, 1].mean() < lm[30, 1] < lm[48:60, 1].mean() < lm[8, 1]


def test_skin_tone_range_covers_dark_and_light():
    g = face_geometry(SIZE)
    lm = g.lm.astype(int)
    lum = []
    for seed in range(50):
        tex = _texture(seed).astype(np.float32)
        # A cheek patch beside the nose tip, clear of lips, brows and beard-prone areas.
        patch = tex[lm[30, 1] - 4:lm[30, 1] + 4, lm[31, 0] - 28:lm[31, 0] - 14]
        lum.append(float((patch @ np.array([0.299, 0.587, 0.114])).mean()))
    assert min(lum) < 80 and max(lum) > 150, (min(lum), max(lum))
    assert np.ptp(lum) > 80


def test_lips_differ_from_surrounding_skin():
    g = face_geometry(SIZE)
    box = g.lips_box
    lips = g.lips > 0.8
    skin = g.lips < 0.02
    diffs = []
    for seed in range(20):
        lab = cv2.cvtColor(_texture(seed)[box].astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
        diffs.append(lab[lips].mean(0) - lab[skin].mean(0))
    diffs = np.array(diffs)
    assert diffs[:, 1].mean() > 4          # redder (a*) on average
    assert np.linalg.norm(diffs, axis=1).mean() > 6


def test_skin_params_are_plausible():
    params = [appearance.sample_skin(np.random.default_rng(s)) for s in range(200)]
    tones = np.array([p.tone for p in params])
    assert tones.min() < 2 and tones.max() > 9
    kinds = {p.iris_kind for p in params}
    assert "brown" in kinds and len(kinds) >= 3
    assert sum(p.iris_kind == "brown" for p in params) > 0.4 * len(params)
    assert any(p.stubble > 0 for p in params) and any(p.lipstick for p in params)
    for p in params[:20]:
        for name in ("skin_rgb", "lip_rgb", "hair_rgb", "iris_rgb", "sclera_rgb", "teeth_rgb"):
            assert all(0 <= c <= 1 for c in getattr(p, name))


def test_material_colors_and_other_textures():
    params = appearance.sample_skin(np.random.default_rng(3))
    colors = appearance.material_colors(params)
    for name in appearance.TRANSPARENT_MATERIALS:
        assert colors[name] is None
    iris = colors["M_IrisLeft"]
    assert isinstance(iris, np.ndarray) and iris.dtype == np.uint8 and iris.ndim == 3
    for name in ("M_ScleraLeft", "M_Teeth", "M_GumsTongue", "M_EyeLashes"):
        assert len(colors[name]) == 3 and all(0 <= c <= 1 for c in colors[name])
    back = appearance.make_backhead_texture(params, np.random.default_rng(0), 128)
    assert back.shape == (128, 128, 3) and back.dtype == np.uint8
    eyes = appearance.make_eye_textures(params, 64)
    assert eyes["iris"].shape == eyes["sclera"].shape == (64, 64, 3)
    # The pupil is dark and the sclera (texture corner, far round the eyeball) light.
    assert eyes["sclera"][32, 32].mean() < 40 and eyes["sclera"][2, 2].mean() > 120
