"""Build the built-in layout JSON files in assets/layouts/ from the face model.

    python -m training.build_layouts            # rewrites assets/layouts/ibug68.json (and the others)
    python -m training.build_layouts wflw98     # just one
    python -m training.build_layouts frl --frl-root ../shared/realfaces/frl_ccby   # placed from annotated photos

How each layout is placed is described in assets/layouts/README.md.
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree

from core import geometry
from core.facemodel import NARROW_FACE_VERTICES, FaceModel, find_facemodel, load_facemodel
from core.layouts import IBUG68_CONTOURS, LAYOUTS_DIR, Layout, closest_surface_point, load_layout, vertex_to_triangle
from core.paths import REPO_DIR

log = logging.getLogger(__name__)

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


def _ict_landmark_vertices() -> list[int]:
    return json.loads((find_facemodel().parent / "vertex_indices.json").read_text())["idx_to_landmark_verts"]


def build_ibug68() -> Layout:
    """iBUG 300-W 68 points from ICT's own `idx_to_landmark_verts` (vertex_indices.json beside the npz)."""
    model = load_facemodel()
    tris, bary = vertex_to_triangle(_ict_landmark_vertices(), model.triangles)
    return Layout("ibug68", tris, bary, names=tuple(f"ibug_{i}" for i in range(68)), contours=IBUG68_CONTOURS,
                  description="iBUG 300-W 68-point markup on fixed surface points (ICT idx_to_landmark_verts).")


def _narrow_face_mask(model: FaceModel) -> np.ndarray:
    """M_Face triangles whose three corners are all in ICT's narrow face area (vertices 0-6705)."""
    return model.material_mask("M_Face") & (model.triangles < NARROW_FACE_VERTICES.stop).all(1)


# Closed iBUG loops that separate the outer skin from skin that curls inwards: the inner lip line and the
# eyelid margins. Behind them M_Face continues as the inner lips and the inner eyelids.
INNER_LOOPS_IBUG = (list(range(60, 68)), list(range(36, 42)), list(range(42, 48)))


def _outer_skin_mask(model: FaceModel, mask: np.ndarray) -> np.ndarray:
    """The part of `mask` reachable from the nose tip without crossing the lip line or an eyelid margin.

    Each loop is closed along the mesh by shortest edge paths between its consecutive landmark vertices; two
    triangles are neighbours when they share an edge that is not on a loop.
    """
    tris = model.triangles[mask]
    verts = model.neutral.astype(np.float64)
    edges = np.sort(np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]]), axis=1)
    unique, inverse = np.unique(edges, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    n = model.num_vertices
    lengths = np.linalg.norm(verts[unique[:, 0]] - verts[unique[:, 1]], axis=1)
    graph = coo_matrix((lengths, (unique[:, 0], unique[:, 1])), shape=(n, n)).tocsr()

    landmarks = _ict_landmark_vertices()
    blocked: set[tuple[int, int]] = set()
    for loop in INNER_LOOPS_IBUG:
        ids = [landmarks[i] for i in loop]
        _, pred = dijkstra(graph, directed=False, indices=ids, return_predecessors=True)
        for k, start in enumerate(ids):
            v = ids[(k + 1) % len(ids)]
            while v != start:
                u = int(pred[k, v])
                if u < 0:
                    raise RuntimeError(f"no mesh path between iBUG loop vertices {start} and {ids[(k + 1) % len(ids)]}")
                blocked.add((min(u, v), max(u, v)))
                v = u

    # Triangle adjacency through unblocked edges shared by exactly two triangles.
    tri_of_edge = np.tile(np.arange(len(tris)), 3)
    order = np.argsort(inverse, kind="stable")
    edge_sorted, tri_sorted = inverse[order], tri_of_edge[order]
    pair = np.flatnonzero(edge_sorted[:-1] == edge_sorted[1:])
    open_edge = np.array([tuple(unique[e]) not in blocked for e in edge_sorted[pair]], bool)
    a, b = tri_sorted[pair][open_edge], tri_sorted[pair + 1][open_edge]
    adjacency = coo_matrix((np.ones(len(a)), (a, b)), shape=(len(tris), len(tris)))
    _, label = connected_components(adjacency, directed=False)
    nose_tip = landmarks[30]
    seed = int(np.flatnonzero((tris == nose_tip).any(1))[0])
    outer = np.zeros(len(model.triangles), bool)
    outer[np.flatnonzero(mask)[label == label[seed]]] = True
    return outer


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


def sample_surface(vertices: np.ndarray, triangles: np.ndarray, count: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`count` uniform random points on the surface of `triangles`: (triangle rows, barycentric, positions)."""
    corners = vertices[triangles]
    area = 0.5 * np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    rows = rng.choice(len(triangles), size=count, p=area / area.sum())
    r1, r2 = rng.random(count), rng.random(count)
    s = np.sqrt(r1)
    bary = np.stack([1 - s, s * (1 - r2), s * r2], 1)
    return rows, bary, np.einsum("nk,nkd->nd", bary, corners[rows])


def farthest_point_sampling(points: np.ndarray, count: int, start: int = 0) -> np.ndarray:
    """Indices of `count` points picked greedily, each the farthest from those already picked."""
    picked = np.empty(count, int)
    picked[0] = start
    dist = np.linalg.norm(points - points[start], axis=1)
    for k in range(1, count):
        picked[k] = int(np.argmax(dist))
        np.minimum(dist, np.linalg.norm(points - points[picked[k]], axis=1), out=dist)
    return picked


DENSE_POINTS = 3000
DENSE_CANDIDATES = 60000
DENSE_SEED = 0


def build_dense() -> Layout:
    """~3000 evenly spread points over the narrow face area's outer skin, the same on every run.

    Area-weighted random candidates (fixed seed) thinned by farthest-point sampling started at the candidate
    nearest the nose tip; the result is a near-uniform blue-noise cover of the skin. The inner lips and inner
    eyelids (M_Face behind the lip line and the lid margins) are left out.
    """
    model = load_facemodel()
    verts = model.neutral.astype(np.float64)
    face_tris = np.flatnonzero(_outer_skin_mask(model, _narrow_face_mask(model)))
    rows, bary, points = sample_surface(verts, model.triangles[face_tris], DENSE_CANDIDATES,
                                        np.random.default_rng(DENSE_SEED))
    nose_tip = verts[_ict_landmark_vertices()[30]]
    start = int(np.argmin(np.linalg.norm(points - nose_tip, axis=1)))
    keep = farthest_point_sampling(points, DENSE_POINTS, start)
    # Order the points in 1 cm rows from the top, each from the subject's right (image left), like a page.
    keep = keep[np.lexsort((points[keep, 0], -np.round(points[keep, 1], 0)))]
    return Layout("dense", face_tris[rows[keep]], bary[keep].astype(np.float32),
                  description=f"{DENSE_POINTS} evenly spread points on the narrow face area (M_Face, vertices "
                              f"0-6705) without the inner lips and eyelids: area-weighted samples thinned by "
                              f"farthest-point sampling, seed {DENSE_SEED}.")


# FRL London photos with 189-point .tem templates (DeBruine & Jones 2017, CC BY 4.0), and the template's names.
FRL_ROOT = REPO_DIR.parent / "shared" / "realfaces" / "frl_ccby"
FRL_NAMES_FILE = "frl_template_points.csv"
# FRL template points that are also points of a built-in layout: they fit each photo's camera. FRL's left and
# right are the image's, so its left eye is the subject's right eye (iBUG 36-39, x < 0 on the ICT face).
FRL_ANCHORS: dict[int, tuple[str, int]] = {
    18: ("ibug68", 36), 22: ("ibug68", 39), 23: ("ibug68", 42), 27: ("ibug68", 45),   # eye corners
    87: ("ibug68", 48), 93: ("ibug68", 54), 90: ("ibug68", 51), 106: ("ibug68", 57),  # mouth corners, lip middles
    55: ("ibug68", 33), 129: ("ibug68", 8),                                          # under the nose, chin
    0: ("wflw98", 96), 1: ("wflw98", 97),                                            # pupils
}
FRL_OUTER_EYE_CORNERS = (18, 27)
# Surfaces a photo's points are cast onto, in groups. A layout point is snapped onto the group that most of its
# casts hit; a point cast mostly into the mouth is not a surface point of the closed-mouth neutral face.
FRL_SURFACES: dict[str, tuple[str, ...]] = {
    "skin": ("M_Face", "M_BackHead"),
    "eye": ("M_ScleraLeft", "M_ScleraRight", "M_IrisLeft", "M_IrisRight"),
    "mouth": ("M_Teeth", "M_GumsTongue"),
}
FRL_MIN_HIT_SHARE = 0.5      # a point must land on the mesh in at least this share of the photos
FRL_POSE_SD_DEG = 5.0        # prior deviation of yaw and pitch in these frontal studio photos
FRL_MAX_SPREAD_CM = 1.5      # median distance of the per-photo positions to the placed point


@dataclass(frozen=True)
class WeakCamera:
    """Scaled orthographic camera: pixel = scale * (R @ X)[:2] + centre, depth (R @ X)[2] (larger is farther)."""

    scale: float
    R: np.ndarray
    centre: np.ndarray

    def project(self, points: np.ndarray) -> np.ndarray:
        return self.scale * (np.asarray(points) @ self.R.T)[:, :2] + self.centre

    def depth(self, points: np.ndarray) -> np.ndarray:
        return (np.asarray(points) @ self.R.T)[:, 2]


def fit_weak_camera(points_3d: np.ndarray, points_2d: np.ndarray, pose_sd_deg: float | None = None,
                    point_sd_cm: float = 0.3) -> WeakCamera:
    """Least-squares scaled orthographic camera of canonical points (K, 3) onto pixels (K, 2), starting frontal.

    With `pose_sd_deg`, yaw and pitch have a zero-mean normal prior of that deviation against point residuals of
    `point_sd_cm` on the face: without it, a face whose proportions differ from the canonical face's is
    explained by turning the head (yaw narrows the face, pitch shortens it) instead of by the residuals.
    """
    points_3d, points_2d = np.asarray(points_3d, float), np.asarray(points_2d, float)
    spread = np.linalg.norm(points_2d - points_2d.mean(0), axis=1).mean()
    scale0 = spread / np.linalg.norm(points_3d[:, :2] - points_3d[:, :2].mean(0), axis=1).mean()
    centre0 = points_2d.mean(0) - scale0 * (points_3d @ geometry.FRONTAL.T)[:, :2].mean(0)

    def camera(params: np.ndarray) -> WeakCamera:
        return WeakCamera(float(np.exp(params[3])), geometry.pose_to_rotation(*params[:3]), params[4:6])

    def residuals(params: np.ndarray) -> np.ndarray:
        r = (camera(params).project(points_3d) - points_2d).ravel() / (point_sd_cm * scale0)
        return r if pose_sd_deg is None else np.r_[r, params[:2] / pose_sd_deg]

    return camera(least_squares(residuals, np.r_[0.0, 0.0, 0.0, np.log(scale0), centre0]).x)


def cast_onto_mesh(pixels: np.ndarray, camera: WeakCamera, vertices: np.ndarray,
                   triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The front-most triangle under each pixel (M, 2) in the camera's view, as (rows of `triangles`, -1 where
    none; barycentric (M, 3)): the ray test of a scaled orthographic camera."""
    corners = camera.project(vertices)[triangles]                          # (T, 3, 2)
    depth = camera.depth(vertices)[triangles]                              # (T, 3)
    centroids = corners.mean(1)
    reach = float(np.linalg.norm(corners - centroids[:, None], axis=2).max())
    balls = cKDTree(centroids).query_ball_point(pixels, reach + 1e-9)
    rows = np.repeat(np.arange(len(pixels)), [len(b) for b in balls])
    cand = np.concatenate([np.asarray(b, int) for b in balls])
    a, b, c = corners[cand, 0], corners[cand, 1], corners[cand, 2]
    e1, e2, p = b - a, c - a, pixels[rows] - a
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        v = (p[:, 0] * e2[:, 1] - p[:, 1] * e2[:, 0]) / det
        w = (e1[:, 0] * p[:, 1] - e1[:, 1] * p[:, 0]) / det
    bary = np.stack([1 - v - w, v, w], 1)
    inside = (np.abs(det) > 1e-12) & (bary >= 0).all(1)
    z = np.where(inside, (bary * depth[cand]).sum(1), np.inf)
    hit_tri = np.full(len(pixels), -1)
    hit_bary = np.zeros((len(pixels), 3))
    order = np.lexsort((z, rows))
    first = order[np.r_[0, np.flatnonzero(np.diff(rows[order])) + 1]] if len(order) else order
    first = first[np.isfinite(z[first])]
    hit_tri[rows[first]], hit_bary[rows[first]] = cand[first], bary[first]
    return hit_tri, hit_bary


@dataclass(frozen=True)
class FRLPhoto:
    """One annotated FRL photo: its template points (189, 2), pixels, and the camera fitted to the anchors."""

    annotation: Path
    points: np.ndarray
    camera: WeakCamera


def frl_template_names(root: Path = FRL_ROOT) -> list[str]:
    """The FRL template's point names by index, from `frl_template_points.csv` (columns index, name)."""
    with open(root / FRL_NAMES_FILE, newline="") as handle:
        rows = {int(row["index"]): row["name"] for row in csv.DictReader(handle)}
    return [rows[i] for i in range(len(rows))]


def _frl_anchor_points(model: FaceModel) -> np.ndarray:
    """Canonical positions of the FRL_ANCHORS (from the built-in layout files), in FRL_ANCHORS order."""
    return np.array([load_layout(name).canonical_points(model)[i] for name, i in FRL_ANCHORS.values()], float)


def fit_frl_photos(root: Path = FRL_ROOT, model: FaceModel | None = None) -> list[FRLPhoto]:
    """Every annotated FRL photo under `root` with a scaled orthographic camera fitted to the anchor points."""
    from training.datasets.common import annotations_with_images
    from training.datasets.frl import FRL_TEMPLATE_POINTS, parse_tem

    model = model or load_facemodel()
    anchors = _frl_anchor_points(model)
    photos = []
    for tem, _ in annotations_with_images(root, sorted(root.rglob("*.tem")), "frl", ".tem"):
        points = parse_tem(tem)
        if len(points) != FRL_TEMPLATE_POINTS:
            raise ValueError(f"{tem}: expected the {FRL_TEMPLATE_POINTS}-point FRL template, found {len(points)}")
        photos.append(FRLPhoto(tem, points, fit_weak_camera(anchors, points[list(FRL_ANCHORS)], FRL_POSE_SD_DEG)))
    return photos


def _frl_contours(template_lines: list[list[int]], kept: list[int]) -> dict[str, list[int]]:
    """The template's drawing lines over the kept points (layout indices), split where a point was left out."""
    where = {frl: i for i, frl in enumerate(kept)}
    contours: dict[str, list[int]] = {}
    for k, line in enumerate(template_lines):
        pieces: list[list[int]] = [[]]
        for frl in line:
            if frl in where:
                pieces[-1].append(where[frl])
            elif pieces[-1]:
                pieces.append([])
        for j, piece in enumerate(p for p in pieces if len(set(p)) >= 2):
            contours[f"line{k}" + (f"_{j}" if j else "")] = piece
    return contours


def frl_reprojection_errors(layout: Layout, photos: list[FRLPhoto], template_indices: list[int],
                            model: FaceModel | None = None) -> np.ndarray:
    """Per photo and layout point, the distance between the layout point seen by the photo's camera and its
    annotation, as a fraction of the annotated outer-eye-corner distance: (photos, N)."""
    points = layout.canonical_points(model).astype(np.float64)
    errors = []
    for photo in photos:
        iod = np.linalg.norm(photo.points[FRL_OUTER_EYE_CORNERS[0]] - photo.points[FRL_OUTER_EYE_CORNERS[1]])
        errors.append(np.linalg.norm(photo.camera.project(points) - photo.points[template_indices], axis=1) / iod)
    return np.array(errors)


def build_frl(root: Path = FRL_ROOT) -> Layout:
    """FRL 189-point template points placed on the surface from annotated photos.

    Each photo's camera is fitted to the points FRL shares with ibug68/wflw98 (FRL_ANCHORS); every template
    point is cast onto the neutral mesh seen by that camera (front-most triangle under it), giving one canonical
    position per photo. A point's position is the coordinate-wise median over the photos, snapped to the closest
    point of the surface group (skin or eye) most casts hit. Points that miss the mesh in most photos, land in
    the mouth, or whose per-photo positions spread too far (median distance to the placed point) are left out.
    """
    from training.datasets.frl import parse_tem_template_lines

    model = load_facemodel()
    verts = model.neutral.astype(np.float64)
    names = frl_template_names(root)
    photos = fit_frl_photos(root, model)
    group_names = list(FRL_SURFACES)
    masks = {g: np.any([model.material_mask(m) for m in mats], axis=0) for g, mats in FRL_SURFACES.items()}
    cast_rows = np.flatnonzero(np.any(list(masks.values()), axis=0))
    group_of = np.full(len(model.triangles), -1)
    for g, name in enumerate(group_names):
        group_of[masks[name]] = g

    n = len(names)
    positions = np.full((len(photos), n, 3), np.nan)
    groups = np.full((len(photos), n), -1)
    for k, photo in enumerate(photos):
        hit, bary = cast_onto_mesh(photo.points, photo.camera, verts, model.triangles[cast_rows])
        landed = hit >= 0
        rows = cast_rows[hit[landed]]
        positions[k, landed] = np.einsum("nk,nkd->nd", bary[landed], verts[model.triangles[rows]])
        groups[k, landed] = group_of[rows]

    kept, tris, barys, dropped = [], [], [], {}
    for i in range(n):
        landed = groups[:, i] >= 0
        share = landed.mean()
        if share < FRL_MIN_HIT_SHARE:
            dropped[i] = f"on the mesh in {share:.0%} of the photos"
            continue
        group = int(np.bincount(groups[landed, i]).argmax())
        if group_names[group] == "mouth":
            dropped[i] = "cast into the mouth"
            continue
        samples = positions[groups[:, i] == group, i]
        tri, bary = closest_surface_point(np.median(samples, 0), verts, model.triangles, masks[group_names[group]])
        placed = bary[0] @ verts[model.triangles[tri[0]]]
        spread = float(np.median(np.linalg.norm(samples - placed, axis=1)))
        log.info("frl %3d %-60s %-4s on mesh %4.0f%%  spread %.2f cm", i, names[i], group_names[group],
                 100 * share, spread)
        if spread > FRL_MAX_SPREAD_CM:
            dropped[i] = f"spread {spread:.2f} cm"
            continue
        kept.append(i)
        tris.append(int(tri[0]))
        barys.append(bary[0])
    for i, why in dropped.items():
        log.info("frl %3d %-60s left out: %s", i, names[i], why)

    layout = Layout("frl", np.array(tris), np.array(barys, np.float32),
                    names=tuple(f"{i}: {names[i]}" for i in kept),
                    contours=_frl_contours(parse_tem_template_lines(photos[0].annotation), kept),
                    description=f"Face Research Lab 189-point template (webmorph .tem): the {len(kept)} points on "
                                f"the face surface, placed from {len(photos)} FRL London and Canada photos "
                                f"(DeBruine & Jones 2017, CC BY 4.0); each name starts with the point's template "
                                f"index. Left and right in the names are the image's (see "
                                f"assets/layouts/README.md).")
    errors = frl_reprojection_errors(layout, photos, kept, model)
    log.info("frl: %d of %d template points kept (at most %.1f cm spread, on the mesh in >= %.0f%% of %d photos); "
             "anchor-camera reprojection error %.2f%% of the outer-eye-corner distance (median %.2f%%)",
             len(kept), n, FRL_MAX_SPREAD_CM, 100 * FRL_MIN_HIT_SHARE, len(photos), 100 * errors.mean(),
             100 * np.median(errors))
    return layout


BUILDERS = {"ibug68": build_ibug68, "wflw98": build_wflw98, "dense": build_dense, "frl": build_frl}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"layouts to build ({', '.join(BUILDERS)}; default: all)")
    parser.add_argument("--frl-root", type=Path, default=FRL_ROOT,
                        help=f"FRL photos with .tem files and {FRL_NAMES_FILE}, for frl (default: {FRL_ROOT})")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    unknown = sorted(set(args.names) - set(BUILDERS))
    if unknown:
        parser.error(f"unknown layout {', '.join(unknown)}; known: {', '.join(BUILDERS)}")
    LAYOUTS_DIR.mkdir(parents=True, exist_ok=True)
    for name in args.names or list(BUILDERS):
        if name == "frl" and not args.frl_root.is_dir():
            if args.names:
                parser.error(f"--frl-root {args.frl_root} is not a directory")
            log.warning("skipped frl: no FRL photos at %s (pass --frl-root)", args.frl_root)
            continue
        layout = build_frl(args.frl_root) if name == "frl" else BUILDERS[name]()
        path = LAYOUTS_DIR / f"{name}.json"
        path.write_text(json.dumps(layout.to_json(), separators=(",", ":")) + "\n")
        log.info("wrote %s (%d points)", path, len(layout))


if __name__ == "__main__":
    main()
