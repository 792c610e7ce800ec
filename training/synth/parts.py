"""The contract between accessory generators and the renderer: one textured triangle mesh per part.

A part lives in one of three frames:
- "head": the head's canonical frame (ICT: cm, +Y up, +Z out of the face); posed with the head's R, t.
- "body": canonical axes and origin at the neutral body pose; posed with the torso's rotation about the neck anchor
  (`training.synth.accessories.neck_anchor`).
- "camera": OpenCV camera space (x right, y down, z forward), cm; drawn as it is.

Textures are stored as images (row 0 is the top, v = 1). A 4th channel is alpha: alpha < 0.5 is cut out
(hair strands, beard edges); `glasses_lens` parts may carry a uniform alpha below 0.5 for a renderer that blends.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAMES = ("head", "body", "camera")


@dataclass
class MeshPart:
    name: str                      # "hair_cap", "hair_cards", "beard", "glasses_frame", "torso", "hand", ...
    vertices: np.ndarray           # (N, 3) float32, cm, in the frame named by `frame`
    triangles: np.ndarray          # (M, 3) int32
    normals: np.ndarray | None     # (N, 3) or None (renderer computes smooth normals)
    uv: np.ndarray | None          # (N, 2) in [0,1] for `texture`
    color: tuple[float, float, float] = (0.5, 0.5, 0.5)  # linear-ish RGB 0..1 albedo when no texture
    texture: np.ndarray | None = None   # (H, W, 3 or 4) uint8; 4th channel = alpha, alpha < 0.5 is cut out
    specular: float = 0.1
    shininess: float = 16.0
    frame: str = "head"            # "head" | "body" | "camera" (see the module docstring)
    occludes_landmarks: bool = True   # counts as an external occluder for landmark visibility
    double_sided: bool = False

    @property
    def num_triangles(self) -> int:
        return int(len(self.triangles))

    def validate(self) -> None:
        """Raise ValueError naming the first broken invariant (dtypes, shapes, index range, finiteness)."""
        v, t = self.vertices, self.triangles
        if v.dtype != np.float32 or v.ndim != 2 or v.shape[1] != 3:
            raise ValueError(f"{self.name}: vertices must be (N, 3) float32, got {v.shape} {v.dtype}")
        if t.dtype != np.int32 or t.ndim != 2 or t.shape[1] != 3:
            raise ValueError(f"{self.name}: triangles must be (M, 3) int32, got {t.shape} {t.dtype}")
        if not np.isfinite(v).all():
            raise ValueError(f"{self.name}: non-finite vertices")
        if t.size and (t.min() < 0 or t.max() >= len(v)):
            raise ValueError(f"{self.name}: triangle index out of range 0..{len(v) - 1}")
        if self.normals is not None and (self.normals.shape != v.shape or not np.isfinite(self.normals).all()):
            raise ValueError(f"{self.name}: normals must be finite and shaped like the vertices")
        if self.uv is not None:
            if self.uv.shape != (len(v), 2) or not np.isfinite(self.uv).all():
                raise ValueError(f"{self.name}: uv must be finite (N, 2)")
            if self.uv.min() < -1e-3 or self.uv.max() > 1 + 1e-3:
                raise ValueError(f"{self.name}: uv outside [0, 1]")
        if self.texture is not None and (self.texture.dtype != np.uint8 or self.texture.ndim != 3
                                         or self.texture.shape[2] not in (3, 4)):
            raise ValueError(f"{self.name}: texture must be (H, W, 3|4) uint8")
        if self.frame not in FRAMES:
            raise ValueError(f"{self.name}: frame must be one of {FRAMES}, got {self.frame!r}")
