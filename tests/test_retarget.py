"""core.retarget: the per-shot focal length and the camera/head pose bookkeeping."""
from __future__ import annotations

import numpy as np
import pytest

from core import geometry
from core.retarget import head_world_matrices, pivot_delta, robust_focal


def test_robust_focal_rejects_outliers_and_faceless_frames() -> None:
    rng = np.random.default_rng(0)
    focals = 1000.0 * (1 + 0.003 * rng.normal(size=60))
    focals[[5, 17, 40]] = [2500.0, 300.0, 1600.0]   # detector glitches
    has_face = np.ones(60, bool)
    has_face[[20, 21]] = False
    focals[[20, 21]] = [9000.0, np.nan]              # garbage on frames without a face
    estimate = robust_focal(focals, has_face)
    assert abs(estimate - 1000.0) < 2.0
    assert robust_focal([800.0, 800.0, 800.0]) == 800.0
    with pytest.raises(ValueError):
        robust_focal([np.nan, 900.0], [True, False])


def test_head_world_matrices_keep_the_camera_to_head_pose() -> None:
    R = np.stack([geometry.pose_to_rotation(y, p, r) for y, p, r in [(0, 0, 0), (20, -10, 5), (-35, 15, -8)]])
    t = np.array([[0.0, 0.0, 60.0], [5.0, -3.0, 70.0], [-4.0, 2.0, 55.0]])
    camera, heads = head_world_matrices(R, t, reference=1)
    np.testing.assert_allclose(camera, geometry.opencv_to_blender_camera_matrix(R[1], t[1]))
    np.testing.assert_allclose(heads[1], np.eye(4), atol=1e-12)
    for f in range(3):
        moving_camera = geometry.opencv_to_blender_camera_matrix(R[f], t[f])
        np.testing.assert_allclose(np.linalg.inv(camera) @ heads[f], np.linalg.inv(moving_camera), atol=1e-12)


def test_pivot_delta_turns_about_the_pivot() -> None:
    delta = np.eye(4)
    delta[:3, :3] = geometry.rotation_z(30)
    delta[:3, 3] = [0.1, 0.0, 0.0]
    pivot = np.array([0.0, 2.0, 1.5])
    moved = pivot_delta(delta, pivot)
    np.testing.assert_allclose(moved[:3, :3], delta[:3, :3])
    np.testing.assert_allclose(moved @ np.r_[pivot, 1.0], np.r_[pivot + delta[:3, 3], 1.0])
