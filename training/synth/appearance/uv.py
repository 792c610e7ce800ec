"""Texture-space drawing for the ICT UV tiles: the tile of each material, rasterising per-vertex values over UV
triangles, UV islands, smooth curves and their distance fields, soft blobs and polygon masks, and the size check
and uint8 conversion every texture shares."""
from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage
from scipy.interpolate import CubicSpline
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

# UV layout of ICT-FaceKit Light (measured from the mesh): UVs are UDIM-like, one unit tile along u per material
# group: M_Face u 0..1, M_BackHead 1..2, M_GumsTongue 2..3, M_Teeth 3..4, M_LacrimalFluid 4..6, M_EyeLashes 6..7,
# while the scleras, irises, eye blend and eye occlusion each fill their own 0..1 square.
# - Face tile: an upright frontal "photo" of the face filling the square: forehead at the top (v = 1), neck at the
#   bottom, the subject's right side on the left (u < 0.5), ears at the left/right edges (v 0.45..0.68), eyes at
#   v ~ 0.72 (nearly closed slits), brows ~ 0.80, nose tip ~ 0.60, mouth ~ 0.42, chin ~ 0.28. It is two islands
#   (the inner face and an outer ring) that meet without a gap. About 24 texels per cm at 512 in the central face.
# - Back-head tile: the scalp (crown near (0.5, 0.85), running down to the nape at v ~ 0.3), the neck (band along
#   the bottom), the mouth socket (top-left), both eye sockets (top-right) and two small skin pieces at the ears.
# - Iris: a disc of radius 0.5 about (0.5, 0.5), r_uv ~ 0.66 * r_cm, with the pupil hole at r_uv 0.09; the corners
#   hold the inside of the eye (pupil tube, back of the iris). Sclera: a disc about (0.5, 0.5) whose centre is the
#   front (the cornea bulge, covering the iris out to r_uv ~ 0.15) and whose rim is the back of the eyeball.
# Texture convention: row 0 of a returned image is v = 1 (the usual top-down image order) and column 0 is u = tile;
# a renderer samples pixel ((u - tile) * size, (1 - v) * size), i.e. texture coordinate (u - tile, 1 - v) (or
# (u, 1 - v) with repeat wrapping).
MATERIAL_TILES: dict[str, int] = {
    "M_Face": 0, "M_BackHead": 1, "M_GumsTongue": 2, "M_Teeth": 3, "M_LacrimalFluid": 4, "M_EyeLashes": 6,
    "M_ScleraLeft": 0, "M_ScleraRight": 0, "M_IrisLeft": 0, "M_IrisRight": 0, "M_EyeBlend": 0, "M_EyeOcclusion": 0,
}


def smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def rasterize(uv_tris: np.ndarray, values: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Interpolate per-corner `values` (T, 3, C) over triangles `uv_tris` (T, 3, 2) into a (size, size, C) map.

    Texels no triangle covers take the nearest covered texel's value, so that filtering never reads garbage.
    """
    pts = np.stack([uv_tris[..., 0] * size - 0.5, (1 - uv_tris[..., 1]) * size - 0.5], -1)
    ids = np.full((size, size), -1, np.int32)
    for i, tri in enumerate(np.round(pts * 16).astype(np.int32)):
        cv2.fillConvexPoly(ids, tri, i, cv2.LINE_8, 4)
    covered = ids >= 0
    rows, cols = np.nonzero(covered)
    t = ids[rows, cols]
    a, b, c = pts[t, 0], pts[t, 1], pts[t, 2]
    v0, v1, v2 = b - a, c - a, np.stack([cols, rows], -1) - a
    d00, d01, d11 = (v0 * v0).sum(1), (v0 * v1).sum(1), (v1 * v1).sum(1)
    d20, d21 = (v2 * v0).sum(1), (v2 * v1).sum(1)
    den = d00 * d11 - d01 * d01
    den = np.where(np.abs(den) < 1e-12, 1e-12, den)
    w1 = (d11 * d20 - d01 * d21) / den
    w2 = (d00 * d21 - d01 * d20) / den
    w = np.clip(np.stack([1 - w1 - w2, w1, w2], -1), 0, 1)
    w /= np.maximum(w.sum(1, keepdims=True), 1e-9)
    out = np.zeros((size, size, values.shape[-1]), np.float32)
    out[rows, cols] = np.einsum("nk,nkc->nc", w, values[t])
    _, (ir, ic) = ndimage.distance_transform_edt(~covered, return_indices=True)
    return out[ir, ic], covered


def uv_islands(tri_uv: np.ndarray) -> np.ndarray:
    """Connected UV island label per triangle (triangles sharing a UV index are connected)."""
    n = int(tri_uv.max()) + 1
    rows = np.concatenate([tri_uv[:, 0], tri_uv[:, 1]])
    cols = np.concatenate([tri_uv[:, 1], tri_uv[:, 2]])
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels[tri_uv[:, 0]]


def blob(shape: tuple[int, int], center: np.ndarray, radii: tuple[float, float]) -> np.ndarray:
    """Axis-aligned Gaussian bump (1 at `center`, pixel coords x, y) with 1-sigma `radii`."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    u, v = (xx - center[0]) / radii[0], (yy - center[1]) / radii[1]
    return np.exp(-0.5 * (u * u + v * v)).astype(np.float32)


def dense_curve(points: np.ndarray, n: int = 48, extend: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Smooth curve through `points` (M, 2), parametrised 0..1 by chord length, optionally extrapolated."""
    d = np.r_[0, np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))]
    spline = CubicSpline(d / d[-1], points, bc_type="natural")
    return spline(np.linspace(-extend[0], 1 + extend[1], n)).astype(np.float32)


def closed_curve(points: np.ndarray, n: int = 96) -> np.ndarray:
    """Smooth closed curve through `points` (M, 2), as a polygon of n vertices."""
    closed = np.concatenate([points, points[:1]])
    d = np.r_[0, np.cumsum(np.linalg.norm(np.diff(closed, axis=0), axis=1))]
    return CubicSpline(d, closed, bc_type="periodic")(np.linspace(0, d[-1], n, endpoint=False)).astype(np.float32)


def curve_field(curve: np.ndarray, xs: np.ndarray, ys: np.ndarray, t_range: tuple[float, float] = (0.0, 1.0)
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distance to a polyline, the curve parameter of the closest point, and the side (+1 left of travel)."""
    p = np.stack([xs.ravel(), ys.ravel()], -1).astype(np.float32)[:, None, :]
    a, b = curve[None, :-1], curve[None, 1:]
    ab = b - a
    s = np.clip(((p - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-9), 0, 1)
    closest = a + s[..., None] * ab
    dist = np.linalg.norm(p - closest, axis=-1)
    k = dist.argmin(1)
    idx = np.arange(len(p))
    t = (k + s[idx, k]) / (len(curve) - 1)
    cross = ab[0, k, 0] * (p[idx, 0, 1] - a[0, k, 1]) - ab[0, k, 1] * (p[idx, 0, 0] - a[0, k, 0])
    shape = xs.shape
    return (dist[idx, k].reshape(shape), (t_range[0] + t * (t_range[1] - t_range[0])).reshape(shape),
            np.sign(cross).reshape(shape))


def bbox(points: np.ndarray, margin: float, size: int) -> tuple[slice, slice]:
    lo = np.floor(points.min(0) - margin).astype(int)
    hi = np.ceil(points.max(0) + margin).astype(int) + 1
    lo, hi = np.clip(lo, 0, size), np.clip(hi, 0, size)
    return slice(lo[1], hi[1]), slice(lo[0], hi[0])


def box_grid(box: tuple[slice, slice]) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[box[0], box[1]]
    return xs.astype(np.float32), ys.astype(np.float32)


def polygon_mask(shape: tuple[int, int], points: np.ndarray, blur: float) -> np.ndarray:
    m = np.zeros(shape, np.float32)
    cv2.fillPoly(m, [np.round(points * 16).astype(np.int32)], 1.0, cv2.LINE_AA, 4)
    return cv2.GaussianBlur(m, (0, 0), blur) if blur > 0 else m


def check_size(size: int) -> None:
    if size < 64 or size % 4:
        raise ValueError(f"texture size must be a multiple of 4 and at least 64, got {size}")


def to_uint8(img: np.ndarray) -> np.ndarray:
    return cv2.convertScaleAbs(img, alpha=255.0)
