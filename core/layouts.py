"""Landmark layouts: named lists of points on the canonical face surface.

A layout point is a triangle of the face model's `triangles` plus barycentric weights, so it follows the mesh
through identity and expression. Layouts are JSON files (built-ins in assets/layouts/, or a user's own):

    {"name": "my_layout", "description": "...",
     "triangles": [t0, t1, ...], "barycentric": [[a, b, c], ...],   # or "vertices": [v0, v1, ...]
     "names": ["p0", ...],                                          # optional
     "contours": {"jaw": [0, 1, 2], ...}}                           # optional, for drawing lines

`ibug68` (ICT's 68 landmark vertex ids, iBUG 300-W order) always exists.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core import geometry
from core.facemodel import FaceModel, load_facemodel
from core.paths import ASSETS_DIR

LAYOUTS_DIR = ASSETS_DIR / "layouts"

# iBUG 68 contours (0-based), used for drawing and for the inter-ocular normalisation.
IBUG68_CONTOURS: dict[str, list[int]] = {
    "jaw": list(range(0, 17)), "brow_right": list(range(17, 22)), "brow_left": list(range(22, 27)),
    "nose_bridge": list(range(27, 31)), "nose_base": list(range(31, 36)),
    "eye_right": list(range(36, 42)) + [36], "eye_left": list(range(42, 48)) + [42],
    "lips_outer": list(range(48, 60)) + [48], "lips_inner": list(range(60, 68)) + [60],
}


# Annotation semantics (dataset styles) the semantic correction network knows, by id; 0 is the canonical surface.
# Dataset readers name their semantics with these keys; the trained model's style embedding uses these ids.
SEMANTICS: dict[str, int] = {"canonical": 0, "ibug2d": 1, "aflw3d": 2, "wflw": 3, "cofw": 4, "frl": 5}


def semantics_id(name: str) -> int:
    if name not in SEMANTICS:
        raise ValueError(f"Unknown semantics '{name}'; known: {', '.join(SEMANTICS)}")
    return SEMANTICS[name]


class LayoutError(ValueError):
    """A layout file that cannot be used; the message names the file and the offending entry."""


@dataclass(frozen=True)
class Layout:
    name: str
    triangles: np.ndarray        # (N,) int
    barycentric: np.ndarray      # (N, 3) float32, rows sum to 1
    names: tuple[str, ...] = ()
    contours: dict[str, list[int]] = field(default_factory=dict)
    description: str = ""

    def __len__(self) -> int:
        return int(self.triangles.shape[0])

    def points(self, vertices: np.ndarray, face_triangles: np.ndarray) -> np.ndarray:
        """Positions (N, 3) of the layout's points on a mesh with the face model's topology."""
        corners = vertices[face_triangles[self.triangles]]  # (N, 3, 3)
        return np.einsum("nk,nkd->nd", self.barycentric, corners)

    def canonical_points(self, model: FaceModel | None = None) -> np.ndarray:
        """The layout's points on the neutral canonical face: the query points the detector takes."""
        model = model or load_facemodel()
        return self.points(model.neutral, model.triangles).astype(np.float32)

    def canonical_normals(self, model: FaceModel | None = None) -> np.ndarray:
        """Unit surface normals (N, 3) at the query points on the neutral face: the 3D head's facing test."""
        model = model or load_facemodel()
        normals = self.points(geometry.vertex_normals(model.neutral, model.triangles), model.triangles)
        return (normals / np.linalg.norm(normals, axis=1, keepdims=True)).astype(np.float32)

    def to_json(self) -> dict:
        out = {"name": self.name, "description": self.description, "triangles": self.triangles.tolist(),
               "barycentric": np.round(self.barycentric, 6).tolist()}
        if self.names:
            out["names"] = list(self.names)
        if self.contours:
            out["contours"] = self.contours
        return out


def vertex_to_triangle(vertex_ids: np.ndarray, face_triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Express vertices as (triangle, barycentric) pairs: the first triangle that uses each vertex."""
    vertex_ids = np.asarray(vertex_ids, int)
    flat = face_triangles.reshape(-1)
    tris = np.empty(len(vertex_ids), int)
    bary = np.zeros((len(vertex_ids), 3), np.float32)
    for i, v in enumerate(vertex_ids):
        hits = np.flatnonzero(flat == v)
        if hits.size == 0:
            raise LayoutError(f"vertex {v} is used by no triangle of the face model")
        tris[i], corner = divmod(int(hits[0]), 3)
        bary[i, corner] = 1.0
    return tris, bary


def layout_from_json(data: dict, source: str, model: FaceModel | None = None) -> Layout:
    """Validate a parsed layout JSON; `source` names the file in error messages."""
    model = model or load_facemodel()
    num_tris = len(model.triangles)
    name = data.get("name") or Path(source).stem
    if "vertices" in data:
        verts = np.asarray(data["vertices"])
        bad = np.flatnonzero((verts < 0) | (verts >= model.num_vertices))
        if bad.size:
            raise LayoutError(f"{source}: point {bad[0]} has vertex {verts[bad[0]]}, but the face model has "
                              f"vertices 0..{model.num_vertices - 1}")
        tris, bary = vertex_to_triangle(verts, model.triangles)
    elif "triangles" in data and "barycentric" in data:
        tris = np.asarray(data["triangles"])
        bary = np.asarray(data["barycentric"], np.float32)
        if tris.ndim != 1 or bary.shape != (len(tris), 3):
            raise LayoutError(f"{source}: 'triangles' must be a list of N integers and 'barycentric' N triples "
                              f"(got {tris.shape} and {bary.shape})")
        bad = np.flatnonzero((tris < 0) | (tris >= num_tris) | (tris != np.round(tris)))
        if bad.size:
            raise LayoutError(f"{source}: point {bad[0]} refers to triangle {tris[bad[0]]}, but the face model "
                              f"has triangles 0..{num_tris - 1}")
        bad = np.flatnonzero((np.abs(bary.sum(1) - 1) > 1e-3) | (bary.min(1) < -1e-4))
        if bad.size:
            raise LayoutError(f"{source}: point {bad[0]} has barycentric weights {bary[bad[0]].tolist()}, "
                              f"which must be >= 0 and sum to 1")
        tris = tris.astype(int)
    else:
        raise LayoutError(f"{source}: a layout needs 'triangles' + 'barycentric', or 'vertices'")
    names = tuple(data.get("names", ()))
    if names and len(names) != len(tris):
        raise LayoutError(f"{source}: {len(names)} names for {len(tris)} points")
    contours = {k: [int(i) for i in v] for k, v in data.get("contours", {}).items()}
    for key, idx in contours.items():
        if idx and (min(idx) < 0 or max(idx) >= len(tris)):
            raise LayoutError(f"{source}: contour '{key}' refers to a point outside 0..{len(tris) - 1}")
    return Layout(name=name, triangles=tris, barycentric=bary, names=names, contours=contours,
                  description=data.get("description", ""))


def available_layouts() -> list[str]:
    return sorted(p.stem for p in LAYOUTS_DIR.glob("*.json"))


@functools.lru_cache(maxsize=16)
def load_layout(name_or_path: str | Path) -> Layout:
    """A built-in layout by name (`ibug68`, `wflw98`, `dense`, ...) or a user's JSON file by path."""
    path = Path(name_or_path)
    if path.suffix.lower() != ".json":
        path = LAYOUTS_DIR / f"{name_or_path}.json"
        if not path.is_file():
            raise LayoutError(f"Unknown layout '{name_or_path}'. Built-in layouts: {', '.join(available_layouts())}; "
                              f"or pass the path of a layout .json file.")
    if not path.is_file():
        raise LayoutError(f"Layout file {path} does not exist.")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise LayoutError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    if not isinstance(data, dict):
        raise LayoutError(f"{path}: expected a JSON object with 'triangles' and 'barycentric'")
    return layout_from_json(data, str(path))


def closest_surface_point(points: np.ndarray, vertices: np.ndarray, triangles: np.ndarray,
                          triangle_mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact closest point on a triangle mesh for each query point, as (triangle ids (N,), barycentric (N, 3)).

    `triangles` indexes `vertices`; `triangle_mask` (bool over triangles) limits the search, e.g. to
    `model.material_mask("M_Face")`. Returned triangle ids index the full `triangles` array and the barycentric
    weights follow each triangle's corner order, so they can go straight into a `Layout`.
    """
    from scipy.spatial import cKDTree  # scipy is only needed by tools that snap points to the surface

    points = np.atleast_2d(np.asarray(points, np.float64))
    vertices = np.asarray(vertices, np.float64)
    candidates = np.arange(len(triangles)) if triangle_mask is None else np.flatnonzero(triangle_mask)
    if candidates.size == 0:
        raise ValueError("closest_surface_point: the triangle mask selects no triangle")
    corners = vertices[triangles[candidates]]                     # (C, 3, 3)
    centroids = corners.mean(1)
    # Any triangle whose closest point lies within d of p has its centroid within d + reach of p.
    reach = float(np.linalg.norm(corners - centroids[:, None], axis=2).max())
    tree = cKDTree(centroids)

    k = min(8, len(candidates))
    _, near = tree.query(points, k=k)
    near = near.reshape(len(points), k)
    rows = np.repeat(np.arange(len(points)), k)
    _, dist = _closest_point_on_triangles(points[rows], corners[near.reshape(-1)])
    bound = dist.reshape(len(points), k).min(1)

    balls = tree.query_ball_point(points, bound + reach + 1e-9)
    counts = np.array([len(b) for b in balls])
    rows = np.repeat(np.arange(len(points)), counts)
    cand = np.concatenate([np.asarray(b, int) for b in balls])
    bary, dist = _closest_point_on_triangles(points[rows], corners[cand])
    # Per point, the candidate with the smallest distance: sort by (point, distance), take each point's first.
    order = np.lexsort((dist, rows))
    first = order[np.r_[0, np.flatnonzero(np.diff(rows[order])) + 1]]
    return candidates[cand[first]], bary[first]


def _closest_point_on_triangles(p: np.ndarray, tri: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closest point of triangle tri[i] (M, 3, 3) to p[i] (M, 3): barycentric (M, 3) and distance (M,).

    Ericson, Real-Time Collision Detection, 5.1.5, vectorised: the Voronoi regions are tested in his order, so
    later (higher-priority) regions are written last here.
    """
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    ab, ac = b - a, c - a
    ap, bp, cp = p - a, p - b, p - c
    d1, d2 = (ab * ap).sum(1), (ac * ap).sum(1)
    d3, d4 = (ab * bp).sum(1), (ac * bp).sum(1)
    d5, d6 = (ab * cp).sum(1), (ac * cp).sum(1)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2

    with np.errstate(divide="ignore", invalid="ignore"):
        denom = va + vb + vc
        v, w = vb / denom, vc / denom
        bary = np.stack([1 - v - w, v, w], 1)

        def put(mask: np.ndarray, weights: np.ndarray) -> None:
            bary[mask] = weights[mask] if weights.ndim == 2 else weights

        t_bc = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        put((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0), np.stack([np.zeros_like(t_bc), 1 - t_bc, t_bc], 1))
        t_ac = d2 / (d2 - d6)
        put((vb <= 0) & (d2 >= 0) & (d6 <= 0), np.stack([1 - t_ac, np.zeros_like(t_ac), t_ac], 1))
        put((d6 >= 0) & (d5 <= d6), np.array([0.0, 0.0, 1.0]))
        t_ab = d1 / (d1 - d3)
        put((vc <= 0) & (d1 >= 0) & (d3 <= 0), np.stack([1 - t_ab, t_ab, np.zeros_like(t_ab)], 1))
        put((d3 >= 0) & (d4 <= d3), np.array([0.0, 1.0, 0.0]))
        put((d1 <= 0) & (d2 <= 0), np.array([1.0, 0.0, 0.0]))

    # Degenerate (zero-area) triangles can leave NaNs: they never win.
    closest = np.einsum("mk,mkd->md", np.nan_to_num(bary), tri)
    dist = np.linalg.norm(p - closest, axis=1)
    dist[~np.isfinite(bary).all(1)] = np.inf
    return np.clip(np.nan_to_num(bary), 0.0, 1.0), dist
