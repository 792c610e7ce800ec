"""Torch twins of the camera maths in core/geometry.py (batched, differentiable, ONNX-exportable).

Same conventions: OpenCV pinhole, X_cam = R @ X + t, pixels with the origin at the image's top-left corner.
Angles here are radians (geometry.py's rotation_z takes degrees).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def cross(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cross product over the last dimension (written out: torch.linalg.cross has no ONNX export)."""
    ax, ay, az = a.unbind(-1)
    bx, by, bz = b.unbind(-1)
    return torch.stack([ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx], dim=-1)


def rotation_from_6d(d6: torch.Tensor) -> torch.Tensor:
    """(..., 6) -> (..., 3, 3): Gram-Schmidt; the first two columns follow d6[:3] and d6[3:] (Zhou et al. 2019)."""
    a, b = d6[..., 0:3], d6[..., 3:6]
    x = F.normalize(a, dim=-1)
    y = F.normalize(b - (x * b).sum(-1, keepdim=True) * x, dim=-1)
    return torch.stack([x, y, cross(x, y)], dim=-1)


def rotation_to_6d(R: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 6): the first two columns, the inverse of `rotation_from_6d`."""
    return torch.cat([R[..., :, 0], R[..., :, 1]], dim=-1)


def rotation_z(angle: torch.Tensor) -> torch.Tensor:
    """(...,) radians -> (..., 3, 3) rotation about the camera's optical axis."""
    c, s = torch.cos(angle), torch.sin(angle)
    zero, one = torch.zeros_like(angle), torch.ones_like(angle)
    return torch.stack([torch.stack([c, -s, zero], -1),
                        torch.stack([s, c, zero], -1),
                        torch.stack([zero, zero, one], -1)], dim=-2)


def intrinsics(focal: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor) -> torch.Tensor:
    """(B,) focal and principal point in pixels -> (B, 3, 3) K for square pixels."""
    zero, one = torch.zeros_like(focal), torch.ones_like(focal)
    return torch.stack([torch.stack([focal, zero, cx], -1),
                        torch.stack([zero, focal, cy], -1),
                        torch.stack([zero, zero, one], -1)], dim=-2)


def to_camera(points: torch.Tensor, R: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Canonical points (B, N, 3), R (B, 3, 3), t (B, 3) -> camera coordinates (B, N, 3)."""
    return points @ R.transpose(-1, -2) + t.unsqueeze(-2)


def project(points_cam: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Camera-space points (B, N, 3) and K (B, 3, 3) -> pixels (B, N, 2)."""
    p = points_cam @ K.transpose(-1, -2)
    return p[..., :2] / p[..., 2:3]


def project_canonical(points: torch.Tensor, K: torch.Tensor, R: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return project(to_camera(points, R, t), K)
