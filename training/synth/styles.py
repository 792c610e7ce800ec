"""Annotation styles: how real datasets disagree about where a landmark is, imitated on synthetic samples.

The true canonical surface points stay known (style `canonical`); a style moves the 2D annotation the way a
dataset's annotators would, so the semantic correction network has real inconsistencies to absorb and we can
measure whether it does:

- `ibug2d` (300-W, 300-VW, MERL-RAV): jaw points slide to the 2D face silhouette ("landmark marching"), so under
  yaw the far-side jaw lies on the outline instead of on its hidden surface point; brows on their upper edge.
- `aflw3d` (AFLW2000-3D): 3D-consistent fixed surface points, projected even when hidden; its 3DMM-fitted jaw sits
  a little lower than ICT's.
- `wflw` (WFLW, 98 points): 33-point contour on the silhouette, like 300-W.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from core import geometry
from core.facemodel import FaceModel, load_facemodel
from core.layouts import Layout, load_layout

# Candidate vertices for the silhouette search: the face area minus the ears, within this height band (cm).
SILHOUETTE_BAND_CM = 0.45
SILHOUETTE_DEPTH_CM = 7.0  # how far back from the landmark (towards the ear) the outline may be sought


@dataclass(frozen=True)
class AnnotationStyle:
    name: str
    layout: str
    silhouette_points: tuple[int, ...] = ()            # contour points that slide to the 2D outline
    offsets: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # contour name -> canonical cm
    description: str = ""


STYLES: dict[str, AnnotationStyle] = {s.name: s for s in [
    AnnotationStyle("canonical", "ibug68", description="exact projections of the fixed canonical surface points"),
    AnnotationStyle("ibug2d", "ibug68", silhouette_points=tuple(i for i in range(17) if i != 8),
                    offsets={"brow_right": (0, 0.3, 0), "brow_left": (0, 0.3, 0), "nose_base": (0, -0.1, 0)},
                    description="300-W: jaw on the 2D silhouette, brows on their upper edge"),
    AnnotationStyle("aflw3d", "ibug68", offsets={"jaw": (0, -0.35, 0.1)},
                    description="AFLW2000-3D: 3D-consistent points, jaw slightly lower"),
    AnnotationStyle("wflw", "wflw98", silhouette_points=tuple(i for i in range(33) if i != 16),
                    description="WFLW: 33-point contour on the 2D silhouette"),
]}


def get_style(name: str) -> AnnotationStyle:
    if name not in STYLES:
        raise ValueError(f"Unknown annotation style '{name}'; known: {', '.join(STYLES)}")
    return STYLES[name]


@functools.lru_cache(maxsize=8)
def _silhouette_candidates(layout_name: str, points: tuple[int, ...], model_path: str) -> list[np.ndarray]:
    """For each sliding point, the face vertices on its height band and side: where its outline can be."""
    model = load_facemodel(model_path)
    layout = load_layout(layout_name)
    canonical = layout.canonical_points(model)
    face = model.neutral[:9409]
    out = []
    for i in points:
        p = canonical[i]
        band = np.abs(face[:, 1] - p[1]) < SILHOUETTE_BAND_CM
        side = face[:, 0] * np.sign(p[0]) > abs(p[0]) * 0.5
        depth = (face[:, 2] > p[2] - SILHOUETTE_DEPTH_CM) & (face[:, 2] < p[2] + 2.0)
        out.append(np.flatnonzero(band & side & depth))
    return out


def style_points(style: AnnotationStyle, vertices: np.ndarray, K: np.ndarray, R: np.ndarray, t: np.ndarray,
                 model: FaceModel | None = None) -> np.ndarray:
    """2D annotation (N, 2) of the style's layout for a posed face, as that dataset's annotators would click."""
    model = model or load_facemodel()
    layout: Layout = load_layout(style.layout)
    points = layout.points(vertices, model.triangles)
    for contour, offset in style.offsets.items():
        points[layout.contours[contour]] += np.asarray(offset)
    uv = geometry.project_canonical(points, K, R, t)
    if style.silhouette_points:
        candidates = _silhouette_candidates(style.layout, style.silhouette_points, str(model.path))
        for i, cand in zip(style.silhouette_points, candidates):
            if cand.size == 0:
                continue
            # Outward in the image: where the canonical side direction (+-X) points after posing.
            outward = (R @ np.array([np.sign(points[i, 0]), 0.0, 0.0]))[:2]
            cand_uv = geometry.project_canonical(vertices[cand], K, R, t)
            extreme = cand_uv[np.argmax(cand_uv @ outward)]
            # On the near side the landmark itself may be the outline: keep whichever lies further out.
            if extreme @ outward > uv[i] @ outward:
                uv[i] = extreme
    return uv.astype(np.float32)
