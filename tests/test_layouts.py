"""Built-in landmark layouts, layout JSON validation and the closest-surface-point helper."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree

from core.facemodel import NARROW_FACE_VERTICES, find_facemodel
from core.layouts import LayoutError, available_layouts, closest_surface_point, load_layout
from core.layouts import _closest_point_on_triangles
from tools.build_layouts.frl import FRL_ANCHORS, FRL_SURFACES
from tools.build_layouts.wflw98 import IBUG68_IN_WFLW98

BUILT_IN = ("ibug68", "ibug68_ls3d", "wflw98", "dense", "frl")


@pytest.mark.parametrize("name", BUILT_IN)
def test_built_in_layout_loads(name, model):
    assert name in available_layouts()
    layout = load_layout(name)
    assert layout.name == name
    points = layout.canonical_points(model)
    assert points.shape == (len(layout), 3) and np.isfinite(points).all()
    for key, indices in layout.contours.items():
        assert all(0 <= i < len(layout) for i in indices), key


def test_ibug68_is_ict_landmark_vertices(model):
    ids = json.loads((find_facemodel().parent / "vertex_indices.json").read_text())["idx_to_landmark_verts"]
    np.testing.assert_allclose(load_layout("ibug68").canonical_points(model), model.neutral[ids], atol=1e-5)


def test_wflw98_agrees_with_ibug68(model):
    wflw = load_layout("wflw98").canonical_points(model)
    ibug = load_layout("ibug68").canonical_points(model)
    assert len(wflw) == 98 and len(IBUG68_IN_WFLW98) == 68
    assert np.linalg.norm(wflw[IBUG68_IN_WFLW98] - ibug, axis=1).max() < 0.05


def test_wflw98_sides_and_pupils(model):
    p = load_layout("wflw98").canonical_points(model)
    assert p[0, 0] < 0 < p[32, 0]                  # contour starts on the subject's right
    assert p[60, 0] < p[64, 0] < 0 < p[68, 0] < p[72, 0]  # right eye outer->inner, left eye inner->outer
    for lower, upper in ((38, 37), (41, 34), (50, 42), (47, 45)):
        assert 0.4 < p[upper, 1] - p[lower, 1] < 1.0  # lower brow edge sits below the upper one
    for pupil, corners in ((96, (60, 64)), (97, (68, 72))):
        middle = p[list(corners)].mean(0)
        assert np.linalg.norm(p[pupil, :2] - middle[:2]) < 0.5
        assert p[pupil, 1] > min(p[corners[0], 1], p[corners[1], 1])


def test_dense_is_even_and_on_the_narrow_face(model):
    layout = load_layout("dense")
    assert 2000 <= len(layout) <= 4000
    assert (model.triangle_material[layout.triangles] == model.material_names.index("M_Face")).all()
    assert (model.triangles[layout.triangles] < NARROW_FACE_VERTICES.stop).all()
    points = layout.canonical_points(model)
    nearest = cKDTree(points).query(points, k=2)[0][:, 1]
    assert nearest.min() > 0.3 * np.median(nearest)


def test_frl_points_are_named_surface_points(model):
    layout = load_layout("frl")
    assert len(layout) >= 60 and len(layout.names) == len(layout)
    indices = [int(name.split(":", 1)[0]) for name in layout.names]
    assert indices == sorted(set(indices)) and 0 <= indices[0] and indices[-1] < 189
    assert all(name.split(":", 1)[1].strip() for name in layout.names)
    # On the skin or the eyes, exactly on the surface.
    materials = {model.material_names.index(m) for group in ("skin", "eye") for m in FRL_SURFACES[group]}
    assert set(model.triangle_material[layout.triangles].tolist()) <= materials
    points = layout.canonical_points(model)
    tri, bary = closest_surface_point(points, model.neutral, model.triangles)
    on_surface = np.einsum("nk,nkd->nd", bary, model.neutral[model.triangles[tri]])
    assert np.linalg.norm(on_surface - points, axis=1).max() < 1e-4
    # FRL's left is the image's: its left eye and mouth corner are on the subject's right (x < 0).
    p = dict(zip(indices, points))
    assert p[18][0] < p[22][0] < 0 < p[23][0] < p[27][0] and p[87][0] < 0 < p[93][0] and p[0][0] < 0 < p[1][0]
    # The fitting anchors land near the built-in points they were paired with.
    for frl, (name, i) in FRL_ANCHORS.items():
        assert np.linalg.norm(p[frl] - load_layout(name).canonical_points(model)[i]) < 1.5, frl


def test_frl_camera_fit_and_cast_recover_surface_points(model):
    from core.geometry import pose_to_rotation
    from tools.build_layouts.frl import WeakCamera, cast_onto_mesh, fit_weak_camera

    truth = WeakCamera(12.0, pose_to_rotation(8.0, -5.0, 3.0), np.array([300.0, 320.0]))
    points = load_layout("ibug68").canonical_points(model).astype(np.float64)
    fitted = fit_weak_camera(points, truth.project(points))
    assert abs(fitted.scale - 12.0) < 1e-4 and np.allclose(fitted.R, truth.R, atol=1e-5)
    assert np.allclose(fitted.centre, truth.centre, atol=1e-3)
    front = points[[8, 27, 28, 29, 30, 33, 48, 51, 54, 57]]  # not hidden at this pose
    verts = model.neutral.astype(np.float64)
    tri, bary = cast_onto_mesh(truth.project(front), truth, verts, model.triangles)
    assert (tri >= 0).all()
    hits = np.einsum("nk,nkd->nd", bary, verts[model.triangles[tri]])
    assert np.linalg.norm(hits - front, axis=1).max() < 1e-3
    missed, _ = cast_onto_mesh(np.array([[-1e4, -1e4]]), truth, verts, model.triangles)
    assert missed.tolist() == [-1]


def _write(tmp_path: Path, name: str, data) -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_user_layout_with_vertices(tmp_path, model):
    layout = load_layout(_write(tmp_path, "mine.json", {"vertices": [966, 4857, 1507], "names": ["a", "b", "c"]}))
    assert layout.name == "mine" and layout.names == ("a", "b", "c")
    np.testing.assert_allclose(layout.canonical_points(model), model.neutral[[966, 4857, 1507]], atol=1e-6)


def test_unknown_triangle_names_file_and_point(tmp_path, model):
    path = _write(tmp_path, "bad_tri.json", {"triangles": [0, 10**7], "barycentric": [[1, 0, 0], [1, 0, 0]]})
    with pytest.raises(LayoutError) as err:
        load_layout(path)
    assert str(path) in str(err.value) and "triangles[1]" in str(err.value)


def test_bad_barycentric(tmp_path):
    path = _write(tmp_path, "bad_bary.json", {"triangles": [0, 1], "barycentric": [[1, 0, 0], [0.7, 0.7, 0]]})
    with pytest.raises(LayoutError, match=r"barycentric\[1\] is \[0.7, 0.7, 0\]"):
        load_layout(path)


# Each bad layout (issue 20, item 6) and the field its LayoutError must name. Before the validating loader these
# passed (NaN, float ids, bools), were truncated, or raised TypeError/ValueError/UFuncTypeError tracebacks.
BAD_LAYOUTS = {
    "nan_barycentric": ({"triangles": [0, 1], "barycentric": [[float("nan"), 0.5, 0.5], [1, 0, 0]]},
                        "barycentric[0]"),
    "inf_barycentric": ({"triangles": [0], "barycentric": [[float("inf"), 0, 0]]}, "barycentric[0]"),
    "huge_triangle": ({"triangles": [10**30], "barycentric": [[1, 0, 0]]}, "triangles[0]"),
    "huge_vertex": ({"vertices": [10**30]}, "vertices[0]"),
    "negative_vertex": ({"vertices": [-1]}, "vertices[0]"),
    "float_vertex": ({"vertices": [966, 1.7]}, "vertices[1]"),
    "float_triangle": ({"triangles": [1.5], "barycentric": [[1, 0, 0]]}, "triangles[0]"),
    "bool_vertex": ({"vertices": [True]}, "vertices[0]"),
    "string_vertices": ({"vertices": ["a", "b"]}, "vertices[0]"),
    "string_triangles": ({"triangles": ["a"], "barycentric": [[1, 0, 0]]}, "triangles[0]"),
    "string_weights": ({"triangles": [0], "barycentric": [["x", 0, 0]]}, "barycentric[0]"),
    "ragged_weights": ({"triangles": [0, 1], "barycentric": [[1, 0, 0], [1, 0]]}, "barycentric[1]"),
    "too_few_weights": ({"triangles": [0, 1], "barycentric": [[1, 0, 0]]}, "'barycentric'"),
    "vertices_not_a_list": ({"vertices": 3}, "'vertices'"),
    "nested_vertices": ({"vertices": [[1, 2]]}, "vertices[0]"),
    "null_fields": ({"triangles": None, "barycentric": None}, "'triangles'"),
    "no_points": ({"vertices": []}, "no points"),
    "list_of_strings": (["a", "b"], "JSON object"),
    "names_not_a_list": ({"vertices": [966], "names": 5}, "'names'"),
    "name_not_a_string": ({"vertices": [966], "name": 5}, "'name'"),
    "description_not_a_string": ({"vertices": [966], "description": [1]}, "'description'"),
    "contours_a_list": ({"vertices": [966], "contours": [1, 2]}, "'contours'"),
    "contour_of_strings": ({"vertices": [966], "contours": {"jaw": ["x"]}}, "contours.jaw[0]"),
    "contour_float": ({"vertices": [966, 4857], "contours": {"jaw": [0.5]}}, "contours.jaw[0]"),
    "contour_out_of_range": ({"vertices": [966], "contours": {"jaw": [0, 1]}}, "contours.jaw[1]"),
}


@pytest.mark.parametrize("case", BAD_LAYOUTS)
def test_bad_layout_is_a_layout_error_naming_file_and_field(tmp_path, case):
    data, field = BAD_LAYOUTS[case]
    path = _write(tmp_path, f"{case}.json", data)
    with pytest.raises(LayoutError) as err:
        load_layout(path)
    assert str(path) in str(err.value) and field in str(err.value)


@pytest.mark.parametrize("kind", ["folder", "fifo", "symlink_loop", "not_utf8", "deeply_nested"])
def test_unreadable_layout_file_is_a_layout_error(tmp_path, kind):
    path = tmp_path / f"{kind}.json"
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)  # opening it would block forever
    elif kind == "symlink_loop":
        path.symlink_to(path)
    elif kind == "not_utf8":
        path.write_bytes(b"{\"name\": \"caf\xe9\"}")  # Latin-1, not UTF-8
    else:
        path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(LayoutError) as err:
        load_layout(path)
    reason = {"folder": "is a folder", "fifo": "not a regular file", "symlink_loop": "symbolic link loop",
              "not_utf8": "not a JSON text file", "deeply_nested": "nested too deeply"}[kind]
    assert str(path) in str(err.value) and reason in str(err.value)


def test_invalid_json(tmp_path):
    path = _write(tmp_path, "broken.json", '{"triangles": [0,')
    with pytest.raises(LayoutError, match="not valid JSON") as err:
        load_layout(path)
    assert str(path) in str(err.value)


def test_unknown_layout_name():
    with pytest.raises(LayoutError, match="Unknown layout 'nope'.*ibug68"):
        load_layout("nope")


def test_closest_surface_point_recovers_surface_points(model):
    rng = np.random.default_rng(7)
    mask = model.material_mask("M_Face")
    tris = rng.choice(np.flatnonzero(mask), 300)
    bary = rng.dirichlet([1.0, 1.0, 1.0], 300)
    corners = model.neutral[model.triangles[tris]].astype(np.float64)
    points = np.einsum("nk,nkd->nd", bary, corners)
    found_tris, found_bary = closest_surface_point(points, model.neutral, model.triangles, mask)
    assert mask[found_tris].all()
    np.testing.assert_allclose(found_bary.sum(1), 1.0, atol=1e-9)
    found = np.einsum("nk,nkd->nd", found_bary, model.neutral[model.triangles[found_tris]].astype(np.float64))
    assert np.linalg.norm(found - points, axis=1).max() < 1e-4
    assert (found_tris == tris).mean() > 0.95  # the rest lie on shared edges


def test_closest_surface_point_matches_brute_force_off_surface(model):
    rng = np.random.default_rng(3)
    mask = model.material_mask("M_Face")
    points = model.neutral[rng.choice(6706, 20)] + rng.normal(0, 0.7, (20, 3))
    found_tris, found_bary = closest_surface_point(points, model.neutral, model.triangles, mask)
    found = np.einsum("nk,nkd->nd", found_bary, model.neutral[model.triangles[found_tris]].astype(np.float64))
    corners = model.neutral[model.triangles[mask]].astype(np.float64)
    for point, hit in zip(points, found):
        _, dist = _closest_point_on_triangles(np.repeat(point[None], len(corners), 0), corners)
        assert abs(np.linalg.norm(point - hit) - dist.min()) < 1e-6


def test_ibug68_ls3d_stays_near_ict(model):
    """The fitted layout moves the points by millimetres, and is left-right symmetric."""
    ict, fitted = load_layout("ibug68").canonical_points(model), load_layout("ibug68_ls3d").canonical_points(model)
    moved = np.linalg.norm(fitted - ict, axis=1)
    assert moved.max() < 0.8 and np.median(moved) > 0.02
    mirror = [16 - i for i in range(17)] + [26 - i for i in range(10)] + [27, 28, 29, 30] + [35, 34, 33, 32, 31] + \
        [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40] + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55] + \
        [64, 63, 62, 61, 60, 67, 66, 65]
    asymmetry = np.linalg.norm(fitted[mirror] * [-1, 1, 1] - fitted, axis=1)
    assert np.median(asymmetry) < 0.1


def test_ibug68_ls3d_fit_runs_on_a_tiny_300w_tree(tmp_path):
    """The builder's fit through a small model lowers its own error; without free_jaw the jaw stays; a held-out
    fold is left out of the fit."""
    import torch

    from dataset_fixtures import make_300w
    from model_fixtures import SMALL, small_model
    from tools.build_layouts.ibug68_ls3d import fit_offsets

    make_300w(tmp_path / "300w")
    torch.manual_seed(0)
    net = small_model()
    checkpoint = tmp_path / "small.pt"
    torch.save({"model": net.state_dict(), "config": {"model": {"variant": "full", **SMALL}}}, checkpoint)
    offsets, errors = fit_offsets(checkpoint, tmp_path / "300w", epochs=8)
    assert offsets.shape == (68, 3) and np.abs(offsets[:17]).max() > 0 and np.abs(offsets[17:]).max() > 0
    assert errors["after"] < errors["before"]
    fixed_jaw, _ = fit_offsets(checkpoint, tmp_path / "300w", epochs=1, free_jaw=False)
    assert not fixed_jaw[:17].any() and np.abs(fixed_jaw[17:]).max() > 0
    held_out, _ = fit_offsets(checkpoint, tmp_path / "300w", epochs=1, held_out_fold=0)
    assert not np.allclose(held_out, fit_offsets(checkpoint, tmp_path / "300w", epochs=1)[0])
