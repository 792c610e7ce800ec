"""Mesh building shared by every accessory: grid triangulation, surfaces of revolution, capsules,
superellipsoids, swept tubes, merging meshes, rotations and frames, and turning vertices and triangles into a
`MeshPart` (float32/int32 arrays, vertex normals, clipped UVs)."""
from __future__ import annotations

import functools

import numpy as np

from core import geometry
from training.synth.parts import MeshPart


def grid_triangles(rows: int, cols: int, wrap_cols: bool = False, wrap_rows: bool = False) -> np.ndarray:
    """Two triangles per cell of a row-major rows x cols vertex grid; wrap joins last to first column/row."""
    return _grid_triangles_cached(rows, cols, wrap_cols, wrap_rows).copy()


@functools.lru_cache(maxsize=256)
def _grid_triangles_cached(rows: int, cols: int, wrap_cols: bool, wrap_rows: bool) -> np.ndarray:
    nc = cols if wrap_cols else cols - 1
    nr = rows if wrap_rows else rows - 1
    r, c = np.meshgrid(np.arange(nr), np.arange(nc), indexing="ij")
    a = r * cols + c
    b = r * cols + (c + 1) % cols
    lower = ((r + 1) % rows) * cols
    d = lower + c
    e = lower + (c + 1) % cols
    return np.concatenate([np.stack([a, d, b], -1).reshape(-1, 3),
                           np.stack([b, d, e], -1).reshape(-1, 3)]).astype(np.int32)


def normalize(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def lathe(profile: np.ndarray, segments: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Surface of revolution about +Y of a (P, 2) profile of (radius, y); returns vertices, triangles, uv.

    A profile that starts and ends at radius 0 gives a closed surface; a repeated profile point gives a crease.
    """
    angles = np.linspace(0, 2 * np.pi, segments + 1)  # the duplicated seam column carries u = 1
    r, y = profile[:, 0:1], profile[:, 1:2]
    verts = np.stack([r * np.cos(angles), np.broadcast_to(y, (len(profile), segments + 1)),
                      r * np.sin(angles)], -1).reshape(-1, 3)
    tris = grid_triangles(len(profile), segments + 1)
    seg = np.linalg.norm(np.diff(profile, axis=0), axis=1)
    v = np.concatenate([[0.0], np.cumsum(seg)]) / max(seg.sum(), 1e-9)
    uv = np.stack(np.meshgrid(angles / (2 * np.pi), 1 - v), -1).reshape(-1, 2)
    return verts, tris, uv


def capsule_profile(radius: float, length: float, rings: int = 4, tip_radius: float | None = None) -> np.ndarray:
    """(radius, y) profile of a capsule along +Y from y=0 to y=length (tapering to tip_radius)."""
    r1 = radius if tip_radius is None else tip_radius
    a = np.linspace(-np.pi / 2, 0, rings + 1)
    bottom = np.stack([radius * np.cos(a), radius + radius * np.sin(a)], 1)
    a = np.linspace(0, np.pi / 2, rings + 1)
    top = np.stack([r1 * np.cos(a), length - r1 + r1 * np.sin(a)], 1)
    return np.concatenate([bottom, top])


def superellipsoid(radii: np.ndarray, e_lat: float, e_lon: float, n_lat: int = 10,
                   n_lon: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Superellipsoid centred at 0 with half-axes `radii` (x, y, z); y is the pole axis."""
    def spow(c, e):
        return np.sign(c) * np.abs(c) ** e

    lat = np.linspace(-np.pi / 2, np.pi / 2, n_lat + 1)[:, None]
    lon = np.linspace(0, 2 * np.pi, n_lon, endpoint=False)[None, :]
    cl = spow(np.cos(lat), e_lat)
    verts = np.stack([radii[0] * cl * spow(np.cos(lon), e_lon),
                      np.broadcast_to(radii[1] * spow(np.sin(lat), e_lat), (n_lat + 1, n_lon)),
                      radii[2] * cl * spow(np.sin(lon), e_lon)], -1).reshape(-1, 3)
    return verts, grid_triangles(n_lat + 1, n_lon, wrap_cols=True)


def sweep(path: np.ndarray, normal: np.ndarray, binormal: np.ndarray, profile: np.ndarray,
          closed: bool) -> tuple[np.ndarray, np.ndarray]:
    """Tube along `path` (P, 3) with a (Q, 2) cross-section in the (normal, binormal) frame; open ends are capped."""
    verts = (path[:, None, :] + profile[None, :, 0, None] * normal[:, None, :]
             + profile[None, :, 1, None] * binormal[:, None, :]).reshape(-1, 3)
    p, q = len(path), len(profile)
    tris = grid_triangles(p, q, wrap_cols=True, wrap_rows=closed)
    if not closed:
        ring = np.arange(q)
        start, end = len(verts), len(verts) + 1
        caps = [np.stack([np.full(q, start), (ring + 1) % q, ring], 1),
                np.stack([np.full(q, end), (p - 1) * q + ring, (p - 1) * q + (ring + 1) % q], 1)]
        verts = np.concatenate([verts, path[[0, -1]]])
        tris = np.concatenate([tris, *caps]).astype(np.int32)
    return verts, tris


def merge(meshes: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    verts, tris, offset = [], [], 0
    for v, t in meshes:
        verts.append(v)
        tris.append(t + offset)
        offset += len(v)
    return np.concatenate(verts).astype(np.float32), np.concatenate(tris).astype(np.int32)


def part(name: str, vertices: np.ndarray, triangles: np.ndarray, normals: np.ndarray | None = None,
         **kwargs) -> MeshPart:
    vertices = np.ascontiguousarray(vertices, np.float32)
    triangles = np.ascontiguousarray(triangles, np.int32)
    if normals is None:
        normals = geometry.vertex_normals(vertices, triangles)
    uv = kwargs.pop("uv", None)
    if uv is not None:
        uv = np.clip(uv, 0.0, 1.0).astype(np.float32)
    return MeshPart(name=name, vertices=vertices, triangles=triangles, normals=np.asarray(normals, np.float32),
                    uv=uv, **kwargs)


def rotation(axis: np.ndarray, angle_deg: float) -> np.ndarray:
    """Rodrigues rotation matrix about `axis`."""
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    a = np.radians(angle_deg)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


def frame_from_axis(axis: np.ndarray) -> np.ndarray:
    """Rotation whose +Y column is `axis`."""
    y = normalize(np.asarray(axis, float))
    helper = np.array([1.0, 0.0, 0.0]) if abs(y[0]) < 0.9 else np.array([0.0, 0.0, 1.0])
    x = normalize(np.cross(helper, y))
    z = np.cross(x, y)
    return np.stack([x, y, z], 1)
