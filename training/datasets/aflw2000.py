"""AFLW2000-3D: `imageNNNNN.jpg` with `imageNNNNN.mat` holding `pt3d_68` (3 x 68: x, y, z of the fitted 3DMM's
68 landmarks; the jaw is 3D-consistent, not the 2D silhouette), `Pose_Para` (1 x 7: pitch, yaw, roll in
radians, tx, ty, tz, scale) and `pt2d` (the old 21 AFLW points, not used here).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

from .common import IBUG68, AnnotatedImage, AnnotationError, LandmarkDataset, find_image_beside

# pt3d_68 comes from 3DDFA's Matlab fitting, which is 1-based: its projection flips y as `height + 1 - y`,
# and the dataset's own viewer plots pt3d_68 straight over `imshow` (pixel centres at 1..W). So x - 0.5.
AFLW2000_OFFSET = -0.5


def read_aflw2000_mat(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(pt3d_68 as (68, 3) in the file's coordinates, Pose_Para as (7,)) from one AFLW2000-3D .mat file."""
    path = Path(path)
    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as exc:  # scipy raises several types for files that are not .mat at all
        raise AnnotationError(path, f"cannot read as a MATLAB .mat file ({exc})") from exc
    for key in ("pt3d_68", "Pose_Para"):
        if key not in mat:
            found = sorted(k for k in mat if not k.startswith("__"))
            raise AnnotationError(path, f"missing {key} (found: {', '.join(found) or 'nothing'})")
    pt3d = np.asarray(mat["pt3d_68"], dtype=np.float64)
    pose = np.asarray(mat["Pose_Para"], dtype=np.float64).ravel()
    if pt3d.shape != (3, 68):
        raise AnnotationError(path, f"pt3d_68 has shape {pt3d.shape}, expected (3, 68)")
    if pose.shape != (7,):
        raise AnnotationError(
            path, f"Pose_Para has {pose.size} values, expected 7 (pitch, yaw, roll, tx, ty, tz, scale)"
        )
    if not (np.isfinite(pt3d).all() and np.isfinite(pose).all()):
        raise AnnotationError(path, "pt3d_68 or Pose_Para has non-finite values")
    return pt3d.T, pose


class AFLW2000Dataset(LandmarkDataset):
    """AFLW2000-3D: the folder with the 2000 image/.mat pairs (or its parent holding `AFLW2000/`).

    extras: "depth" (68,) the z row of pt3d_68, in the same pixel scale as x and y; "pose_rad" and
    "pose_deg" (pitch, yaw, roll); "translation" (tx, ty, tz); "scale". Visibility is not annotated: all 1.
    """

    name = "aflw2000"

    def __init__(self, root: str | Path) -> None:
        super().__init__(root)
        folder = self.root / "AFLW2000" if (self.root / "AFLW2000").is_dir() else self.root
        for mat in sorted(folder.glob("image*.mat")):
            image = find_image_beside(mat)
            if image is None:
                raise FileNotFoundError(f"aflw2000: no image beside {mat}")
            self._items.append((mat, image))
        if not self._items:
            raise FileNotFoundError(f"aflw2000: no image*.mat files in {folder}")

    def _load(self, item: tuple[Path, Path]) -> AnnotatedImage:
        mat, image = item
        pt3d, pose = read_aflw2000_mat(mat)
        angles = pose[:3]
        return AnnotatedImage(
            image_path=image,
            landmarks=(pt3d[:, :2] + AFLW2000_OFFSET).astype(np.float32),
            visibility=np.ones(68, np.float32),
            layout=IBUG68,
            semantics="aflw3d",
            extras={
                "annotation_path": mat,
                "depth": pt3d[:, 2].astype(np.float32),
                "pose_rad": angles.copy(),
                "pose_deg": np.degrees(angles),
                "translation": pose[3:6].copy(),
                "scale": float(pose[6]),
            },
        )
