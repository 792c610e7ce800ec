"""The dense layout: about 3000 evenly spread points over the outer skin of the narrow face area (the inner lips
and eyelids left out), area-weighted random samples thinned by farthest-point sampling, the same on every run."""
from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, dijkstra

from core.facemodel import NARROW_FACE_VERTICES, FaceModel, load_facemodel
from core.layouts import Layout
from tools.build_layouts.ibug68 import ict_landmark_vertices


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

    landmarks = ict_landmark_vertices()
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
    nose_tip = verts[ict_landmark_vertices()[30]]
    start = int(np.argmin(np.linalg.norm(points - nose_tip, axis=1)))
    keep = farthest_point_sampling(points, DENSE_POINTS, start)
    # Order the points in 1 cm rows from the top, each from the subject's right (image left), like a page.
    keep = keep[np.lexsort((points[keep, 0], -np.round(points[keep, 1], 0)))]
    return Layout("dense", face_tris[rows[keep]], bary[keep].astype(np.float32),
                  description=f"{DENSE_POINTS} evenly spread points on the narrow face area (M_Face, vertices "
                              f"0-6705) without the inner lips and eyelids: area-weighted samples thinned by "
                              f"farthest-point sampling, seed {DENSE_SEED}.")
