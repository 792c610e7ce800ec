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
import math
import reprlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import geometry
from .facemodel import FaceModel, load_facemodel
from .paths import ASSETS_DIR, input_file_problem

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


def _index_list(value: object, source: str, field: str, count: int, of: str) -> np.ndarray:
    """A JSON list of integer ids in 0..count-1 (ids of `of`) as an int array, or a LayoutError naming the file
    and the field."""
    if not isinstance(value, list):
        raise LayoutError(f"{source}: '{field}' must be a list of integer ids, not {reprlib.repr(value)}")
    for i, v in enumerate(value):
        # bool is an int subclass and a float id would be truncated: both are mistakes in the file.
        if isinstance(v, bool) or not isinstance(v, int):
            raise LayoutError(f"{source}: {field}[{i}] is {reprlib.repr(v)}, not an integer id")
        if not 0 <= v < count:
            raise LayoutError(f"{source}: {field}[{i}] is {reprlib.repr(v)}, outside 0..{count - 1} ({of})")
    return np.array(value, np.int64)


def _barycentric(value: object, source: str, count: int) -> np.ndarray:
    """`count` finite weight triples, each >= 0 and summing to 1, as an (N, 3) float32 array."""
    if not isinstance(value, list) or len(value) != count:
        raise LayoutError(f"{source}: 'barycentric' must be a list of {count} weight triples (one per triangle)")
    for i, row in enumerate(value):
        if not (isinstance(row, list) and len(row) == 3
                and all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in row)):
            raise LayoutError(f"{source}: barycentric[{i}] is {reprlib.repr(row)}, not a triple of numbers")
        if not (all(math.isfinite(w) and w >= -1e-4 for w in row) and abs(sum(row) - 1) <= 1e-3):
            raise LayoutError(f"{source}: barycentric[{i}] is {row}: the weights must be finite, >= 0 and "
                              f"sum to 1")
    return np.array(value, np.float32)


def _text(value: object, source: str, field: str) -> str:
    if not isinstance(value, str):
        raise LayoutError(f"{source}: '{field}' must be a string, not {reprlib.repr(value)}")
    return value


def layout_from_json(data: object, source: str, model: FaceModel | None = None) -> Layout:
    """Validate a parsed layout JSON; every error is a LayoutError naming `source` (the file) and the field.

    Checked: the object and field types, integer ids (a float is refused, not truncated), triangle and vertex
    ids against the face model, finite barycentric weights, names and contours against the number of points.
    """
    if not isinstance(data, dict):
        raise LayoutError(f"{source}: expected a JSON object with 'triangles' and 'barycentric', or 'vertices'")
    model = model or load_facemodel()
    if "vertices" in data:
        verts = _index_list(data["vertices"], source, "vertices", model.num_vertices, "the face model's vertices")
        try:
            tris, bary = vertex_to_triangle(verts, model.triangles)
        except LayoutError as exc:
            raise LayoutError(f"{source}: {exc}") from exc
    elif "triangles" in data and "barycentric" in data:
        tris = _index_list(data["triangles"], source, "triangles", len(model.triangles),
                           "the face model's triangles")
        bary = _barycentric(data["barycentric"], source, len(tris))
    else:
        raise LayoutError(f"{source}: a layout needs 'triangles' + 'barycentric', or 'vertices'")
    if len(tris) == 0:
        raise LayoutError(f"{source}: the layout has no points")
    names = data.get("names", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise LayoutError(f"{source}: 'names' must be a list of strings")
    if names and len(names) != len(tris):
        raise LayoutError(f"{source}: {len(names)} names for {len(tris)} points")
    contours = data.get("contours", {})
    if not isinstance(contours, dict):
        raise LayoutError(f"{source}: 'contours' must be an object of name: [point, ...]")
    contours = {key: _index_list(idx, source, f"contours.{key}", len(tris), "the layout's points").tolist()
                for key, idx in contours.items()}
    return Layout(name=_text(data.get("name") or Path(source).stem, source, "name"), triangles=tris,
                  barycentric=bary, names=tuple(names), contours=contours,
                  description=_text(data.get("description", ""), source, "description"))


def available_layouts() -> list[str]:
    return sorted(p.stem for p in LAYOUTS_DIR.glob("*.json"))


@functools.lru_cache(maxsize=16)
def load_layout(name_or_path: str | Path) -> Layout:
    """A built-in layout by name (`ibug68`, `wflw98`, `dense`, ...) or a user's JSON file by path.

    The one way to read a layout file: plain JSON (no code runs), validated by `layout_from_json`; every problem
    is a LayoutError naming the file.
    """
    path = Path(name_or_path)
    if path.suffix.lower() != ".json":
        path = LAYOUTS_DIR / f"{name_or_path}.json"
        if not path.is_file():
            raise LayoutError(f"Unknown layout '{name_or_path}'. Built-in layouts: {', '.join(available_layouts())}; "
                              f"or pass the path of a layout .json file.")
    problem = input_file_problem(path)
    if problem:
        raise LayoutError(f"Layout file {path}: {problem}.")
    try:
        data = json.loads(path.read_bytes())
    except json.JSONDecodeError as exc:
        raise LayoutError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    except UnicodeDecodeError as exc:
        raise LayoutError(f"{path}: not a JSON text file ({exc.reason})") from exc
    except RecursionError as exc:
        raise LayoutError(f"{path}: JSON nested too deeply to be a layout") from exc
    except OSError as exc:
        raise LayoutError(f"{path}: cannot read ({exc.strerror or exc})") from exc
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
