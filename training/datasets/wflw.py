"""WFLW (98 points): `WFLW_annotations/list_98pt_rect_attr_train_test/list_98pt_rect_attr_{train,test}.txt`
and `WFLW_images/`.

Each annotation line holds 196 numbers (x0 y0 ... x97 y97), the face box (x_min y_min x_max y_max), six 0/1
attribute flags (pose, expression, illumination, make-up, occlusion, blur) and the image name relative to
WFLW_images/. One image can have several lines (one per face).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .common import WFLW98, AnnotatedImage, AnnotationError, LandmarkDataset, check_split

# WFLW's coordinates are 0-based pixel indices of pixel centres (LAB's C++/OpenCV tooling; readers such as
# HRNet and PIPNet index OpenCV images with them directly), so the top-left pixel's centre (0, 0) is our
# (0.5, 0.5).
WFLW_OFFSET = 0.5

ATTRIBUTES = ("pose", "expression", "illumination", "make_up", "occlusion", "blur")
N_FIELDS = 98 * 2 + 4 + len(ATTRIBUTES) + 1


def _annotation_file(root: Path, split: str) -> Path:
    name = f"list_98pt_rect_attr_{split}.txt"
    for candidate in (
        root / "WFLW_annotations" / "list_98pt_rect_attr_train_test" / name,
        root / "list_98pt_rect_attr_train_test" / name,
        root / name,
    ):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"wflw: {name} not found under {root} (expected WFLW_annotations/list_98pt_rect_attr_train_test/{name})"
    )


def parse_wflw_line(line: str, path: Path, line_number: int) -> tuple[np.ndarray, np.ndarray, dict[str, int], str]:
    """One annotation line -> (points (98, 2) and box (4,) in the file's coordinates, attributes, image name)."""
    fields = line.split()
    if len(fields) != N_FIELDS:
        raise AnnotationError(
            path,
            f"expected {N_FIELDS} fields (196 coordinates, 4 box, 6 attributes, image name), got {len(fields)}",
            line_number,
        )
    try:
        numbers = np.array([float(f) for f in fields[:200]], dtype=np.float64)
        flags = [int(f) for f in fields[200:206]]
    except ValueError as exc:
        raise AnnotationError(path, f"bad number ({exc})", line_number) from None
    if not np.isfinite(numbers).all():
        raise AnnotationError(path, "coordinates are not all finite", line_number)
    return numbers[:196].reshape(98, 2), numbers[196:200], dict(zip(ATTRIBUTES, flags)), fields[206]


class WFLWDataset(LandmarkDataset):
    """WFLW, `split` "train" (7500 faces) or "test" (2500 faces). Annotations are parsed on construction."""

    name = "wflw"

    def __init__(self, root: str | Path, split: str = "train") -> None:
        super().__init__(root)
        self.split = check_split(split, ("train", "test"), self.name)
        self.annotation_file = _annotation_file(self.root, split)
        self.images_dir = self.root / "WFLW_images"
        if not self.images_dir.is_dir():
            raise FileNotFoundError(f"wflw: image folder {self.images_dir} not found")
        text = self.annotation_file.read_text(encoding="utf-8")
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                self._items.append((*parse_wflw_line(line, self.annotation_file, number), number))
        if not self._items:
            raise AnnotationError(self.annotation_file, "no annotation lines")

    def _load(self, item: tuple[np.ndarray, np.ndarray, dict[str, int], str, int]) -> AnnotatedImage:
        points, box, attributes, image_name, line_number = item
        return AnnotatedImage(
            image_path=self.images_dir / image_name,
            landmarks=(points + WFLW_OFFSET).astype(np.float32),
            visibility=np.ones(98, np.float32),
            layout=WFLW98,
            semantics="wflw",
            box=(box + WFLW_OFFSET).astype(np.float32),
            extras={"attributes": dict(attributes), "annotation_path": self.annotation_file, "line": line_number},
        )
