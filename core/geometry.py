"""Camera model, pose maths and axis conventions, written once (see ../shared/conventions.md).

- Canonical space: ICT neutral face, centimetres, +Y up, +Z out of the face.
- Camera: OpenCV pinhole, x right, y down, z forward; X_cam = R @ X_canonical + t (t in cm).
- Image: pixels, origin at the top-left corner (the top-left pixel's centre is (0.5, 0.5)).
- Head pose angles (degrees) are applied in the canonical frame as R = FRONTAL @ Ry(yaw) @ Rx(pitch) @ Rz(roll):
  yaw > 0 turns the face towards the subject's own left (image right for a frontal face),
  pitch > 0 tilts the nose down, roll > 0 tilts the head towards the subject's right shoulder as seen by the camera
  (counter-clockwise about the canonical +Z axis).
- Blender: metres, +Z up; canonical +Y -> Blender +Z, canonical +Z -> Blender -Y; the head enters scaled by 0.01.
"""
from __future__ import annotations

import numpy as np

# A face looking straight into an OpenCV camera: canonical +Y (up) -> camera -y, canonical +Z (out) -> camera -z.
FRONTAL = np.diag([1.0, -1.0, -1.0])
# Blender camera frame = OpenCV camera frame rotated 180 degrees about X (same matrix, by coincidence of axes).
OPENCV_TO_BLENDER_CAMERA = np.diag([1.0, -1.0, -1.0])
# Canonical (Y up, Z out) -> Blender world (Z up, face looking down -Y), including centimetres -> metres.
CANONICAL_TO_BLENDER = 0.01 * np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


def intrinsics(focal_px: float, width: int, height: int, cx: float | None = None, cy: float | None = None) -> np.ndarray:
    """K for square pixels; the principal point defaults to the image centre."""
    return np.array([[focal_px, 0.0, width / 2 if cx is None else cx],
                     [0.0, focal_px, height / 2 if cy is None else cy],
                     [0.0, 0.0, 1.0]])


def focal_from_fov(fov_deg: float, width: int) -> float:
    """Focal length in pixels for a horizontal field of view in degrees."""
    return 0.5 * width / np.tan(np.radians(fov_deg) / 2)


def fov_from_focal(focal_px: float, width: int) -> float:
    return float(np.degrees(2 * np.arctan(0.5 * width / focal_px)))


def focal_px_to_mm(focal_px: float, width: int, sensor_width_mm: float = 36.0) -> float:
    return focal_px * sensor_width_mm / width


def rotation_x(deg: float) -> np.ndarray:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rotation_y(deg: float) -> np.ndarray:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rotation_z(deg: float) -> np.ndarray:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def pose_to_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Canonical -> camera rotation for head angles in degrees (convention in the module docstring)."""
    return FRONTAL @ rotation_y(yaw) @ rotation_x(pitch) @ rotation_z(roll)


def rotation_to_pose(R: np.ndarray) -> tuple[float, float, float]:
    """Inverse of `pose_to_rotation`: (yaw, pitch, roll) in degrees, pitch in [-90, 90]."""
    M = FRONTAL.T @ np.asarray(R, float)  # = Ry(yaw) Rx(pitch) Rz(roll)
    pitch = np.degrees(np.arcsin(np.clip(-M[1, 2], -1, 1)))
    yaw = np.degrees(np.arctan2(M[0, 2], M[2, 2]))
    roll = np.degrees(np.arctan2(M[1, 0], M[1, 1]))
    return float(yaw), float(pitch), float(roll)


def rotation_angle_deg(R_a: np.ndarray, R_b: np.ndarray) -> float:
    """Geodesic angle between two rotations, degrees."""
    cos = (np.trace(np.asarray(R_a).T @ np.asarray(R_b)) - 1) / 2
    return float(np.degrees(np.arccos(np.clip(cos, -1, 1))))


def rotation_from_6d(d6: np.ndarray) -> np.ndarray:
    """Gram-Schmidt of two 3-vectors (Zhou et al. 2019) -> rotation whose first two columns follow them."""
    d6 = np.asarray(d6, float)
    a, b = d6[..., 0:3], d6[..., 3:6]
    x = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b - np.sum(x * b, axis=-1, keepdims=True) * x
    y = b / np.linalg.norm(b, axis=-1, keepdims=True)
    z = np.cross(x, y)
    return np.stack([x, y, z], axis=-1)


def to_camera(points: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Canonical points (N, 3) -> camera coordinates (N, 3)."""
    return np.asarray(points) @ np.asarray(R).T + np.asarray(t)


def project(points_cam: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Camera-space points (N, 3) -> pixel coordinates (N, 2), image origin at the top-left corner."""
    p = np.asarray(points_cam) @ np.asarray(K).T
    return p[..., :2] / p[..., 2:3]


def project_canonical(points: np.ndarray, K: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    return project(to_camera(points, R, t), K)


def rotation_from_vector(omega: np.ndarray) -> np.ndarray:
    """Rodrigues: the rotation by |omega| radians about omega's direction."""
    omega = np.asarray(omega, float)
    angle = float(np.linalg.norm(omega))
    if angle < 1e-12:
        return np.eye(3)
    k = omega / angle
    skew = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(angle) * skew + (1 - np.cos(angle)) * skew @ skew


def fit_pose(points: np.ndarray, pixels: np.ndarray, K: np.ndarray, R: np.ndarray, t: np.ndarray,
             iterations: int = 10) -> tuple[np.ndarray, np.ndarray, float, float]:
    """The camera pose (R, t) that best projects canonical `points` (N, 3) onto `pixels` (N, 2) under K, by
    Levenberg-Marquardt from (R, t). Returns (R, t, RMS pixel error before, after); the start is returned
    unchanged when the fit cannot improve it (fewer than 4 points, points behind the camera, non-finite input).
    Why: the 3D head regresses R and t from pooled features, while its 2D points are read from a fine map and are
    more precise; the pose that explains those points best is the better pose."""
    X, u = np.asarray(points, float), np.asarray(pixels, float)
    K, R, t = np.asarray(K, float), np.asarray(R, float), np.asarray(t, float)

    def residuals(R_: np.ndarray, t_: np.ndarray) -> np.ndarray | None:
        cam = X @ R_.T + t_
        if (cam[:, 2] <= 1e-6).any():
            return None
        return (project(cam, K) - u).ravel()

    r = residuals(R, t) if len(X) >= 4 and np.isfinite(X).all() and np.isfinite(u).all() else None
    if r is None:
        return R, t, float("nan"), float("nan")
    start_rms = cost = float(np.sqrt(np.mean(r ** 2)))
    damping = 1e-3
    fx, fy = K[0, 0], K[1, 1]
    for _ in range(iterations):
        q = X @ R.T
        x, y, z = (q + t).T
        a, b, w = fx / z, fy / z, 1 / z
        # Rows d pixel / d (omega, t) for the left update R <- exp(omega) R, t <- t + dt.
        J = np.empty((len(X), 2, 6))
        J[:, 0] = np.stack([-a * x * w * q[:, 1], a * (q[:, 2] + x * w * q[:, 0]), -a * q[:, 1],
                            a, np.zeros_like(a), -a * x * w], -1)
        J[:, 1] = np.stack([-b * (q[:, 2] + y * w * q[:, 1]), b * y * w * q[:, 0], b * q[:, 0],
                            np.zeros_like(b), b, -b * y * w], -1)
        J = J.reshape(-1, 6)
        H, g = J.T @ J, J.T @ r
        previous = cost
        while damping < 1e6:
            step = -np.linalg.solve(H + damping * np.diag(np.diag(H) + 1e-9), g)
            R_new, t_new = rotation_from_vector(step[:3]) @ R, t + step[3:]
            r_new = residuals(R_new, t_new)
            if r_new is not None and np.sqrt(np.mean(r_new ** 2)) < cost:
                R, t, r, cost = R_new, t_new, r_new, float(np.sqrt(np.mean(r_new ** 2)))
                damping = max(damping / 10, 1e-7)
                break
            damping *= 10
        if previous - cost < 1e-4 * previous:
            break
    return R, t, start_rms, cost


def opencv_to_blender_camera_matrix(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """4x4 world matrix of a Blender camera looking at a head placed at the Blender origin.

    The head (canonical space) is placed in Blender with CANONICAL_TO_BLENDER; the camera that sees it as the
    OpenCV pose (R, t) describes sits at canonical position -R^T t with orientation R^T, converted to Blender axes.
    """
    R = np.asarray(R, float)
    t = np.asarray(t, float)
    cam_rot_canonical = R.T @ OPENCV_TO_BLENDER_CAMERA  # Blender-camera axes expressed in canonical space
    cam_pos_canonical = -R.T @ t
    A = CANONICAL_TO_BLENDER / 0.01  # pure rotation part
    M = np.eye(4)
    M[:3, :3] = A @ cam_rot_canonical
    M[:3, 3] = CANONICAL_TO_BLENDER @ cam_pos_canonical
    return M


def similarity_from_box(box: np.ndarray, out_size: int, scale: float = 1.0) -> np.ndarray:
    """2x3 affine mapping an image box (x0, y0, x1, y1) to an out_size square crop (aspect kept, centred)."""
    x0, y0, x1, y1 = np.asarray(box, float)
    side = max(x1 - x0, y1 - y0) * scale
    s = out_size / side
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return np.array([[s, 0, out_size / 2 - s * cx], [0, s, out_size / 2 - s * cy]])


def similarity_transform(source: np.ndarray, target: np.ndarray, scale: bool = True,
                         subset: np.ndarray | None = None) -> tuple[float, np.ndarray, np.ndarray]:
    """(s, R, t) of the similarity x -> s R x + t that minimises sum ||s R x_i + t - y_i||^2 over points (N, d),
    d = 2 or 3 (Umeyama 1991); with scale=False the rigid motion (s = 1); with `subset` (indices or a mask), fitted
    on those points only.

    2D-supervised 3D points are only known up to such a transform (a bigger head further away projects alike).
    """
    x = np.asarray(source, np.float64)
    y = np.asarray(target, np.float64)
    if subset is not None:
        x, y = x[subset], y[subset]
    mx, my = x.mean(0), y.mean(0)
    xc, yc = x - mx, y - my
    U, S, Vt = np.linalg.svd(yc.T @ xc / len(x))
    D = np.eye(x.shape[1])
    D[-1, -1] = np.sign(np.linalg.det(U @ Vt)) or 1.0  # a rotation, not a reflection
    R = U @ D @ Vt
    var_x = (xc ** 2).sum() / len(x)
    s = float(np.trace(np.diag(S) @ D) / var_x) if var_x > 0 and scale else 1.0
    return s, R, my - s * R @ mx


def similarity_align(source: np.ndarray, target: np.ndarray, scale: bool = True,
                     subset: np.ndarray | None = None) -> np.ndarray:
    """`source` (N, 3) mapped onto `target` by `similarity_transform` (same arguments)."""
    s, R, t = similarity_transform(source, target, scale, subset)
    return s * np.asarray(source, np.float64) @ R.T + t


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (V, 3) of a triangle mesh (numpy only, so Blender can use it too)."""
    vertices = np.asarray(vertices, np.float32)
    a, b, c = (vertices[triangles[:, k]] for k in range(3))
    face_normals = np.cross(b - a, c - a)  # length = 2 x area: area weighting for free
    normals = np.zeros((len(vertices), 3))
    for corner in range(3):
        for axis in range(3):
            normals[:, axis] += np.bincount(triangles[:, corner], face_normals[:, axis], minlength=len(vertices))
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    # A vertex with no area around it (unused, or degenerate triangles) gets +Y rather than a zero normal.
    return np.where(length > 1e-12, normals / np.maximum(length, 1e-12), [0.0, 1.0, 0.0]).astype(np.float32)
