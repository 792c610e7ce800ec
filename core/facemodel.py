"""The canonical face: the ICT-FaceKit Light model (MIT), loaded from its packed npz and evaluated in numpy.

The torch twin (batched, differentiable) is `core.model.face.TorchFaceModel`; both read the same arrays.
Units are centimetres, right-handed, +Y up, +Z out of the face (see shared conventions).
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .paths import ASSETS_DIR, SHARED_FACEKIT_DIR

FACEKIT_ENV = "INFINITE_LANDMARKS_FACEKIT"
FACEKIT_FILENAME = "ict_facekit_light.npz"

# ICT vertex ranges (inclusive starts, exclusive ends), from the FaceKit README.
FACE_VERTICES = slice(0, 9409)
NARROW_FACE_VERTICES = slice(0, 6706)
HEAD_AND_NECK_VERTICES = slice(9409, 11248)
EYEBALL_LEFT_VERTICES = slice(21451, 23021)
EYEBALL_RIGHT_VERTICES = slice(23021, 24591)


class FaceModelNotFoundError(FileNotFoundError):
    """Raised when no copy of the ICT face model can be found."""


def facemodel_candidates() -> list[Path]:
    """Places searched for the face model, in order: environment variable, assets/, ../shared/facekit."""
    candidates = []
    env = os.environ.get(FACEKIT_ENV)
    if env:
        path = Path(env)
        candidates.append(path / FACEKIT_FILENAME if path.is_dir() else path)
    candidates.append(ASSETS_DIR / "facekit" / FACEKIT_FILENAME)
    candidates.append(SHARED_FACEKIT_DIR / FACEKIT_FILENAME)
    return candidates


def find_facemodel() -> Path:
    """Return the first existing face-model npz, or raise a message naming every place searched."""
    candidates = facemodel_candidates()
    for path in candidates:
        if path.is_file():
            return path
    searched = "\n".join(f"  - {p}" for p in candidates)
    if not os.environ.get(FACEKIT_ENV):
        searched = f"  - ${FACEKIT_ENV} (not set)\n" + searched
    raise FaceModelNotFoundError(
        "ICT face model not found. Searched:\n" + searched + "\n"
        f"Fix: run `bash scripts/setup.sh` (copies it from ../shared/facekit into assets/facekit), or set "
        f"{FACEKIT_ENV} to a {FACEKIT_FILENAME}, or build one from the official ICT-FaceKit FaceXModel/ folder "
        f"with `python -m core.ict_import FaceXModel/ {FACEKIT_FILENAME}`."
    )


# ICT names use _L/_R for the subject's own left/right, as ARKit does with Left/Right.
def ict_to_arkit_name(name: str) -> str:
    """`eyeBlink_L` -> `eyeBlinkLeft`; names without a side suffix are unchanged."""
    if name.endswith("_L"):
        return name[:-2] + "Left"
    if name.endswith("_R"):
        return name[:-2] + "Right"
    return name


@dataclass(frozen=True)
class FaceModel:
    """The ICT face model as numpy arrays (float32 bases, centimetres)."""

    path: Path
    neutral: np.ndarray            # (V, 3)
    triangles: np.ndarray          # (T, 3) int32, fan-triangulated polys
    polys: np.ndarray              # (P, 4) int32, -1 in the 4th slot for triangles
    polys_uv: np.ndarray           # (P, 4) int32
    uv: np.ndarray                 # (U, 2)
    poly_material: np.ndarray      # (P,) int16
    material_names: tuple[str, ...]
    identity_basis: np.ndarray     # (100, V, 3), +1 sigma modes
    expression_basis: np.ndarray   # (57, V, 3), weight 0..1
    expression_names: tuple[str, ...]  # ICT names (_L/_R)

    @property
    def num_vertices(self) -> int:
        return int(self.neutral.shape[0])

    @property
    def num_identities(self) -> int:
        return int(self.identity_basis.shape[0])

    @property
    def num_expressions(self) -> int:
        return int(self.expression_basis.shape[0])

    @property
    def arkit_names(self) -> tuple[str, ...]:
        return tuple(ict_to_arkit_name(n) for n in self.expression_names)

    @functools.cached_property
    def triangle_material(self) -> np.ndarray:
        """Material index per triangle of `triangles` (polys are fan-triangulated in order)."""
        per_poly = np.where(self.polys[:, 3] >= 0, 2, 1)
        return np.repeat(self.poly_material, per_poly)

    @functools.cached_property
    def triangle_uv(self) -> np.ndarray:
        """UV indices per triangle corner, (T, 3), matching `triangles`."""
        return fan_triangulate(self.polys_uv)

    def vertices(self, identity: np.ndarray | None = None, expression: np.ndarray | None = None) -> np.ndarray:
        """Mesh vertices (V, 3) for identity weights (<=100, ~N(0,1)) and expression weights (<=57, 0..1)."""
        verts = self.neutral.copy()
        if identity is not None:
            identity = np.asarray(identity, np.float32)
            verts += np.tensordot(identity, self.identity_basis[: identity.shape[0]], axes=1)
        if expression is not None:
            expression = np.asarray(expression, np.float32)
            verts += np.tensordot(expression, self.expression_basis[: expression.shape[0]], axes=1)
        return verts

    def material_mask(self, *names: str) -> np.ndarray:
        """Boolean mask over `triangles` for the named materials (e.g. "M_Face")."""
        ids = [self.material_names.index(n) for n in names]
        return np.isin(self.triangle_material, ids)


def fan_triangulate(polys: np.ndarray) -> np.ndarray:
    """Split (P, 4) polys (-1 padded) into (T, 3) int32 triangles, in poly order: (a,b,c) then (a,c,d)."""
    polys = np.asarray(polys)
    pairs = np.stack([polys[:, [0, 1, 2]], polys[:, [0, 2, 3]]], axis=1).reshape(-1, 3)
    keep = np.stack([np.ones(len(polys), bool), polys[:, 3] >= 0], axis=1).reshape(-1)
    return pairs[keep].astype(np.int32)


@functools.lru_cache(maxsize=2)
def load_facemodel(path: str | Path | None = None) -> FaceModel:
    """Load (and cache) the face model from `path` or from `find_facemodel()`."""
    path = Path(path) if path is not None else find_facemodel()
    if not path.is_file():
        raise FaceModelNotFoundError(f"Face model file {path} does not exist.")
    try:
        data = np.load(path)
        arrays = {k: data[k] for k in data.files}
    except Exception as exc:  # a truncated or foreign file: say which
        raise ValueError(f"{path} is not a readable face-model npz ({exc}).") from exc
    missing = {"neutral", "polys", "identity_basis", "expression_basis", "expression_names"} - set(arrays)
    if missing:
        raise ValueError(f"{path} is not an ICT face-model npz: missing arrays {sorted(missing)}.")
    polys = arrays["polys"].astype(np.int32)
    return FaceModel(
        path=path,
        neutral=arrays["neutral"].astype(np.float32),
        triangles=arrays["triangles"].astype(np.int32) if "triangles" in arrays else fan_triangulate(polys),
        polys=polys,
        polys_uv=arrays["polys_uv"].astype(np.int32),
        uv=arrays["uv"].astype(np.float32),
        poly_material=arrays["poly_material"].astype(np.int16),
        material_names=tuple(str(n) for n in arrays["material_names"]),
        identity_basis=arrays["identity_basis"].astype(np.float32),
        expression_basis=arrays["expression_basis"].astype(np.float32),
        expression_names=tuple(str(n) for n in arrays["expression_names"]),
    )
