"""Inputs of the real-face benchmark: which faces, their 68-point ground truth and head pose, their pixels.

Two sets, read in place from ../shared/realfaces (research only: never copied into the repository):
- AFLW2000-3D dev: every `.pts` (the manual 2D re-annotation) in sorted order, head pose from the `.mat`'s
  `Pose_Para`; the order of ../shared/tools/realface_check.py, so `--limit N` gives its first N faces;
- 300-W validation: the held-out split of `training.data.make_dataset("300w:root=...,val_fraction=0.1",
  split="val")`, the last 10% of the sorted `.pts` files under 300w_train (all HELEN).
Points are in the pixel convention of conventions.md (a 1-based `.pts` coordinate minus 0.5).

Our `ibug68_ls3d` layout is fitted to AFLW2000-3D dev's labels (assets/layouts/README.md), so on that set each photo
is scored with a layout fitted on the other fold only (cross-fitting): fold `fold_of(position)` in the order above,
its layout `fold_layout_path(fold)` (built with the shipped one by `python -m tools.build_layouts ibug68_ls3d`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.realfaces.scoring import pose_angles, pose_rotation
from core.paths import REPO_DIR
from core.runtime.images import read_image
from training.datasets.aflw2000 import read_aflw2000_mat
from training.datasets.pts import PTS_OFFSET, parse_pts

REALFACES = REPO_DIR.parent / "shared" / "realfaces"
AFLW2000_DEV = REALFACES / "aflw2000_dev"
W300_TRAIN = REALFACES / "300w_train"
W300_VAL_FRACTION = 0.1
FOLDS = 2
FOLD_LAYOUTS_DIR = REPO_DIR / "bench" / "realfaces" / "layouts"


def fold_of(position: int) -> int:
    """The cross-fitting fold of the face at this position of its set's order."""
    return position % FOLDS


def fold_layout_path(fold: int) -> Path:
    """The `ibug68_ls3d` that scores fold `fold` of AFLW2000-3D dev: fitted on the other folds' photos."""
    return FOLD_LAYOUTS_DIR / f"ibug68_ls3d_fold{fold}.json"


@dataclass(frozen=True)
class Face:
    """One annotated face: its image, 68 iBUG points (pixels, float64) and head pose (pitch, yaw, roll, degrees,
    AFLW2000 convention) where the set has one."""

    name: str
    image_path: Path
    gt: np.ndarray
    pose: np.ndarray | None


@dataclass(frozen=True)
class FaceSet:
    """A benchmark set: its faces, and the semantics and layout our model is asked for on it (the set's
    annotation convention). With `fold_layouts`, the face at position i is asked for `fold_layouts[fold_of(i)]`
    instead (the cross-fitted versions of `layout`)."""

    key: str
    title: str
    semantics: str
    faces: list[Face]
    layout: str = "ibug68"
    fold_layouts: tuple[Path, ...] = ()

    def layout_of(self, position: int) -> str | Path:
        """The layout our model is asked for on the face at this position."""
        return self.fold_layouts[fold_of(position)] if self.fold_layouts else self.layout


def gt_pose(mat_path: Path) -> np.ndarray:
    """`Pose_Para`'s (pitch, yaw, roll) in degrees, normalised through the rotation (some extreme annotations
    have angle triples outside the principal range that mean the same rotation)."""
    _, pose = read_aflw2000_mat(mat_path)
    return pose_angles(pose_rotation(*np.degrees(pose[:3])))


def list_faces(spec: str, split: str, limit: int | None = None) -> list[Face]:
    """The faces of a `training.data` real-dataset spec's split (its reader's order), the first `limit` only.

    Ground truth is read again from each `.pts` in float64 (the reader keeps float32); the pose comes from a
    `.mat` beside it when there is one."""
    from training.data import make_dataset  # torch: only to list the split the trainer holds out

    dataset = make_dataset(spec, augment=False, split=split)
    faces = []
    for index in dataset.indices[:limit]:
        sample = dataset.reader[int(index)]
        pts = Path(sample.extras["annotation_path"])
        mat = pts.with_suffix(".mat")
        faces.append(Face(pts.stem, Path(sample.image_path), parse_pts(pts) + PTS_OFFSET,
                          gt_pose(mat) if mat.is_file() else None))
    return faces


def aflw2000_dev(limit: int | None = None, root: Path = AFLW2000_DEV) -> FaceSet:
    """AFLW2000-3D dev against its `.pts` re-annotation (LS3D-W: 300-W's point definitions, 3D-consistent); our
    model in its canonical (3D-consistent) semantics on the `ibug68_ls3d` layout (LS3D-W's points on the surface),
    cross-fitted (module docstring)."""
    # The 300-W reader reads the re-annotation's .pts (training.evaluate reads this set the same way).
    return FaceSet("aflw2000_dev", "AFLW2000-3D dev", "canonical", list_faces(f"300w:root={root}", "all", limit),
                   layout="ibug68_ls3d", fold_layouts=tuple(fold_layout_path(f) for f in range(FOLDS)))


def w300_val(limit: int | None = None, root: Path = W300_TRAIN) -> FaceSet:
    """300-W validation split (training's held-out 10%); our model asked for 300-W semantics (ibug2d)."""
    spec = f"300w:root={root},val_fraction={W300_VAL_FRACTION}"
    return FaceSet("300w_val", "300-W validation", "ibug2d", list_faces(spec, "val", limit))


def load_images(faces: list[Face]) -> list[np.ndarray]:
    """Each face's image as RGB uint8, decoded once with core.predict's reader; every method gets these pixels."""
    return [read_image(face.image_path) for face in faces]
