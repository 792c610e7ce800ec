"""Build the packed ICT-FaceKit model (``ict_facekit_light.npz``) from the official ``FaceXModel/`` folder.

The official ICT-FaceKit (github.com/ICT-VGL/ICT-FaceKit, folder ``FaceXModel/``) ships the ICT Face Model
Light as 158 OBJ files sharing one topology: ``generic_neutral_mesh.obj``, ``identity000.obj`` ..
``identity099.obj`` and 57 expression shapes named after the expression (``jawOpen.obj``, ...).

The packed npz is derived from them as follows (verified bit for bit against the shipped npz):

- ``neutral`` = neutral OBJ ``v`` lines as float32; ``uv`` = ``vt`` lines as float32.
- ``polys`` / ``polys_uv`` = the ``f v/vt`` corners, 0-based, triangles padded with -1 in the 4th slot.
- ``poly_material`` indexes ``material_names``, which are in order of first ``usemtl`` in the OBJ
  (not the alphabetical order of ``ICTFaceModelMaterial.mtl``).
- ``triangles`` = ``polys`` fan-triangulated: quad (a, b, c, d) -> (a, b, c), (a, c, d).
- ``identity_basis[i]`` = float16(identityNNN - neutral) and ``expression_basis[j]`` = float16(expr - neutral),
  with the subtraction done in float64 on the parsed decimal values (no scaling); subtracting float32 copies
  instead changes the float16 rounding of a few thousand entries per shape.

Generic OBJ loaders split vertices at UV seams and renumber them, so this module reads the ``v``, ``vt``,
``usemtl`` and ``f`` lines itself, with vectorised numpy parsing.

CLI: ``python -m core.ict_import FOLDER OUT.npz [--allow-partial]``.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from numpy.typing import DTypeLike

from .facemodel import fan_triangulate

log = logging.getLogger(__name__)

FACEKIT_SOURCE = "the official ICT-FaceKit: https://github.com/ICT-VGL/ICT-FaceKit, folder FaceXModel/"
NEUTRAL_FILE = "generic_neutral_mesh.obj"
IDENTITY_NAMES: tuple[str, ...] = tuple(f"identity{i:03d}" for i in range(100))
# Order of the packed npz: the 53 names of ICT's vertex_indices.json "expressions", then the 4 shapes it omits.
EXPRESSION_NAMES: tuple[str, ...] = (
    "browDown_L", "browDown_R", "browInnerUp_L", "browInnerUp_R", "browOuterUp_L", "browOuterUp_R",
    "cheekPuff_L", "cheekPuff_R", "cheekSquint_L", "cheekSquint_R", "eyeBlink_L", "eyeBlink_R",
    "eyeLookDown_L", "eyeLookDown_R", "eyeLookIn_L", "eyeLookIn_R", "eyeLookOut_L", "eyeLookOut_R",
    "eyeLookUp_L", "eyeLookUp_R", "eyeSquint_L", "eyeSquint_R", "eyeWide_L", "eyeWide_R",
    "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose", "mouthDimple_L", "mouthDimple_R",
    "mouthFrown_L", "mouthFrown_R", "mouthFunnel", "mouthLeft", "mouthLowerDown_L", "mouthLowerDown_R",
    "mouthPress_L", "mouthPress_R", "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper",
    "mouthShrugLower", "mouthShrugUpper", "mouthSmile_L", "mouthSmile_R", "mouthStretch_L", "mouthStretch_R",
    "mouthUpperUp_L", "mouthUpperUp_R", "noseSneer_L", "noseSneer_R",
    "PupilDilate_L", "PupilDilate_R", "cheekRaiser_L", "cheekRaiser_R",
)

_IGNORED_TAGS = frozenset({"", "mtllib", "o", "g", "s"})
_FACE_CORNER = r"[ \t]+[0-9]+/[0-9]+"
_FACE_BODY = re.compile(rf"(?:{_FACE_CORNER}){{3,4}}[ \t]*")
_FACE_BLOCK = re.compile(rf"(?:(?:{_FACE_CORNER}){{3,4}}[ \t]*\n)*")


@dataclass(frozen=True)
class ObjMesh:
    """One ICT OBJ file, with the OBJ's own vertex numbering (0-based)."""

    vertices: np.ndarray  # (V, 3), float32 unless asked otherwise
    uv: np.ndarray  # (T, 2) float32
    polys: np.ndarray  # (P, 4) int32 vertex indices, -1 in the 4th slot for triangles
    polys_uv: np.ndarray  # (P, 4) int32 indices into uv, -1 likewise
    poly_material: np.ndarray  # (P,) int16 index into material_names
    material_names: tuple[str, ...]  # in order of first usemtl


def read_ict_obj(path: str | Path, dtype: DTypeLike = np.float32) -> ObjMesh:
    """Read an ICT-FaceKit OBJ (``v``, ``vt``, ``usemtl``, ``f v/vt`` lines) without renumbering vertices.

    ``dtype`` is the dtype of ``vertices``; values are parsed as float64 and then cast.
    Raises ValueError naming the file and line number for a malformed line.
    """
    path = Path(path)
    # errors="replace" turns stray bytes into a token that fails to parse, so they get a line number too.
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    try:
        mesh = _parse_obj_lines(lines)
    except (ValueError, OverflowError) as exc:
        found = _find_bad_line(lines)
        if found is None:
            raise ValueError(f"{path}: could not parse OBJ: {exc}") from exc
        index, reason = found
        raise ValueError(f"{path}, line {index + 1}: {reason}: {lines[index][:80]!r}") from None
    return replace(mesh, vertices=mesh.vertices.astype(dtype, copy=False))


def _parse_obj_lines(lines: list[str]) -> ObjMesh:
    """Vectorised parse; raises a bare ValueError on any problem (read_ict_obj then locates the line)."""
    tags = [(line.split(None, 1) or [""])[0] for line in lines]
    rows: dict[str, list[int]] = {"v": [], "vt": [], "f": [], "usemtl": []}
    unknown = {t for t in set(tags) if t not in rows and t not in _IGNORED_TAGS and not t.startswith("#")}
    if unknown:
        raise ValueError(f"unknown keywords {sorted(unknown)}")
    for i, tag in enumerate(tags):
        if tag in rows:
            rows[tag].append(i)

    vertices = _parse_floats([lines[i].lstrip()[1:] for i in rows["v"]], 3)
    uv = _parse_floats([lines[i].lstrip()[2:] for i in rows["vt"]], 2).astype(np.float32)
    polys, polys_uv = _parse_faces([lines[i].lstrip()[1:] for i in rows["f"]])
    corners = polys >= 0
    if np.any(polys[corners] >= len(vertices)) or np.any(polys_uv[corners] >= len(uv)):
        raise ValueError("face index out of range")

    material_rows = np.asarray(rows["usemtl"], dtype=np.int64)
    material_of_row: list[str] = []
    for i in rows["usemtl"]:
        parts = lines[i].split()
        if len(parts) != 2:
            raise ValueError("usemtl needs exactly one name")
        material_of_row.append(parts[1])
    material_names = tuple(dict.fromkeys(material_of_row))  # first-use order, duplicates dropped
    row_to_material = np.array([material_names.index(n) for n in material_of_row], dtype=np.int16)
    active = np.searchsorted(material_rows, np.asarray(rows["f"], dtype=np.int64)) - 1
    if np.any(active < 0):
        raise ValueError("face before any usemtl")
    return ObjMesh(vertices, uv, polys, polys_uv, row_to_material[active], material_names)


def _parse_floats(texts: list[str], width: int) -> np.ndarray:
    if not texts:
        return np.zeros((0, width), np.float64)
    values = np.loadtxt(texts, dtype=np.float64, comments=None, ndmin=2)
    # loadtxt silently skips blank rows, so a bare "v" line shows up as a row count mismatch.
    if values.shape != (len(texts), width):
        raise ValueError(f"expected {len(texts)} rows of {width} numbers, got shape {values.shape}")
    return values


def _parse_faces(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Parse face bodies (" 1/1 2/2 3/3 4/4") into 0-based (P, 4) vertex and uv index arrays."""
    polys = np.full((len(texts), 4), -1, np.int32)
    polys_uv = np.full((len(texts), 4), -1, np.int32)
    if not texts:
        return polys, polys_uv
    if _FACE_BLOCK.fullmatch("\n".join(texts) + "\n") is None:
        raise ValueError("face line is not 3 or 4 'v/vt' corners")
    n_corners = np.array([t.count("/") for t in texts])
    for k in (3, 4):
        sel = np.flatnonzero(n_corners == k)
        if len(sel) == 0:
            continue
        numbers = np.loadtxt([texts[j].replace("/", " ") for j in sel], dtype=np.int64, comments=None, ndmin=2)
        # OBJ indices are 1-based; 0 would become the -1 padding, and huge values would wrap in int32.
        if numbers.min() < 1 or numbers.max() > np.iinfo(np.int32).max:
            raise ValueError("face index out of range")
        polys[sel, :k] = numbers[:, 0::2] - 1
        polys_uv[sel, :k] = numbers[:, 1::2] - 1
    return polys, polys_uv


def _find_bad_line(lines: list[str]) -> tuple[int, str] | None:
    """Check line by line with the same rules as the vectorised parse; return (index, reason) of the first bad one."""
    n_v = sum(1 for line in lines if line.split(None, 1)[:1] == ["v"])
    n_vt = sum(1 for line in lines if line.split(None, 1)[:1] == ["vt"])
    seen_material = False
    for i, line in enumerate(lines):
        parts = line.split()
        tag = parts[0] if parts else ""
        if tag in ("v", "vt"):
            width = 3 if tag == "v" else 2
            if len(parts) != width + 1:
                return i, f"'{tag}' needs {width} numbers, got {len(parts) - 1}"
            try:
                [float(p) for p in parts[1:]]
            except ValueError:
                return i, f"'{tag}' has a value that is not a number"
        elif tag == "usemtl":
            if len(parts) != 2:
                return i, "usemtl needs exactly one material name"
            seen_material = True
        elif tag == "f":
            if _FACE_BODY.fullmatch(line.lstrip()[1:]) is None:
                return i, "face must have 3 or 4 corners written as v/vt with positive integers"
            if not seen_material:
                return i, "face before any usemtl"
            for corner in parts[1:]:
                v, vt = (int(x) for x in corner.split("/"))
                if not (1 <= v <= n_v and 1 <= vt <= n_vt):
                    return i, f"corner {corner} out of range (file has {n_v} v and {n_vt} vt lines)"
        elif tag not in _IGNORED_TAGS and not tag.startswith("#"):
            return i, f"unknown keyword {tag!r}"
    return None


def expected_files() -> list[str]:
    """File names of the official FaceXModel/ folder that the importer reads."""
    return [NEUTRAL_FILE] + [f"{n}.obj" for n in IDENTITY_NAMES] + [f"{n}.obj" for n in EXPRESSION_NAMES]


def _missing_files_error(folder: Path, missing: list[str], n_expected: int, hint_partial: bool) -> FileNotFoundError:
    shown = ", ".join(missing[:5]) + (f", ... ({len(missing) - 5} more)" if len(missing) > 5 else "")
    message = (
        f"ICT FaceKit folder {folder} is missing {len(missing)} of {n_expected} OBJ files: {shown}. "
        f"Get {FACEKIT_SOURCE}"
    )
    if hint_partial:
        message += ", or pass allow_partial=True (CLI: --allow-partial) to import only the files present"
    return FileNotFoundError(message + ".")


def import_facexmodel(
    folder: str | Path, allow_partial: bool = False, progress: bool = False
) -> dict[str, np.ndarray]:
    """Import an official ICT-FaceKit ``FaceXModel/`` folder into the arrays of ``ict_facekit_light.npz``.

    With ``allow_partial`` missing identity/expression OBJs are skipped (their names are left out of
    ``identity_names`` / ``expression_names``); the neutral mesh is always required.
    ``progress`` shows a tqdm bar over the OBJ files.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"ICT FaceKit folder not found: {folder}. Get {FACEKIT_SOURCE}.")
    expected = expected_files()
    missing = [name for name in expected if not (folder / name).is_file()]
    if missing and (not allow_partial or NEUTRAL_FILE in missing):
        raise _missing_files_error(folder, missing, len(expected), hint_partial=NEUTRAL_FILE not in missing)
    if missing:
        log.warning("%s: importing %d of %d OBJ files (%d missing)", folder, len(expected) - len(missing),
                    len(expected), len(missing))

    identity_names = [n for n in IDENTITY_NAMES if f"{n}.obj" not in missing]
    expression_names = [n for n in EXPRESSION_NAMES if f"{n}.obj" not in missing]
    files = [NEUTRAL_FILE] + [f"{n}.obj" for n in identity_names + expression_names]
    if progress:
        from tqdm import tqdm

        files = tqdm(files, desc="ICT OBJs", unit="obj")

    start = time.perf_counter()
    shapes: list[np.ndarray] = []
    neutral: ObjMesh | None = None
    for name in files:
        mesh = read_ict_obj(folder / name, dtype=np.float64)
        if neutral is None:
            neutral = mesh
        else:
            if mesh.vertices.shape != neutral.vertices.shape or not (
                np.array_equal(mesh.polys, neutral.polys) and np.array_equal(mesh.polys_uv, neutral.polys_uv)
            ):
                raise ValueError(f"{folder / name}: topology differs from {NEUTRAL_FILE}")
            # float64 difference, then float16: this is what reproduces the shipped npz bit for bit.
            shapes.append((mesh.vertices - neutral.vertices).astype(np.float16))
    elapsed = time.perf_counter() - start
    n_files = 1 + len(shapes)
    log.info("read %d OBJ files in %.1f s (%.0f ms per OBJ)", n_files, elapsed, 1000 * elapsed / n_files)

    n_vertices = len(neutral.vertices)
    empty = np.zeros((0, n_vertices, 3), np.float16)
    n_id = len(identity_names)
    return {
        "neutral": neutral.vertices.astype(np.float32),
        "polys": neutral.polys,
        "polys_uv": neutral.polys_uv,
        "uv": neutral.uv,
        "poly_material": neutral.poly_material,
        "material_names": np.array(neutral.material_names, dtype=str),
        "triangles": fan_triangulate(neutral.polys),
        "identity_basis": np.stack(shapes[:n_id]) if n_id else empty,
        "identity_names": np.array(identity_names, dtype=str),
        "expression_basis": np.stack(shapes[n_id:]) if expression_names else empty,
        "expression_names": np.array(expression_names, dtype=str),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: import FOLDER and write a compressed npz."""
    parser = argparse.ArgumentParser(prog="python -m core.ict_import", description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="official ICT-FaceKit FaceXModel/ folder")
    parser.add_argument("out", type=Path, help="output .npz (written compressed)")
    parser.add_argument("--allow-partial", action="store_true", help="import the OBJs present, skip missing ones")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from tqdm.contrib.logging import logging_redirect_tqdm

    try:
        with logging_redirect_tqdm():
            arrays = import_facexmodel(args.folder, allow_partial=args.allow_partial, progress=True)
    except (FileNotFoundError, ValueError) as exc:
        log.error("%s", exc)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "wb") as fh:  # a file object stops numpy from appending ".npz" to the name
        np.savez_compressed(fh, **arrays)
    log.info("wrote %s (%d identities, %d expressions, %.1f MB)", args.out, len(arrays["identity_names"]),
             len(arrays["expression_names"]), args.out.stat().st_size / 1e6)
    return 0


if __name__ == "__main__":
    sys.exit(main())
