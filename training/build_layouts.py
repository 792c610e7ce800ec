"""Build the built-in layout JSON files in assets/layouts/ from the face model.

    python -m training.build_layouts            # rewrites assets/layouts/ibug68.json (and the others)
    python -m training.build_layouts wflw98     # just one

How each layout is placed is described in assets/layouts/README.md.
"""
from __future__ import annotations

import argparse
import json
import logging

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, dijkstra

from core.facemodel import NARROW_FACE_VERTICES, FaceModel, find_facemodel, load_facemodel
from core.layouts import IBUG68_CONTOURS, LAYOUTS_DIR, Layout, closest_surface_point, vertex_to_triangle

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


BUILDERS = {"ibug68": build_ibug68, "wflw98": build_wflw98, "dense": build_dense}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(BUILDERS), help=f"layouts to build ({', '.join(BUILDERS)})")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    LAYOUTS_DIR.mkdir(parents=True, exist_ok=True)
    for name in args.names:
        layout = BUILDERS[name]()
        path = LAYOUTS_DIR / f"{name}.json"
        path.write_text(json.dumps(layout.to_json(), separators=(",", ":")) + "\n")
        log.info("wrote %s (%d points)", path, len(layout))


if __name__ == "__main__":
    main()
