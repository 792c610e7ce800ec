"""The real-face protocol, number for number that of ../shared/tools/realface_check.py (`score()`).

Per image, the candidates are the faces a method returned (dicts with `landmarks_2d` (68, 2) and optionally
`R`, canonical -> OpenCV camera, as in the `core.predict` JSON); the one whose 68-point box centre lies nearest
the ground-truth box centre is kept, and it counts as detected when that distance is under 0.5 * sqrt(w * h) of
the ground-truth box.

- NME_box: mean point error / sqrt(w * h) of the ground-truth box, over detected faces;
- NME_io: mean point error / distance of the outer eye corners (36, 45) of the ground truth, over detected faces;
- FR@0.1: share of ALL images with NME_io > 0.1, a miss counting as a failure;
- AUC@0.1 and the CED: of NME_io over all images, a miss counting as NME_io = inf (training.metrics.auc);
- pose MAE: mean over detected faces with a rotation of the mean of |pitch|, |yaw|, |roll| errors (degrees,
  wrapped to [-180, 180)), angles in the AFLW2000 `Pose_Para` convention (`pose_angles`);
- yaw bins: NME_box over the detected faces whose ground-truth |yaw| lies in each bin.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from training import metrics

if TYPE_CHECKING:
    from bench.realfaces.inputs import Face

DETECTION_RADIUS = 0.5  # in sqrt(w * h) of the ground-truth box
THRESHOLD = metrics.FAILURE_THRESHOLD
YAW_BINS: tuple[tuple[float, float], ...] = ((0.0, 30.0), (30.0, 60.0), (60.0, 90.0))
# OpenCV camera (y down, z forward) <-> the frame in which Pose_Para's rotation is written (y up, z backward).
_FLIP = np.diag([1.0, -1.0, -1.0])


def pose_angles(R: Any) -> np.ndarray:
    """(pitch, yaw, roll) degrees of R (canonical -> OpenCV camera) in AFLW2000's Pose_Para convention:
    diag(1, -1, -1) R = (Rz(roll) Ry(yaw) Rx(pitch))^T."""
    M = (_FLIP @ np.asarray(R, np.float64)).T
    return np.degrees([np.arctan2(M[2, 1], M[2, 2]), -np.arcsin(np.clip(M[2, 0], -1.0, 1.0)),
                       np.arctan2(M[1, 0], M[0, 0])])


def pose_rotation(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """R (canonical -> OpenCV camera) of Pose_Para angles in degrees; the inverse of `pose_angles`."""
    p, y, r = np.radians([pitch, yaw, roll])
    Rx = np.array([[1, 0, 0], [0, np.cos(p), np.sin(p)], [0, -np.sin(p), np.cos(p)]])
    Ry = np.array([[np.cos(y), 0, -np.sin(y)], [0, 1, 0], [np.sin(y), 0, np.cos(y)]])
    Rz = np.array([[np.cos(r), np.sin(r), 0], [-np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return _FLIP @ (Rx @ Ry @ Rz)


@dataclass(frozen=True)
class FaceScore:
    """One image's result: NME_box is NaN and NME_io inf for a miss; pose_error (3,) |pitch, yaw, roll| degrees
    where both the method and the set give a pose; pose_pred the method's angles."""

    detected: bool
    nme_box: float
    nme_io: float
    pose_error: np.ndarray | None = None
    pose_pred: np.ndarray | None = None


MISS = FaceScore(False, float("nan"), float("inf"))


def match(candidates: list[dict[str, Any]], gt: np.ndarray) -> dict[str, Any] | None:
    """The candidate whose 68-point box centre is nearest the ground truth's, if within DETECTION_RADIUS."""
    lo, hi = gt.min(0), gt.max(0)
    centre, size = (lo + hi) / 2, float(metrics.box_size(gt))
    best, best_distance = None, np.inf
    for face in candidates:
        points = np.asarray(face.get("landmarks_2d") or [], np.float64)
        if points.shape != gt.shape:
            continue
        distance = np.linalg.norm((points.min(0) + points.max(0)) / 2 - centre)
        if distance < best_distance:
            best, best_distance = face, distance
    return best if best is not None and best_distance < DETECTION_RADIUS * size else None


def score_face(candidates: list[dict[str, Any]], face: Face) -> FaceScore:
    """Score one image's candidates (module docstring) against a face's ground truth."""
    best = match(candidates, face.gt)
    if best is None:
        return MISS
    error = float(metrics.point_errors(np.asarray(best["landmarks_2d"], np.float64), face.gt).mean())
    pose_pred = pose_angles(best["R"]) if best.get("R") is not None else None
    pose_error = None
    if pose_pred is not None and face.pose is not None:
        pose_error = np.abs((pose_pred - face.pose + 180.0) % 360.0 - 180.0)
    return FaceScore(True, error / float(metrics.box_size(face.gt)),
                     error / float(metrics.inter_ocular_distance(face.gt)), pose_error, pose_pred)


def score_set(predictions: list[list[dict[str, Any]]], faces: list[Face]) -> list[FaceScore]:
    """Per face, the score of that image's candidates (`predictions[k]`: a `core.predict` entry's "faces")."""
    if len(predictions) != len(faces):
        raise ValueError(f"{len(predictions)} predictions for {len(faces)} faces")
    return [score_face(candidates, face) for candidates, face in zip(predictions, faces)]


def yaw_bin(yaw: float) -> int:
    """The index in YAW_BINS of |yaw| (the last bin includes its upper edge)."""
    return next((k for k, (_, hi) in enumerate(YAW_BINS) if abs(yaw) < hi), len(YAW_BINS) - 1)


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def summarize(scores: list[FaceScore], faces: list[Face]) -> dict[str, Any]:
    """The set's figures (module docstring); None where nothing was there to average."""
    detected = [s for s in scores if s.detected]
    nme_io = np.array([s.nme_io for s in scores], np.float64)
    posed = [s.pose_error for s in detected if s.pose_error is not None]
    bins = [{"yaw": edges, "n": 0, "detected": 0, "nme_box": []} for edges in YAW_BINS]
    for face, score in zip(faces, scores):
        if face.pose is not None:
            b = bins[yaw_bin(face.pose[1])]
            b["n"] += 1
            if score.detected:
                b["detected"] += 1
                b["nme_box"].append(score.nme_box)
    for b in bins:
        b["nme_box"] = _mean(b["nme_box"])
    return {"n": len(scores), "detected": len(detected),
            "nme_box": _mean([s.nme_box for s in detected]), "nme_io": _mean([s.nme_io for s in detected]),
            "fr_0.1": metrics.failure_rate(nme_io, THRESHOLD) if len(scores) else None,
            "auc_0.1": metrics.auc(nme_io, THRESHOLD) if len(scores) else None,
            "pose_mae": _mean([float(e.mean()) for e in posed]),
            "pose_mae_axes": np.mean(posed, axis=0).tolist() if posed else None,
            "pose_n": len(posed), "yaw_bins": bins if any(f.pose is not None for f in faces) else None}
