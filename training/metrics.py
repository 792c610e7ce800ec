"""Evaluation metrics for landmark detection, head pose, camera, 3D shape, visibility and temporal stability.

Pure numpy functions (plus `core.geometry` for pose maths, and matplotlib for `plot_ced` only). Landmark arrays
are (..., N, 2) pixels or (..., N, 3) canonical cm; leading dimensions (images, frames) broadcast. Errors
normalised by a face size are fractions (0.05 = 5%); `training.evaluate` reports them that way in results.json.

Definitions (p_i predicted, g_i ground truth, N points, d a face size in pixels):
    NME             = (1 / N) sum_i ||p_i - g_i|| / d
    d_io            = ||g_outer_eye_right - g_outer_eye_left||     (iBUG 36, 45; WFLW 60, 72)
    d_box           = sqrt(w * h) of the bounding box of the g_i
    FR@T            = fraction of images with NME > T
    CED(x)          = fraction of images with NME <= x
    AUC@T           = (1 / T) integral_0^T CED(x) dx = mean over images of max(0, 1 - NME / T)
    pose error      = arccos((trace(R_pred^T R_gt) - 1) / 2) in degrees; per axis |wrap(angle_pred - angle_gt)|
    focal error     = 100 |f_pred - f_gt| / f_gt  (percent)
    3D error        = (1 / N) sum_i ||P_i - G_i|| in cm, raw and after the best similarity (s, R, t) maps P to G
    visibility      = accuracy and F1 (positive class: visible) of (v_pred >= 0.5) against (v_gt >= 0.5)
    jitter          = mean over t >= k and points of ||D^k (p - g)_t|| / d_t, D the frame difference, k = 1 or 2
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core import geometry

# Outer eye corners (0-based) for the inter-ocular distance, per layout with a standard definition.
OUTER_EYE_CORNERS: dict[str, tuple[int, int]] = {"ibug68": (36, 45), "wflw98": (60, 72), "frl": (18, 27)}
FAILURE_THRESHOLD = 0.1
WFLW_FAILURE_THRESHOLD = 0.08


# --- 2D landmarks -------------------------------------------------------------------------------------------------

def inter_ocular_distance(gt: np.ndarray, layout: str = "ibug68") -> np.ndarray:
    """d_io = ||g[a] - g[b]|| for the layout's outer eye corners (a, b); gt (..., N, 2) -> (...)."""
    if layout not in OUTER_EYE_CORNERS:
        raise ValueError(f"no inter-ocular definition for layout {layout!r}; known: {', '.join(OUTER_EYE_CORNERS)}")
    a, b = OUTER_EYE_CORNERS[layout]
    gt = np.asarray(gt, np.float64)
    return np.linalg.norm(gt[..., a, :] - gt[..., b, :], axis=-1)


def box_size(gt: np.ndarray) -> np.ndarray:
    """d_box = sqrt(w * h) of the axis-aligned bounding box of the points; gt (..., N, 2) -> (...)."""
    gt = np.asarray(gt, np.float64)
    extent = gt.max(axis=-2) - gt.min(axis=-2)
    return np.sqrt(extent[..., 0] * extent[..., 1])


def point_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Euclidean distance per point ||p_i - g_i||; (..., N, D) -> (..., N)."""
    return np.linalg.norm(np.asarray(pred, np.float64) - np.asarray(gt, np.float64), axis=-1)


def nme(pred: np.ndarray, gt: np.ndarray, norm: np.ndarray | float) -> np.ndarray:
    """NME = mean_i ||p_i - g_i|| / d per image; pred, gt (..., N, 2), norm d (...) -> (...)."""
    return point_errors(pred, gt).mean(axis=-1) / np.asarray(norm, np.float64)


def failure_rate(nmes: np.ndarray, threshold: float = FAILURE_THRESHOLD) -> float:
    """FR@T = fraction of images with NME > T."""
    nmes = np.asarray(nmes, np.float64)
    return float(np.mean(nmes > threshold)) if nmes.size else float("nan")


def ced_curve(nmes: np.ndarray, threshold: float = FAILURE_THRESHOLD, num: int = 201
              ) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative error distribution: x in [0, T] (num steps) and CED(x) = fraction of images with NME <= x."""
    nmes = np.sort(np.asarray(nmes, np.float64))
    x = np.linspace(0.0, threshold, num)
    return x, np.searchsorted(nmes, x, side="right") / max(len(nmes), 1)


def auc(nmes: np.ndarray, threshold: float = FAILURE_THRESHOLD) -> float:
    """AUC@T = (1/T) int_0^T CED(x) dx, in [0, 1].

    CED is a sum of steps, one per image at its NME, so the integral is exact in closed form:
    mean over images of max(0, 1 - NME / T).
    """
    nmes = np.asarray(nmes, np.float64)
    return float(np.mean(np.clip(1.0 - nmes / threshold, 0.0, 1.0))) if nmes.size else float("nan")


def plot_ced(curves: dict[str, np.ndarray], path: str | Path, threshold: float = FAILURE_THRESHOLD,
             title: str = "Cumulative error distribution", xlabel: str = "NME (inter-ocular)") -> Path:
    """Write a PNG with one CED curve per method (name -> per-image NMEs); legend entries carry AUC@T."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Best first, so the legend reads as a ranking.
    ranked = sorted(curves.items(), key=lambda item: -auc(item[1], threshold))
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=150)
    colours = plt.get_cmap("tab10").colors
    for k, (name, nmes) in enumerate(ranked):
        x, y = ced_curve(nmes, threshold)
        # Drawn over the axes' frame and unclipped: a method that never gets under T still shows, along y = 0.
        ax.plot(100 * x, y, color=colours[k % len(colours)], linewidth=2.0, zorder=3, clip_on=False,
                label=f"{name}  (AUC@{threshold:g} {auc(nmes, threshold):.3f}, n={len(nmes)})")
    ax.set_xlim(0, 100 * threshold)
    ax.set_ylim(0, 1.01)  # a curve reaching 1 stays visible above the frame line
    ax.set_xlabel(f"{xlabel} (%)")
    ax.set_ylabel("Fraction of images")
    ax.set_title(title)
    ax.grid(True, color="0.88", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if ranked:
        ax.legend(loc="lower right", fontsize=8, frameon=True, framealpha=0.9, edgecolor="none")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


# --- head pose, camera, 3D shape, visibility ------------------------------------------------------------------------

def _wrap_deg(angle: np.ndarray) -> np.ndarray:
    return (np.asarray(angle, np.float64) + 180.0) % 360.0 - 180.0


def pose_errors(R_pred: np.ndarray, R_gt: np.ndarray) -> dict[str, np.ndarray]:
    """Per image: geodesic angle (deg) between the rotations, and |wrap(pred - gt)| of yaw, pitch and roll (deg,
    geometry.rotation_to_pose); R_pred, R_gt (B, 3, 3) -> dict of (B,) arrays."""
    R_pred = np.asarray(R_pred, np.float64).reshape(-1, 3, 3)
    R_gt = np.asarray(R_gt, np.float64).reshape(-1, 3, 3)
    geodesic = np.array([geometry.rotation_angle_deg(a, b) for a, b in zip(R_pred, R_gt)])
    angles_pred = np.array([geometry.rotation_to_pose(R) for R in R_pred]).reshape(-1, 3)
    angles_gt = np.array([geometry.rotation_to_pose(R) for R in R_gt]).reshape(-1, 3)
    axis = np.abs(_wrap_deg(angles_pred - angles_gt))
    return {"geodesic": geodesic, "yaw": axis[:, 0], "pitch": axis[:, 1], "roll": axis[:, 2]}


def focal_error_percent(f_pred: np.ndarray, f_gt: np.ndarray) -> np.ndarray:
    """100 |f_pred - f_gt| / f_gt."""
    f_gt = np.asarray(f_gt, np.float64)
    return 100.0 * np.abs(np.asarray(f_pred, np.float64) - f_gt) / f_gt


def error_3d(pred: np.ndarray, gt: np.ndarray, align: bool = False) -> np.ndarray:
    """Mean Euclidean distance (cm) per shape, (..., N, 3) -> (...); with `align`, after `geometry.similarity_align`."""
    pred = np.asarray(pred, np.float64)
    gt = np.asarray(gt, np.float64)
    if align:
        flat_p, flat_g = pred.reshape(-1, *pred.shape[-2:]), gt.reshape(-1, *gt.shape[-2:])
        pred = np.stack([geometry.similarity_align(p, g) for p, g in zip(flat_p, flat_g)]).reshape(pred.shape)
    return point_errors(pred, gt).mean(axis=-1)


def visibility_scores(pred: np.ndarray, gt: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy and F1 (positive = visible) of (pred >= threshold) against (gt >= threshold), over all points.

    F1 = 2 TP / (2 TP + FP + FN); 1 when there is neither a visible point nor a predicted one.
    """
    p = np.asarray(pred).reshape(-1) >= threshold
    g = np.asarray(gt).reshape(-1) >= threshold
    tp = int(np.sum(p & g))
    wrong = int(np.sum(p != g))
    f1 = 2 * tp / (2 * tp + wrong) if (2 * tp + wrong) else 1.0
    return {"accuracy": float(np.mean(p == g)) if p.size else float("nan"), "f1": float(f1)}


# --- temporal stability -----------------------------------------------------------------------------------------

def jitter(pred: np.ndarray, gt: np.ndarray | None, norm: np.ndarray | float, order: int = 1) -> float:
    """Mean over frames t >= order and points of ||D^order (p - g)_t|| / d_t, D the backward frame difference.

    pred, gt (T, N, 2); norm d (T,) or scalar. The residual p - g removes the true motion, so a tracker that
    follows a moving face perfectly (or sits perfectly still on a still one) scores 0. order 1: frame-to-frame
    change of the error; on a static clip (g constant) that is simply mean ||p_t - p_{t-1}|| / d.
    order 2: second difference, which also ignores an error that drifts smoothly (a lag), leaving the shake.
    For i.i.d. Gaussian noise of std sigma per coordinate, order 1 gives sigma * sqrt(pi) / d.
    """
    residual = np.asarray(pred, np.float64)
    if gt is not None:
        residual = residual - np.asarray(gt, np.float64)
    if residual.shape[0] <= order:
        return float("nan")
    diff = np.diff(residual, n=order, axis=0)
    norm = np.broadcast_to(np.asarray(norm, np.float64), (residual.shape[0],))[order:]
    return float(np.mean(np.linalg.norm(diff, axis=-1).mean(axis=-1) / norm))
