"""Scores of `python -m bench.benchmark` (definitions in bench/README.md): accuracy against the synthetic ground
truth (detection, NME, FR and AUC, with misses as failures or left out), our head pose, focal length and
visibility, MediaPipe's head pose after one fitted change of axes, agreement between methods on the real photos,
and jitter on the clips and on the photos under their known warp.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.benchmark.inputs import Inputs, SynthSet, unwarp
from bench.benchmark.runs import PEERS, PhotoRun, SynthRuns, peer_points
from training import metrics

THRESHOLD = metrics.FAILURE_THRESHOLD
# GL camera (x right, y up, looking down -z), MediaPipe's face-geometry space -> OpenCV camera (y down, z forward).
GL_TO_CV = np.diag([1.0, -1.0, -1.0])
Stability = tuple[float, float, float]  # (jitter, detection, NME) of one method on one clip


def accuracy(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """Detection rate, NME over detected images, and FR / AUC @0.1 both over detected images and with each
    miss counted as a failure (NME = inf). pred (N, 68, 2) with NaN for misses."""
    found = np.isfinite(pred).all(axis=(1, 2))
    norm = metrics.inter_ocular_distance(gt)
    nmes = np.full(len(pred), np.inf)
    nmes[found] = metrics.nme(pred[found], gt[found], norm[found])
    detected = nmes[found]
    return {"n": int(len(pred)), "detection": float(found.mean()),
            "nme": float(detected.mean()) if detected.size else float("nan"),
            "nme_median": float(np.median(detected)) if detected.size else float("nan"),
            "fr_detected": metrics.failure_rate(detected, THRESHOLD), "auc_detected": metrics.auc(detected, THRESHOLD),
            "fr_all": metrics.failure_rate(nmes, THRESHOLD), "auc_all": metrics.auc(nmes, THRESHOLD),
            "nmes_all": nmes}


def masked_jitter(pred: np.ndarray, gt: np.ndarray | None, norm: np.ndarray | float) -> float:
    """training.metrics.jitter (order 1) over the consecutive frame pairs where both frames have a face."""
    pred = np.asarray(pred, np.float64)
    residual = pred - gt if gt is not None else pred
    norm = np.broadcast_to(np.asarray(norm, np.float64), (len(pred),))
    ok = np.isfinite(residual).all(axis=(1, 2))
    pairs = np.flatnonzero(ok[1:] & ok[:-1])
    if not len(pairs):
        return float("nan")
    step = np.linalg.norm(residual[pairs + 1] - residual[pairs], axis=-1).mean(axis=-1)
    return float(np.mean(step / norm[pairs + 1]))


def project_to_rotation(m: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(m)
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    return u @ d @ vt


def mediapipe_pose(matrices: list[Any], R_gt: np.ndarray) -> dict[str, Any] | None:
    """MediaPipe's head rotation (from its facial transformation matrix) against the ground truth.

    The matrix maps MediaPipe's canonical face model into a GL-convention camera; its canonical axes are not ours,
    so one constant rotation C (R_gt ~ GL_TO_CV R_mp C) is fitted over the detected images (chordal mean) before
    measuring errors. That alignment is fitted on the test data itself, which slightly favours MediaPipe.
    """
    idx = [k for k, m in enumerate(matrices) if m is not None]
    if len(idx) < 3:
        return None
    R_mp = np.stack([GL_TO_CV @ project_to_rotation(np.asarray(matrices[k])[:3, :3]) for k in idx])
    C = project_to_rotation(np.einsum("nji,njk->ik", R_mp, R_gt[idx]))
    errors = metrics.pose_errors(R_mp @ C, R_gt[idx])
    angle = float(np.degrees(np.arccos(np.clip((np.trace(C) - 1) / 2, -1, 1))))
    return {"errors": errors, "alignment_deg": angle, "n": len(idx)}


# --- 1. the synthetic test set ---------------------------------------------------------------------------------------

@dataclass
class SynthScores:
    """Section 1's figures: `accuracy` per method against the canonical ground truth, on the images every method
    detected (`common`) and against the 300-W annotation style (`style`); our pose, focal length and visibility
    errors (`ours_extra`, empty without a 3D head); MediaPipe's pose (`mediapipe_pose`, None without it)."""

    acc: dict[str, dict[str, Any]]
    common: dict[str, dict[str, Any]]
    style: dict[str, dict[str, Any]]
    ours_extra: dict[str, Any]
    mp_pose: dict[str, Any] | None


def synth_scores(synth: SynthSet, runs: SynthRuns, peers: dict[str, Any] | None, has_3d: bool) -> SynthScores:
    acc = {"ours": accuracy(runs.ours.points, synth.gt), "ours_mirror": accuracy(runs.mirror.points, synth.gt)}
    style = {"ours": accuracy(runs.ibug2d.points, synth.gt_2d_style)} if runs.ibug2d is not None else {}
    for m in PEERS:
        p = peer_points(peers, "synth", m)
        if p is not None:
            acc[m] = accuracy(p, synth.gt)
            style[m] = accuracy(p, synth.gt_2d_style)
    # The images every method detected: the same images for all, so NMEs there compare like with like.
    common = np.logical_and.reduce([np.isfinite(a["nmes_all"]) for a in acc.values()])
    acc_common = {k: accuracy(p[common], synth.gt[common]) for k, p in
                  [("ours", runs.ours.points), ("ours_mirror", runs.mirror.points)]
                  + [(m, peer_points(peers, "synth", m)) for m in PEERS if m in acc]}
    faces = runs.ours.faces
    found = np.array([f.found for f in faces])
    ours_extra: dict[str, Any] = {}
    if has_3d and found.any():
        R_pred = np.stack([f.R for f in faces])[found]
        ours_extra = {"pose": metrics.pose_errors(R_pred, synth.R[found]),
                      "focal": metrics.focal_error_percent(np.stack([f.K[0, 0] for f in faces])[found],
                                                           synth.K[found, 0, 0]),
                      "vis": metrics.visibility_scores(np.stack([f.visibility for f in faces])[found],
                                                       synth.vis[found])}
    tasks = peers["tasks"] if peers else {}
    mp_pose = mediapipe_pose(tasks["synth"]["mediapipe"]["matrix"], synth.R) if "synth" in tasks else None
    return SynthScores(acc, acc_common, style, ours_extra, mp_pose)


# --- 2. real photographs ---------------------------------------------------------------------------------------------

def photo_agreement(photo_runs: dict[str, PhotoRun], peers: dict[str, Any] | None) -> dict[str, dict[str, float]]:
    """Per photo and pair of methods, the NME between their points over the second one's inter-ocular distance
    (no ground truth: MediaPipe vs dlib is the reference level of disagreement)."""
    agreement: dict[str, dict[str, float]] = {}
    for name, run in photo_runs.items():
        peers_here = {m: peer_points(peers, f"photo_{name}", m) for m in PEERS}
        agreement[name] = {}
        for m, p in peers_here.items():
            if p is None or not np.isfinite(p[0]).all():
                continue
            norm = float(metrics.inter_ocular_distance(p[0]))
            agreement[name][f"ours vs {m}"] = float(metrics.nme(run.points, p[0], norm))
            agreement[name][f"ours, mirrored runs vs {m}"] = float(metrics.nme(run.points_mirror, p[0], norm))
            if run.points_ibug2d is not None:
                agreement[name][f"ours (ibug2d semantics) vs {m}"] = float(metrics.nme(run.points_ibug2d, p[0], norm))
        mp, dl = peers_here.get("mediapipe"), peers_here.get("dlib")
        if mp is not None and dl is not None and np.isfinite(mp[0]).all() and np.isfinite(dl[0]).all():
            agreement[name]["mediapipe vs dlib (reference)"] = float(
                metrics.nme(mp[0], dl[0], float(metrics.inter_ocular_distance(dl[0]))))
    return agreement


# --- 3. temporal stability -------------------------------------------------------------------------------------------

def clip_stability(points: dict[str, np.ndarray], gt: np.ndarray) -> dict[str, Stability]:
    """Each method's (jitter, detection, NME) on a clip with ground truth."""
    norm = metrics.inter_ocular_distance(gt)
    out = {}
    for k, p in points.items():
        a = accuracy(p, gt)
        out[k] = (masked_jitter(p, gt, norm), a["detection"], a["nme"])
    return out


def warp_stability(points: dict[str, np.ndarray], mats: np.ndarray) -> dict[str, Stability]:
    """Each method's (jitter, detection, NaN) on a warped photo: its points mapped back through the inverse warp,
    where a perfect detector does not move."""
    out = {}
    for k, p in points.items():
        back = np.stack([unwarp(p[i], mats[i]) for i in range(len(p))])
        ok = np.isfinite(back).all(axis=(1, 2))
        # Each method normalised by its own median inter-ocular distance in the original photo.
        norm = float(np.median(metrics.inter_ocular_distance(back[ok]))) if ok.any() else float("nan")
        out[k] = (masked_jitter(back, None, norm), float(ok.mean()), float("nan"))
    return out


def stability(points: dict[str, dict[str, np.ndarray]], data: Inputs) -> dict[str, dict[str, Stability]]:
    """Section 3's rows from `runs.stability_runs`: the clips, then the warped photos (`warp_<photo>`)."""
    out = {name: clip_stability(points[name], gt) for name, (_, gt, _) in data.clips.items()}
    out.update({f"warp_{name}": warp_stability(points[f"warp_{name}"], mats)
                for name, (mats, _) in data.warps.items()})
    return out
