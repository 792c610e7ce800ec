"""COFW (29 points with occlusion flags): `COFW_train_color.mat` / `COFW_test_color.mat`.

Each file holds the images themselves (`IsTr` / `IsT`, a cell array of uint8 RGB or grayscale images),
`phisTr` / `phisT` (N x 87: 29 x, 29 y, 29 occlusion flags, 1 = occluded) and `bboxesTr` / `bboxesT`
(N x 4: x, y, width, height). The colour release is MATLAB v7.3 (HDF5), read with h5py when it is installed;
MATLAB v5 files (e.g. re-saved copies) are read with scipy.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import scipy.io

from .common import COFW29, AnnotatedImage, AnnotationError, LandmarkDataset, check_split

log = logging.getLogger(__name__)

# COFW was annotated and packed in Matlab: 1-based pixel coordinates (pixel centres at 1..W). The boxes are
# rectangles in the same Matlab axes, so their corner moves by the same offset.
COFW_OFFSET = -0.5

KEYS = {"train": ("IsTr", "phisTr", "bboxesTr"), "test": ("IsT", "phisT", "bboxesT")}


def _mat_version(path: Path) -> tuple[int, int]:
    try:
        return scipy.io.matlab.matfile_version(str(path))
    except Exception as exc:  # scipy raises several types for files that are not .mat at all
        raise AnnotationError(path, f"not a MATLAB .mat file ({exc})") from exc


def _read_v5(path: Path, keys: tuple[str, str, str]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as exc:  # scipy raises several types for damaged files
        raise AnnotationError(path, f"cannot read as a MATLAB .mat file ({exc})") from exc
    missing = [k for k in keys if k not in mat]
    if missing:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise AnnotationError(path, f"missing {', '.join(missing)} (found: {', '.join(found) or 'nothing'})")
    images, phis, boxes = (mat[k] for k in keys)
    return [np.asarray(im) for im in np.asarray(images, dtype=object).ravel()], phis, boxes


def _read_v73(path: Path, keys: tuple[str, str, str]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    try:
        import h5py
    except ImportError:
        raise ImportError(f"{path}: this .mat is MATLAB v7.3 (HDF5); install h5py to read it") from None
    with h5py.File(path, "r") as f:
        missing = [k for k in keys if k not in f]
        if missing:
            raise AnnotationError(path, f"missing {', '.join(missing)} (found: {', '.join(sorted(f.keys()))})")
        # HDF5 stores MATLAB arrays column-major, i.e. with the axes reversed; a cell array is an array of
        # references to datasets.
        images = [np.transpose(f[ref][()]) for ref in f[keys[0]][()].ravel()]
        phis = np.transpose(f[keys[1]][()])
        boxes = np.transpose(f[keys[2]][()])
    return images, phis, boxes


def read_cofw_mat(path: str | Path, split: str) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """(images, phis (N, 87), boxes (N, 4)) from a COFW .mat file, in the file's own (1-based) coordinates."""
    path = Path(path)
    keys = KEYS[check_split(split, tuple(KEYS), "cofw")]
    major, _ = _mat_version(path)
    images, phis, boxes = (_read_v73 if major == 2 else _read_v5)(path, keys)
    phis = np.asarray(phis, dtype=np.float64)
    boxes = np.asarray(boxes, dtype=np.float64)
    if phis.ndim != 2 or phis.shape[1] != 87:
        raise AnnotationError(
            path, f"{keys[1]} has shape {phis.shape}, expected (N, 87): 29 x, 29 y, 29 occlusion flags"
        )
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise AnnotationError(path, f"{keys[2]} has shape {boxes.shape}, expected (N, 4): x, y, width, height")
    if not len(images) == len(phis) == len(boxes):
        raise AnnotationError(
            path, f"{keys[0]}, {keys[1]} and {keys[2]} disagree on the count: {len(images)}, {len(phis)}, {len(boxes)}"
        )
    return images, phis, boxes


class COFWDataset(LandmarkDataset):
    """COFW, `split` "train" (1345 faces) or "test" (507 faces); the whole .mat is read on construction.

    `image_path` is the .mat file and the pixels are in `AnnotatedImage.image`. Occluded points have
    visibility 0 and are flagged in extras["occluded"].
    """

    name = "cofw"

    def __init__(self, root: str | Path, split: str = "train") -> None:
        super().__init__(root)
        self.split = check_split(split, tuple(KEYS), self.name)
        candidates = [self.root / f"COFW_{split}_color.mat", self.root / f"COFW_{split}.mat"]
        self.mat_path = next((p for p in candidates if p.is_file()), None)
        if self.mat_path is None:
            raise FileNotFoundError(f"cofw: none of {', '.join(p.name for p in candidates)} in {self.root}")
        images, phis, boxes = read_cofw_mat(self.mat_path, split)
        self._items = list(zip(range(len(images)), images, phis, boxes))
        log.debug("cofw: %d faces from %s", len(self._items), self.mat_path)

    def _load(self, item: tuple[int, np.ndarray, np.ndarray, np.ndarray]) -> AnnotatedImage:
        index, image, phis, (x, y, w, h) = item
        occluded = phis[58:87] != 0
        x0, y0 = x + COFW_OFFSET, y + COFW_OFFSET
        return AnnotatedImage(
            image_path=self.mat_path,
            landmarks=(np.stack([phis[0:29], phis[29:58]], axis=1) + COFW_OFFSET).astype(np.float32),
            visibility=(~occluded).astype(np.float32),
            layout=COFW29,
            semantics="cofw",
            box=np.array([x0, y0, x0 + w, y0 + h], np.float32),
            extras={"occluded": occluded, "index": index},
            image=image,
        )
