"""core.retarget: shape-key name matching, the per-shot focal length, pose bookkeeping, stacking results."""
from __future__ import annotations

import numpy as np
import pytest

from core import geometry
from core.retarget import (ShotResults, head_world_matrices, match_arkit_name, match_shape_keys, pivot_delta,
                           robust_focal)
from core.solve import ARKIT52_NAMES as ARKIT_NAMES


@pytest.mark.parametrize("name", [
    "eyeBlinkLeft", "eyeBlink_L", "EyeBlinkLeft", "eye_blink_left", "Left_eyeBlink", "L_eyeBlink", "CTRL_eyeBlinkL",
    "blendShape1.eyeBlinkLeft", "eyeBlink.L", "eyeblinkleft", "EYE_BLINK_L", "eyeBlink_l", "eyeBlink_L.001",
    "ns:eyeBlinkLeft", "|grp|blendShape1.eyeBlink_L", "bs_eyeBlinkLeft", "EyeBlink_Left",
])
def test_spellings_of_eye_blink_left(name: str) -> None:
    assert match_arkit_name(name) == "eyeBlinkLeft"


@pytest.mark.parametrize("name, expected", [
    ("jaw_open", "jawOpen"), ("JawOpen", "jawOpen"), ("JAW_OPEN", "jawOpen"),
    ("mouthSmile_R", "mouthSmileRight"), ("R_mouthSmile", "mouthSmileRight"), ("mouth_smile_right", "mouthSmileRight"),
    ("eyeLookInL", "eyeLookInLeft"), ("eyeLookUp_R", "eyeLookUpRight"), ("mouthRollUpper", "mouthRollUpper"),
    ("mouthrollupper", "mouthRollUpper"), ("browInnerUp", "browInnerUp"), ("cheekPuff", "cheekPuff"),
    ("tongueOut", "tongueOut"), ("noseSneer_L", "noseSneerLeft"), ("blendShape1.mouthClose", "mouthClose"),
    # Left/Right that is a direction of motion, not a side of the face.
    ("jawLeft", "jawLeft"), ("JawRight", "jawRight"), ("jaw_L", "jawLeft"), ("mouth_left", "mouthLeft"),
    ("mouthRight", "mouthRight"),
])
def test_other_names(name: str, expected: str) -> None:
    assert match_arkit_name(name) == expected


@pytest.mark.parametrize("name", ["Basis", "basis", "Key 1", "smile", "eye", "Left", "browInnerUp_L", ""])
def test_non_arkit_names(name: str) -> None:
    assert match_arkit_name(name) is None


def test_all_arkit_names_match_themselves_in_every_style() -> None:
    for arkit in ARKIT_NAMES:
        assert match_arkit_name(arkit) == arkit
        assert match_arkit_name(arkit.upper()) == arkit
        assert match_arkit_name("blendShape1." + arkit) == arkit
        if arkit.endswith("Left") and arkit not in ("jawLeft", "mouthLeft"):
            assert match_arkit_name(arkit[:-4] + "_L") == arkit
            assert match_arkit_name("Left_" + arkit[:-4]) == arkit


def test_match_shape_keys_mapping_and_leftovers() -> None:
    keys = ["Basis", "EyeBlink_L", "eyeBlinkLeft", "jaw_open", "Extra", "mouthSmile_R", "browInnerUp_L"]
    match = match_shape_keys(keys)
    assert set(match.mapping) == set(ARKIT_NAMES)
    assert match.mapping["eyeBlinkLeft"] == "eyeBlinkLeft"  # the exact spelling wins over EyeBlink_L
    assert match.mapping["jawOpen"] == "jaw_open"
    assert match.mapping["mouthSmileRight"] == "mouthSmile_R"
    assert match.mapping["eyeBlinkRight"] is None
    assert match.matched == {"eyeBlinkLeft": "eyeBlinkLeft", "jawOpen": "jaw_open",
                             "mouthSmileRight": "mouthSmile_R"}
    assert match.unmatched_targets == ["EyeBlink_L", "Extra", "browInnerUp_L"]  # original order, Basis skipped
    assert len(match.unmatched_arkit) == len(ARKIT_NAMES) - 3
    assert "eyeBlinkRight" in match.unmatched_arkit


def test_match_shape_keys_first_of_equals_wins() -> None:
    match = match_shape_keys(["EyeBlink_L", "eye_blink_left"])
    assert match.mapping["eyeBlinkLeft"] == "EyeBlink_L"
    assert match.unmatched_targets == ["eye_blink_left"]


def test_match_shape_keys_nothing() -> None:
    match = match_shape_keys(["Foo", "Bar"])
    assert not match.matched
    assert match.unmatched_targets == ["Foo", "Bar"]
    assert match.unmatched_arkit == list(ARKIT_NAMES)


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


def test_shot_results_from_frames() -> None:
    K = geometry.intrinsics(900.0, 640, 480)
    face = {"landmarks_2d": np.ones((3, 2)), "visibility": np.ones(3), "landmarks_3d": np.zeros((3, 3)), "K": K,
            "R": np.eye(3), "t": [0, 0, 50], "confidence": 0.9}
    items = {5: dict(face), 3: dict(face), 4: {"has_face": False, "landmarks_2d": None}}
    results = ShotResults.from_frames(items, 640, 480, "ibug68")
    assert results.frames.tolist() == [3, 4, 5]
    assert results.has_face.tolist() == [True, False, True]
    assert results.face_rows.tolist() == [0, 2]
    assert np.isnan(results.landmarks_3d[1]).all()
    assert results.row(5) == 2 and results.row(9) is None
    listed = ShotResults.from_frames([dict(face, frame=10), dict(face, frame=11, found=False)], 640, 480, "x")
    assert listed.frames.tolist() == [10, 11] and listed.has_face.tolist() == [True, False]
