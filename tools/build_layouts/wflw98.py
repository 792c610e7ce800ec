"""The wflw98 layout: WFLW's 98 points, the 68 shared with iBUG copied from ibug68, the other 30 placed on the
surface (jaw and eyelid middles interpolated along their curves, the lower brow edge walked down from the upper,
the pupils on the cornea along each eye's axis)."""
from __future__ import annotations

import numpy as np

from core.facemodel import FaceModel, load_facemodel
from core.layouts import Layout, closest_surface_point
from tools.build_layouts.ibug68 import build_ibug68

# WFLW index of each iBUG-68 point (the usual WFLW->68 map: jaw every second point, upper brow edges, nose,
# six of the eight points per eye, all 20 mouth points).
IBUG68_IN_WFLW98: list[int] = (
    list(range(0, 33, 2)) + list(range(33, 38)) + list(range(42, 47)) + list(range(51, 60))
    + [60, 61, 63, 64, 65, 67] + [68, 69, 71, 72, 73, 75] + list(range(76, 96))
)

WFLW98_CONTOURS: dict[str, list[int]] = {
    "jaw": list(range(0, 33)),
    "brow_right": list(range(33, 42)) + [33], "brow_left": list(range(42, 51)) + [42],
    "nose_bridge": list(range(51, 55)), "nose_base": list(range(55, 60)),
    "eye_right": list(range(60, 68)) + [60], "eye_left": list(range(68, 76)) + [68],
    "lips_outer": list(range(76, 88)) + [76], "lips_inner": list(range(88, 96)) + [88],
}

# WFLW brows are closed loops: 5 points on the upper edge, then 4 on the lower edge walking back. The lower
# points sit under the upper ones from the blunt inner end (brow head) outwards; the outer tail is one tip.
# (lower WFLW index, upper WFLW index it sits under, brow height there in cm): a brow is ~1 cm tall at its head
# and thins towards the tail; 0.6-0.8 cm is what the neutral ICT brow ridge suggests for the annotated band.
BROW_LOWER_EDGE: list[tuple[int, int, float]] = [
    (38, 37, 0.8), (39, 36, 0.75), (40, 35, 0.7), (41, 34, 0.6),
    (50, 42, 0.8), (49, 43, 0.75), (48, 44, 0.7), (47, 45, 0.6),
]

# WFLW points between two iBUG points on one curve: (WFLW index, the four WFLW indices p0 p1 p2 p3 around it
# along the curve, with the new point halfway between p1 and p2; ends repeat the end point).
def _curve_midpoints() -> list[tuple[int, tuple[int, int, int, int]]]:
    mids = []
    for i in range(1, 32, 2):  # jaw
        mids.append((i, (max(i - 3, 0), i - 1, i + 1, min(i + 3, 32))))
    mids += [(62, (60, 61, 63, 64)), (66, (64, 65, 67, 60)),   # right eye: upper / lower lid middles
             (70, (68, 69, 71, 72)), (74, (72, 73, 75, 68))]   # left eye
    return mids



def _triangle_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    corners = vertices[triangles]
    n = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def _pupil(model: FaceModel, side: str) -> tuple[int, np.ndarray]:
    """Pupil centre of the eye on `side` ("Left"/"Right"), as (triangle, barycentric) on the cornea.

    The eye's optical axis runs from the eyeball's centre (a sphere fitted to the sclera) through the middle of
    the iris's front disc. The ICT iris has a hole for the pupil (radius ~0.14 cm), so there is no surface at
    the pupil centre itself; the axis meets the cornea (part of the sclera mesh) 0.18 cm in front of the iris
    plane, which is close to where the refracted (apparent) pupil sits and stays centred in every view.
    """
    verts = model.neutral.astype(np.float64)
    sclera_tris = np.flatnonzero(model.material_mask(f"M_Sclera{side}"))
    sclera = verts[np.unique(model.triangles[sclera_tris])]
    lhs = np.c_[2 * sclera, np.ones(len(sclera))]
    centre = np.linalg.lstsq(lhs, (sclera ** 2).sum(1), rcond=None)[0][:3]
    # The iris material also wraps round the back of the eyeball, so its vertex mean is not the pupil.
    iris = verts[np.unique(model.triangles[model.material_mask(f"M_Iris{side}")])]
    axis = np.array([0.0, 0.0, 1.0])
    for _ in range(5):  # the front disc is the iris's frontmost 0.3 cm along the current axis estimate
        along = (iris - centre) @ axis
        disc = iris[along > along.max() - 0.3]
        axis = disc.mean(0) - centre
        axis /= np.linalg.norm(axis)
    hit_tri, hit_bary = _ray_hit(centre + 3.0 * axis, -axis, verts, model.triangles[sclera_tris])
    return int(sclera_tris[hit_tri]), hit_bary


def _ray_hit(origin: np.ndarray, direction: np.ndarray, verts: np.ndarray,
             triangles: np.ndarray) -> tuple[int, np.ndarray]:
    """First triangle hit by a ray (Moller-Trumbore over all triangles), as (index, barycentric)."""
    a, b, c = (verts[triangles[:, k]] for k in range(3))
    e1, e2 = b - a, c - a
    pvec = np.cross(direction, e2)
    det = (e1 * pvec).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        tvec = origin - a
        u = (tvec * pvec).sum(1) / det
        qvec = np.cross(tvec, e1)
        v = (qvec * direction).sum(1) / det
        t = (e2 * qvec).sum(1) / det
    hit = (np.abs(det) > 1e-12) & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0)
    if not hit.any():
        raise RuntimeError("pupil ray misses the cornea")
    best = np.flatnonzero(hit)[np.argmin(t[hit])]
    return int(best), np.array([1 - u[best] - v[best], u[best], v[best]])


def build_wflw98() -> Layout:
    """WFLW 98 points: the 68 shared with iBUG copied from ibug68, the other 30 placed on the surface."""
    model = load_facemodel()
    verts = model.neutral.astype(np.float64)
    face = model.material_mask("M_Face")
    ibug = build_ibug68()

    tris = np.full(98, -1)
    bary = np.zeros((98, 3))
    tris[IBUG68_IN_WFLW98] = ibug.triangles
    bary[IBUG68_IN_WFLW98] = ibug.barycentric

    def position(i: int) -> np.ndarray:
        return bary[i] @ verts[model.triangles[tris[i]]]

    # Jaw and eyelid middles: Catmull-Rom halfway between the two neighbours (follows the curve's bend
    # rather than cutting the chord), snapped to the closest point of the face surface.
    mids = _curve_midpoints()
    targets = np.array([0.5625 * (position(p1) + position(p2)) - 0.0625 * (position(p0) + position(p3))
                        for _, (p0, p1, p2, p3) in mids])
    idx = [i for i, _ in mids]
    tris[idx], bary[idx] = closest_surface_point(targets, verts, model.triangles, face)

    # Lower brow edge: walk down the surface from the upper-edge point by the brow height, in two steps so
    # the path bends with the brow ridge.
    normals = _triangle_normals(verts, model.triangles)
    lower = [lo for lo, _, _ in BROW_LOWER_EDGE]
    points = np.array([position(up) for _, up, _ in BROW_LOWER_EDGE])
    point_tris = tris[[up for _, up, _ in BROW_LOWER_EDGE]]
    heights = np.array([h for _, _, h in BROW_LOWER_EDGE])
    for _ in range(2):
        n = normals[point_tris]
        down = np.array([0.0, -1.0, 0.0]) - n * (-n[:, 1:2])
        down /= np.linalg.norm(down, axis=1, keepdims=True)
        point_tris, point_bary = closest_surface_point(points + down * heights[:, None] / 2, verts,
                                                       model.triangles, face)
        points = np.einsum("nk,nkd->nd", point_bary, verts[model.triangles[point_tris]])
    tris[lower], bary[lower] = point_tris, point_bary

    # WFLW 96 is the subject's right pupil (x < 0), 97 the left.
    for i, side in ((96, "Right"), (97, "Left")):
        tris[i], bary[i] = _pupil(model, side)

    assert (tris >= 0).all()
    return Layout("wflw98", tris, bary.astype(np.float32), names=tuple(f"wflw_{i}" for i in range(98)),
                  contours=WFLW98_CONTOURS,
                  description="WFLW 98-point markup: iBUG-shared points from ibug68, jaw/eyelid middles "
                              "interpolated on the surface, lower brow edge 0.6-0.8 cm below the upper, "
                              "pupils on the cornea along the eye axis (see assets/layouts/README.md).")
