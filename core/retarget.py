"""Where a shot puts the camera and the head, Blender-free: one focal length for the shot (`robust_focal`), camera
and head world matrices from the per-frame poses, and re-centring head motion onto a retarget target's pivot.
Used by `blender_addon.scene` (rig building and retargeting) and tested with plain pytest.

The rig keeps the camera static and moves the head (see `head_world_matrices`), because that is what animators
retarget: head motion lives on the head, and the camera stays where the shot's first face was seen.
"""
from __future__ import annotations

import numpy as np

from .geometry import opencv_to_blender_camera_matrix


def robust_focal(focals: np.ndarray, has_face: np.ndarray | None = None, max_deviation: float = 3.0) -> float:
    """One focal length (pixels) for a shot: the median of per-frame focals after rejecting outliers.

    Frames without a face, non-finite and non-positive values are ignored. Outliers are frames further than
    `max_deviation` robust standard deviations (1.4826 x median absolute deviation) from the median, with a
    floor of 1% of the median so that a nearly constant sequence does not reject frames for numerical noise.
    """
    focals = np.asarray(focals, float).reshape(-1)
    keep = np.isfinite(focals) & (focals > 0)
    if has_face is not None:
        keep &= np.asarray(has_face, bool).reshape(-1)
    values = focals[keep]
    if values.size == 0:
        raise ValueError("robust_focal: no frame with a face and a valid focal length")
    median = float(np.median(values))
    sigma = max(1.4826 * float(np.median(np.abs(values - median))), 0.01 * median)
    inliers = values[np.abs(values - median) <= max_deviation * sigma]
    return float(np.median(inliers)) if inliers.size else median


def camera_world_matrices(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(F, 4, 4) Blender camera world matrices for a head at the origin, one per OpenCV pose (R (F,3,3), t (F,3))."""
    return np.stack([opencv_to_blender_camera_matrix(r, v) for r, v in zip(np.asarray(R), np.asarray(t))])


def head_world_matrices(R: np.ndarray, t: np.ndarray, reference: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Static camera, moving head: (camera world matrix (4, 4), head world matrices (F, 4, 4)).

    With the head at the origin the camera would sit at C_f = opencv_to_blender_camera_matrix(R_f, t_f). The
    camera is frozen at C_ref instead, and the head moves so that the camera-to-head relation is unchanged:
    C_ref^-1 H_f = C_f^-1, so H_f = C_ref C_f^-1 (the identity on the reference frame).
    """
    cams = camera_world_matrices(R, t)
    camera = cams[reference]
    return camera, camera[None] @ np.linalg.inv(cams)


def pivot_delta(delta: np.ndarray, pivot: np.ndarray) -> np.ndarray:
    """Re-centre a rigid motion (4, 4) so that it rotates about `pivot` (3,) instead of the world origin.

    Retargeting head motion onto another character: the rig's head turns about the canonical origin, the target
    should turn about its own origin (or bone head), with the same rotation and the same translation.
    """
    out = np.eye(4)
    out[:3, :3] = delta[:3, :3]
    out[:3, 3] = delta[:3, 3] + pivot - delta[:3, :3] @ pivot
    return out
