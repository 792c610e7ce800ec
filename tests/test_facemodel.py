"""Canonical face: locating the model, numpy and torch evaluation, conventions."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core import facemodel, geometry
from core.facemodel import FaceModelNotFoundError, ict_to_arkit_name, load_facemodel
from core.model.face import TorchFaceModel


def test_missing_face_model_names_every_place(monkeypatch, tmp_path):
    monkeypatch.setenv(facemodel.FACEKIT_ENV, str(tmp_path / "nowhere.npz"))
    monkeypatch.setattr(facemodel, "ASSETS_DIR", tmp_path / "assets")
    monkeypatch.setattr(facemodel, "SHARED_FACEKIT_DIR", tmp_path / "shared")
    with pytest.raises(FaceModelNotFoundError) as err:
        facemodel.find_facemodel()
    message = str(err.value)
    for place in ["nowhere.npz", str(tmp_path / "assets"), str(tmp_path / "shared"), "scripts/setup.sh",
                  "core.ict_import"]:
        assert place in message


def test_env_variable_takes_precedence(monkeypatch):
    real = facemodel.find_facemodel()
    monkeypatch.setenv(facemodel.FACEKIT_ENV, str(real.parent))
    assert facemodel.find_facemodel() == real.parent / facemodel.FACEKIT_FILENAME


def test_not_a_face_model_is_reported(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="bad.npz"):
        load_facemodel(bad)


def test_numpy_and_torch_agree_and_torch_is_differentiable():
    model = load_facemodel()
    rng = np.random.default_rng(0)
    identity = rng.normal(size=(2, 100)).astype(np.float32)
    expression = rng.uniform(0, 1, size=(2, 57)).astype(np.float32)
    ids = np.arange(0, model.num_vertices, 97)
    torch_model = TorchFaceModel(model, vertex_ids=ids)
    ident = torch.tensor(identity, requires_grad=True)
    verts = torch_model(ident, torch.tensor(expression))
    for b in range(2):
        np.testing.assert_allclose(verts[b].detach().numpy(), model.vertices(identity[b], expression[b])[ids],
                                   atol=1e-4)
    verts.sum().backward()
    assert ident.grad is not None and torch.isfinite(ident.grad).all()


def test_expression_moves_the_right_place():
    model = load_facemodel()
    jaw_open = np.zeros(model.num_expressions, np.float32)
    jaw_open[model.expression_names.index("jawOpen")] = 1
    moved = np.linalg.norm(model.vertices(expression=jaw_open) - model.neutral, axis=1)
    chin = model.neutral[:, 1] < -5  # below the mouth
    assert moved[chin].max() > 1.0 and moved[model.neutral[:, 1] > 5].max() < 0.2  # forehead: barely


def test_arkit_names():
    assert ict_to_arkit_name("eyeBlink_L") == "eyeBlinkLeft"
    assert ict_to_arkit_name("jawOpen") == "jawOpen"
    assert "mouthSmileRight" in load_facemodel().arkit_names


@pytest.mark.parametrize("yaw,pitch,roll", [(0, 0, 0), (30, -20, 10), (-85, 45, -35)])
def test_pose_round_trip_and_facing(yaw, pitch, roll):
    R = geometry.pose_to_rotation(yaw, pitch, roll)
    assert np.allclose(geometry.rotation_to_pose(R), (yaw, pitch, roll), atol=1e-6)
    assert np.allclose(R @ R.T, np.eye(3)) and np.isclose(np.linalg.det(R), 1)


def test_pose_signs_follow_the_documented_convention():
    nose = np.array([0.0, 0.0, 1.0])
    assert (geometry.pose_to_rotation(30, 0, 0) @ nose)[0] > 0   # yaw > 0: nose to image right (subject's left)
    assert (geometry.pose_to_rotation(0, 20, 0) @ nose)[1] > 0   # pitch > 0: nose down (image y grows down)
    assert (geometry.pose_to_rotation(0, 0, 0) @ nose)[2] < 0    # frontal: the face looks at the camera


def test_rotation_from_6d_is_a_rotation():
    R = geometry.rotation_from_6d(np.array([1.0, 0.2, 0.1, 0.3, 1.0, -0.2]))
    assert np.allclose(R @ R.T, np.eye(3), atol=1e-9) and np.isclose(np.linalg.det(R), 1)


def test_blender_camera_sees_the_head_as_opencv_does():
    """A point projected by the OpenCV pose equals the point seen through the Blender camera matrix."""
    R = geometry.pose_to_rotation(25, -10, 5)
    t = np.array([2.0, -1.0, 60.0])
    K = geometry.intrinsics(500, 640, 480)
    p = np.array([3.0, 4.0, 9.0])
    expected = geometry.project_canonical(p[None], K, R, t)[0]
    cam_world = geometry.opencv_to_blender_camera_matrix(R, t)
    p_blender = geometry.CANONICAL_TO_BLENDER @ p
    local = np.linalg.inv(cam_world) @ np.append(p_blender, 1.0)     # Blender camera: looks down -Z, +Y up
    x, y = local[0] / -local[2], local[1] / -local[2]
    pixel = np.array([K[0, 2] + K[0, 0] * x, K[1, 2] - K[1, 1] * y])  # same focal in pixels
    assert np.allclose(pixel, expected, atol=1e-6)


def test_fit_pose_recovers_the_pose_that_projects_the_points():
    """From a pose 8 degrees and 2 cm off, the fit lands on the true pose of noise-free points, and lowers the error
    of noisy ones; fewer than 4 points or a point behind the camera leave the start as it was."""
    rng = np.random.default_rng(0)
    points = load_facemodel().neutral[rng.choice(len(load_facemodel().neutral), 68, replace=False)]
    K = geometry.intrinsics(900, 640, 480)
    R_true, t_true = geometry.pose_to_rotation(35, -10, 5), np.array([1.5, -2.0, 70.0])
    pixels = geometry.project_canonical(points, K, R_true, t_true)
    R0, t0 = geometry.pose_to_rotation(30, -4, 9), t_true + [2.0, 1.0, -3.0]
    R, t, before, after = geometry.fit_pose(points, pixels, K, R0, t0)
    assert geometry.rotation_angle_deg(R, R_true) < 0.01 and np.allclose(t, t_true, atol=1e-3)
    assert after < 1e-3 < before
    noisy = pixels + rng.normal(0, 2.0, pixels.shape)
    R, t, before, after = geometry.fit_pose(points, noisy, K, R0, t0)
    assert after < before and geometry.rotation_angle_deg(R, R_true) < 1.0
    for args in [(points[:3], pixels[:3], K, R0, t0), (points, pixels, K, R0, t0 * [1, 1, -1])]:
        R, t, before, after = geometry.fit_pose(*args)
        assert R is R0 or np.array_equal(R, R0)
        assert np.array_equal(t, args[4]) and np.isnan(after)
