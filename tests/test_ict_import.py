"""Tests for core.ict_import: the raw ICT-FaceKit OBJ fixture must reproduce the shipped packed npz."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.ict_import import EXPRESSION_NAMES, fan_triangulate, import_facexmodel, read_ict_obj

REPO = Path(__file__).resolve().parents[1]
FACEKIT = REPO.parent / "shared" / "facekit"
RAW = FACEKIT / "raw-sample"
PACKED = FACEKIT / "ict_facekit_light.npz"

needs_facekit = pytest.mark.skipif(
    not (RAW.is_dir() and PACKED.is_file()),
    reason=f"shared ICT-FaceKit data not found at {FACEKIT} (needs ../shared next to the repo)",
)

TINY_OBJ = """\
# two materials, first used in the order B, A, B
mtllib tiny.mtl
v 0 0 0
v 1 0 0
v 1 1 0
v 0 1 0
vt 0 0
vt 1 0
vt 1 1
vt 0 1
usemtl B
f 1/1 2/2 3/3 4/4
usemtl A
f 1/1 3/3 4/4
usemtl B
f 4/4 3/3 2/2
"""


@pytest.fixture(scope="module")
def imported() -> dict[str, np.ndarray]:
    return import_facexmodel(RAW, allow_partial=True)


@pytest.fixture(scope="module")
def packed():
    with np.load(PACKED) as data:
        yield data


@needs_facekit
def test_mesh_arrays_match_packed(imported, packed):
    for key in ["neutral", "polys", "polys_uv", "uv", "poly_material", "material_names", "triangles"]:
        assert imported[key].dtype == packed[key].dtype, key
        np.testing.assert_array_equal(imported[key], packed[key], err_msg=key)


@needs_facekit
def test_bases_match_packed(imported, packed):
    assert list(imported["identity_names"]) == ["identity000"]
    assert list(imported["expression_names"]) == ["eyeBlink_L", "jawOpen"]  # packed order, not file order
    assert imported["identity_basis"].dtype == imported["expression_basis"].dtype == np.float16

    # float16(obj - neutral) computed in float64 matches bit for bit; 0.001 cm is the float16 rounding budget.
    np.testing.assert_array_equal(imported["identity_basis"][0], packed["identity_basis"][0])
    packed_names = list(packed["expression_names"])
    for j, name in enumerate(imported["expression_names"]):
        expected = packed["expression_basis"][packed_names.index(name)]
        np.testing.assert_array_equal(imported["expression_basis"][j], expected, err_msg=name)

    identity000 = read_ict_obj(RAW / "identity000.obj", dtype=np.float64).vertices
    neutral = read_ict_obj(RAW / "generic_neutral_mesh.obj", dtype=np.float64).vertices
    assert np.abs(imported["identity_basis"][0] - (identity000 - neutral)).max() <= 0.001


@needs_facekit
def test_expression_names_match_packed(packed):
    assert EXPRESSION_NAMES == tuple(packed["expression_names"])


def test_read_tiny_obj(tmp_path):
    path = tmp_path / "tiny.obj"
    path.write_text(TINY_OBJ)
    mesh = read_ict_obj(path)
    assert mesh.vertices.dtype == np.float32 and mesh.vertices.shape == (4, 3)
    assert mesh.uv.shape == (4, 2)
    np.testing.assert_array_equal(mesh.polys, [[0, 1, 2, 3], [0, 2, 3, -1], [3, 2, 1, -1]])
    np.testing.assert_array_equal(mesh.polys_uv, mesh.polys)
    assert mesh.material_names == ("B", "A")
    np.testing.assert_array_equal(mesh.poly_material, [0, 1, 0])
    np.testing.assert_array_equal(fan_triangulate(mesh.polys), [[0, 1, 2], [0, 2, 3], [0, 2, 3], [3, 2, 1]])


@pytest.mark.parametrize(
    "good, bad, line",
    [
        ("v 1 0 0", "v 1 zero 0", 4),
        ("v 1 1 0", "v 1 1", 5),
        ("vt 1 0", "vt 1 0 0", 8),
        ("f 1/1 3/3 4/4", "f 1/1 3/3 9/4", 14),
        ("f 1/1 3/3 4/4", "f 1//1 3//3 4//4", 14),
        ("f 1/1 3/3 4/4", "f 1/1 3/3", 14),
        ("vt 0 1", "vn 0 0 1", 10),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, good, bad, line):
    path = tmp_path / "broken.obj"
    path.write_text(TINY_OBJ.replace(good, bad, 1))
    with pytest.raises(ValueError, match=rf"broken\.obj, line {line}\b"):
        read_ict_obj(path)


def test_missing_folder_contents(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        import_facexmodel(tmp_path, allow_partial=True)  # the neutral mesh is required even when partial
    message = str(info.value)
    assert str(tmp_path) in message
    assert "missing 158 of 158" in message and "generic_neutral_mesh.obj" in message
    assert "ICT-VGL/ICT-FaceKit" in message and "FaceXModel/" in message


@needs_facekit
def test_partial_folder_needs_allow_partial():
    with pytest.raises(FileNotFoundError) as info:
        import_facexmodel(RAW)
    message = str(info.value)
    assert str(RAW) in message and "missing 154 of 158" in message
    assert "identity001.obj" in message and "(149 more)" in message and "allow_partial" in message


@needs_facekit
def test_cli_writes_npz(tmp_path, packed):
    out = tmp_path / "model.npz"
    result = subprocess.run(
        [sys.executable, "-m", "core.ict_import", str(RAW), str(out), "--allow-partial"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stderr
    with np.load(out) as written:
        assert set(written.files) == set(packed.files)
        assert written["expression_basis"].shape == (2,) + packed["neutral"].shape
        np.testing.assert_array_equal(written["triangles"], packed["triangles"])
