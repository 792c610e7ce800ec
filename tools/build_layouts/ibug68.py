"""The ibug68 layout: the iBUG 300-W 68-point markup on fixed surface points, ICT's own landmark vertices. The
other builders start from these vertices (wflw98 copies the 68 points, dense starts at the nose tip)."""
from __future__ import annotations

import json

from core.facemodel import find_facemodel, load_facemodel
from core.layouts import IBUG68_CONTOURS, Layout, vertex_to_triangle


def ict_landmark_vertices() -> list[int]:
    """ICT's `idx_to_landmark_verts` (vertex_indices.json beside the npz): the 68 iBUG points' vertex ids."""
    return json.loads((find_facemodel().parent / "vertex_indices.json").read_text())["idx_to_landmark_verts"]


def build_ibug68() -> Layout:
    """iBUG 300-W 68 points from ICT's own `idx_to_landmark_verts` (vertex_indices.json beside the npz)."""
    model = load_facemodel()
    tris, bary = vertex_to_triangle(ict_landmark_vertices(), model.triangles)
    return Layout("ibug68", tris, bary, names=tuple(f"ibug_{i}" for i in range(68)), contours=IBUG68_CONTOURS,
                  description="iBUG 300-W 68-point markup on fixed surface points (ICT idx_to_landmark_verts).")
