"""core.shot: stacking per-frame results into a shot."""
from __future__ import annotations

import numpy as np

from core import geometry
from core.shot import Shot


def test_shot_results_from_frames() -> None:
    K = geometry.intrinsics(900.0, 640, 480)
    face = {"landmarks_2d": np.ones((3, 2)), "visibility": np.ones(3), "landmarks_3d": np.zeros((3, 3)), "K": K,
            "R": np.eye(3), "t": [0, 0, 50], "confidence": 0.9}
    items = {5: dict(face), 3: dict(face), 4: {"has_face": False, "landmarks_2d": None}}
    results = Shot.from_frames(items, 640, 480, "ibug68")
    assert results.frames.tolist() == [3, 4, 5]
    assert results.has_face.tolist() == [True, False, True]
    assert results.face_rows.tolist() == [0, 2]
    assert np.isnan(results.landmarks_3d[1]).all()
    assert results.row(5) == 2 and results.row(9) is None
    listed = Shot.from_frames([dict(face, frame=10), dict(face, frame=11, found=False)], 640, 480, "x")
    assert listed.frames.tolist() == [10, 11] and listed.has_face.tolist() == [True, False]
