"""Turned views of real photos (training.turned_faces): the mesh, the turn, and that each label lands where the
photo's pixel at that point is drawn, through the whole command with a stand-in model."""
from __future__ import annotations

import json
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from core import geometry
from training import turned_faces as tf

@pytest.fixture(scope="module")
def layout():  # noqa: ANN201
    return tf.reading_layout()


def photo_and_camera(size: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A smooth colour ramp (so a pixel's colour says where it came from), and a camera seeing the neutral face
    frontally, turned 10 degrees."""
    ys, xs = np.mgrid[0:size, 0:size]
    image = np.stack([xs * 255 / size, ys * 255 / size, np.full_like(xs, 128)], -1).astype(np.uint8)
    K = geometry.intrinsics(500.0, size, size)
    return image, K, geometry.pose_to_rotation(10.0, 0.0, 0.0), np.array([0.0, 0.0, 60.0])


def test_mesh_covers_the_points_without_bridging_the_outline(layout) -> None:
    canonical = layout.canonical_points()
    triangles = tf.face_mesh(canonical)
    assert triangles.min() >= 0 and triangles.max() < len(canonical)
    assert len(np.unique(triangles)) > 0.98 * len(canonical)
    corners = canonical[triangles][..., :2]
    edges = np.linalg.norm(corners - np.roll(corners, 1, axis=1), axis=-1).max(1)
    assert edges.max() < 3.0  # cm: no triangle across the face


def test_turn_changes_the_yaw_only_and_takes_the_head_away_from_the_camera() -> None:
    R = geometry.pose_to_rotation(20.0, 5.0, -3.0)
    yaw, pitch, roll = geometry.rotation_to_pose(tf.turned_pose(R, 30.0))
    assert (yaw, pitch, roll) == pytest.approx((50.0, 5.0, -3.0), abs=1e-6)
    rng = np.random.default_rng(0)
    for start in (-60.0, -20.0, 0.0, 20.0, 60.0):
        for _ in range(20):
            turn = tf.pick_turn(geometry.pose_to_rotation(start, 0.0, 0.0), rng)
            assert turn is not None and tf.TURN_RANGE_DEG[0] <= abs(turn) <= tf.TURN_RANGE_DEG[1]
            assert abs(start + turn) > abs(start) and abs(start + turn) <= tf.MAX_YAW + 1e-9
    assert tf.pick_turn(geometry.pose_to_rotation(70.0, 0.0, 0.0), rng) is None


def test_labels_land_where_their_pixels_are_drawn(layout) -> None:
    image, K, R, t = photo_and_camera()
    points_3d = layout.canonical_points().astype(np.float64)
    reading = tf.Reading(geometry.project_canonical(points_3d, K, R, t), points_3d, K, R, t)
    renderer = tf.TurnedFaceRenderer(tf.face_mesh(layout.canonical_points()))
    try:
        background = tf.fill_face_area(image, reading.points_2d)
        same = renderer.render(image, background, reading, R)
        turned_R = tf.turned_pose(R, 35.0)
        turned = renderer.render(image, background, reading, turned_R)
    finally:
        renderer.release()
    inside = np.zeros(image.shape[:2], np.uint8)
    cv2.fillConvexPoly(inside, cv2.convexHull(reading.points_2d[:68].astype(np.float32)).astype(np.int32), 1)
    assert np.abs(same.astype(int) - image.astype(int))[inside.astype(bool)].mean() < 3
    labels = geometry.project_canonical(points_3d[:68], K, turned_R, t)
    visible = (layout.canonical_normals()[:68] @ turned_R.T)[:, 2] < -0.3  # facing the camera: not hidden
    drawn = turned[labels[visible, 1].astype(int), labels[visible, 0].astype(int), :2].astype(float)
    source = reading.points_2d[:68][visible] * 255 / image.shape[0]
    assert np.median(np.abs(drawn - source)) < 3  # colour levels: about a pixel of the ramp
    assert np.abs(turned.astype(int) - image.astype(int))[inside.astype(bool)].mean() > 5


def test_command_writes_views_the_trainer_reads(tmp_path, layout, monkeypatch) -> None:
    from training.datasets import open_dataset

    image, K, R, t = photo_and_camera(200)
    photos = tmp_path / "photos"
    photos.mkdir()
    for k in range(3):
        cv2.imwrite(str(photos / f"p{k}.png"), image)
    cv2.imwrite(str(photos / "blank.png"), np.zeros_like(image))
    (photos / "broken.png").write_bytes(b"not an image")
    points_3d = layout.canonical_points()

    class StandIn:
        """Finds the neutral face in the ramp photos, nothing in the blank one."""

        def __init__(self, *args, **kwargs) -> None:
            pass

        def predict(self, photo, reading_layout, semantics, mirror):  # noqa: ANN001, ANN201
            found = bool(photo.any())
            return SimpleNamespace(found=found, confidence=0.99 if found else 0.0,
                                   landmarks_2d=geometry.project_canonical(points_3d, K, R, t),
                                   landmarks_3d=points_3d, K=K, R=R, t=t)

    monkeypatch.setattr("core.runtime.session.LandmarkModel", StandIn)
    out = tmp_path / "turned"
    assert tf.main([str(photos), "--out", str(out), "--views", "2"]) == 0
    entries = json.loads((out / "labels.json").read_text())
    assert len(entries) == 6 and all((out / e["path"]).is_file() for e in entries)
    assert all(tf.TURN_RANGE_DEG[0] <= abs(e["turn_deg"]) <= tf.TURN_RANGE_DEG[1] for e in entries)
    dataset = open_dataset(f"predictions:root={out},file=labels.json,layout=ibug68")
    assert len(dataset) == 6 and dataset[0].landmarks.shape == (68, 2)
    assert tf.main([str(photos), "--out", str(out)]) == 2  # never overwrites an earlier run
    sheet = cv2.imread(str(out / "sheet.png"))
    assert sheet.shape == (2 * tf.SHEET_TILE, 6 * tf.SHEET_TILE, 3)  # 6 views: photo and view each, 6 a row
    assert tf.main(["--sheet-of", str(out), "--out", str(tmp_path / "again.png")]) == 0
    assert tf.main(["--sheet-of", str(out), "--out", str(tmp_path / "again.png")]) == 2
