"""The renderer's pixels agree with our projection formula: ground truth is where the image shows it."""
from __future__ import annotations

import numpy as np
import pytest

from core import geometry
from core.facemodel import load_facemodel
from core.layouts import load_layout
from training.synth.renderer import DrawItem, Lighting, Renderer

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def disc(center_cam: np.ndarray, radius: float, part_id: int, segments: int = 24) -> DrawItem:
    """A small disc facing the camera, centred on a camera-space point."""
    view = center_cam / np.linalg.norm(center_cam)
    a = np.cross(view, [0.0, 1.0, 0.0])
    a /= np.linalg.norm(a)
    b = np.cross(view, a)
    angles = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    rim = center_cam + radius * (np.cos(angles)[:, None] * a + np.sin(angles)[:, None] * b)
    positions = np.vstack([center_cam, rim]).astype(np.float32)
    indices = np.array([[0, 1 + i, 1 + (i + 1) % segments] for i in range(segments)], np.int32)
    return DrawItem(positions=positions, normals=np.tile(-view, (len(positions), 1)).astype(np.float32),
                    indices=indices, part_id=part_id)


@pytest.fixture(scope="module")
def renderer():
    r = Renderer(160, 120, supersample=2)
    yield r
    r.release()


@pytest.mark.parametrize("seed", range(4))
def test_rendered_markers_sit_at_projected_landmarks(renderer, seed):
    """Render a tiny disc at each posed landmark; the centroid of its pixels must match `project` to < 0.5 px.

    The principal point is off-centre and the image not square, so a flipped axis, a half-pixel shift or a
    transposed intrinsic would all show.
    """
    rng = np.random.default_rng(seed)
    model = load_facemodel()
    points = load_layout("ibug68").points(model.vertices(rng.normal(size=100)), model.triangles)
    R = geometry.pose_to_rotation(*rng.uniform(-40, 40, 3))
    K = geometry.intrinsics(rng.uniform(150, 400), 160, 120, cx=rng.uniform(60, 100), cy=rng.uniform(45, 75))
    t = np.array([0.0, 0.0, rng.uniform(60, 90)]) - R @ points.mean(0)
    cam = geometry.to_camera(points, R, t)
    expected = geometry.project(cam, K)
    # Markers whose discs lie wholly inside the image and overlap no other (a nearer disc would hide part of one).
    chosen: list[int] = []
    for i in range(68):
        inside = 4 < expected[i, 0] < 156 and 4 < expected[i, 1] < 116
        if inside and all(np.linalg.norm(expected[i] - expected[j]) > 7 for j in chosen):
            chosen.append(i)
    assert len(chosen) >= 8
    items = [disc(cam[i], radius=2.5 * cam[i, 2] / K[0, 0], part_id=k) for k, i in enumerate(chosen)]
    result = renderer.render(items, K, Lighting())
    s = result.supersample
    rows, cols = np.indices(result.part_id.shape)
    errors = []
    for k, i in enumerate(chosen):
        mask = result.part_id == k
        assert mask.sum() > 10, "marker not rendered"
        # Subsample centres are at (col + 0.5) / s in image pixels.
        centroid = np.array([(cols[mask] + 0.5).mean(), (rows[mask] + 0.5).mean()]) / s
        errors.append(np.linalg.norm(centroid - expected[i]))
        # The depth buffer holds the camera z of the disc (tilted towards the centre ray, so z varies across it).
        assert abs(result.depth[mask].mean() - cam[i, 2]) < 0.05
    assert max(errors) < 0.5, f"marker centroids off by up to {max(errors):.3f} px"


def test_head_depth_matches_visible_landmarks(renderer):
    """On the rendered head, the depth buffer at a visible landmark's pixel equals the landmark's own depth."""
    model = load_facemodel()
    verts = model.vertices()
    tris = model.triangles[model.material_mask("M_Face", "M_BackHead")]
    R = geometry.pose_to_rotation(0, 0, 0)
    K = geometry.intrinsics(300, 160, 120)
    points = load_layout("ibug68").points(verts, model.triangles)
    t = np.array([0.0, 0.0, 70.0]) - R @ points.mean(0)
    cam = geometry.to_camera(verts, R, t).astype(np.float32)
    item = DrawItem(positions=cam, normals=(geometry.vertex_normals(verts, tris) @ R.T).astype(np.float32), indices=tris)
    result = renderer.render([item], K, Lighting())
    pc = geometry.to_camera(points, R, t)
    uv = geometry.project(pc, K) * result.supersample
    # Frontal: brows, nose and outer lips are visible (eye and inner-lip points sit on the rims of openings, where
    # the neighbouring pixel looks into the opening).
    inner = np.r_[17:36, 48:60]
    z = result.depth[uv[inner, 1].astype(int), uv[inner, 0].astype(int)]
    errors = np.abs(z - pc[inner, 2])
    assert errors.max() < 0.3, f"landmark {inner[errors.argmax()]}: depth off by {errors.max():.2f} cm"
