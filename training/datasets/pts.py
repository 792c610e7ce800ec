"""iBUG `.pts` files and the datasets that use them: 300W (folders of images + .pts), 300VW (videos with a
.pts per frame) and MERL-RAV (.pts with visibility coded in the coordinates).

A .pts file looks like

    version: 1
    n_points:  68
    {
    446.000 91.000
    ...
    }

Its coordinates are 1-based Matlab pixel coordinates (pixel centres at 1..W), so ours are x - 0.5, y - 0.5.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from .common import IBUG68, AnnotatedImage, AnnotationError, LandmarkDataset, annotations_with_images, check_split

log = logging.getLogger(__name__)

# iBUG annotations are made in Matlab, whose pixel centres are at integer coordinates starting at 1.
PTS_OFFSET = -0.5


def parse_pts(path: str | Path) -> np.ndarray:
    """The points of a .pts file as (N, 2) float64, in the file's own (1-based) coordinates."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise AnnotationError(path, f"not a text file ({exc.reason})") from exc

    n_points = None
    open_line = None
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        if line == "{":
            open_line = number
            break
        key, sep, value = line.partition(":")
        if not sep:
            raise AnnotationError(path, f"expected a 'key: value' header line or '{{', got {raw!r}", number)
        if key.strip() == "n_points":
            try:
                n_points = int(value)
            except ValueError:
                raise AnnotationError(path, f"n_points is not an integer: {raw!r}", number) from None
    if open_line is None:
        raise AnnotationError(path, "no '{' opening the point list", max(len(lines), 1))
    if n_points is None:
        raise AnnotationError(path, "the header has no n_points line", open_line)

    points: list[tuple[float, float]] = []
    close_line = None
    for number in range(open_line + 1, len(lines) + 1):
        raw = lines[number - 1]
        line = raw.strip()
        if not line:
            continue
        if line == "}":
            close_line = number
            break
        parts = line.split()
        try:
            if len(parts) != 2:
                raise ValueError
            x, y = float(parts[0]), float(parts[1])
        except ValueError:
            raise AnnotationError(path, f"expected 2 numbers, got {line!r}", number) from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise AnnotationError(path, f"point is not finite: {line!r}", number)
        points.append((x, y))
    if close_line is None:
        raise AnnotationError(path, "no '}' closing the point list", max(len(lines), 1))
    if len(points) != n_points:
        raise AnnotationError(path, f"n_points says {n_points} but found {len(points)} points", close_line)
    for number in range(close_line + 1, len(lines) + 1):
        if lines[number - 1].strip():
            raise AnnotationError(path, f"unexpected text after '}}': {lines[number - 1]!r}", number)
    return np.array(points, dtype=np.float64).reshape(-1, 2)


def _read_68(path: Path) -> np.ndarray:
    points = parse_pts(path)
    if len(points) != 68:
        raise AnnotationError(path, f"expected 68 points ({IBUG68}), found {len(points)}")
    return points


class IBUG300WDataset(LandmarkDataset):
    """300W (and any folder tree of images with same-stem iBUG 68-point .pts files), walked recursively."""

    name = "300w"

    def __init__(self, root: str | Path) -> None:
        super().__init__(root)
        self._items = annotations_with_images(self.root, sorted(self.root.rglob("*.pts")), self.name, ".pts")

    def _load(self, item: tuple[Path, Path]) -> AnnotatedImage:
        pts, image = item
        points = _read_68(pts)
        return AnnotatedImage(
            image_path=image,
            landmarks=(points + PTS_OFFSET).astype(np.float32),
            visibility=np.ones(68, np.float32),
            layout=IBUG68,
            semantics="ibug2d",
            extras={"annotation_path": pts},
        )


class IBUG300VWDataset(LandmarkDataset):
    """300VW: `<clip>/vid.avi` with `<clip>/annot/000001.pts ...` (1-based frame numbers); one sample per
    annotated frame. `frame_index` is 0-based (annot/000001.pts is frame 0); the file's number is kept in
    extras["frame_number"]. Frames are decoded only when `load_image()` is called."""

    name = "300vw"

    def __init__(self, root: str | Path) -> None:
        super().__init__(root)
        for annot in sorted(p for p in self.root.rglob("annot") if p.is_dir()):
            clip = annot.parent
            video = clip / "vid.avi"
            if not video.is_file():
                log.warning("%s: skipped clip %s: no vid.avi", self.name, clip)
                continue
            clip_id = clip.relative_to(self.root).as_posix()
            for pts in sorted(annot.glob("*.pts")):
                if not pts.stem.isdigit() or int(pts.stem) < 1:
                    raise AnnotationError(pts, "expected a 1-based frame number as the file name, e.g. 000001.pts")
                self._items.append((clip_id, video, pts, int(pts.stem)))
        if not self._items:
            raise FileNotFoundError(f"{self.name}: no <clip>/annot/*.pts beside a <clip>/vid.avi under {self.root}")

    def _load(self, item: tuple[str, Path, Path, int]) -> AnnotatedImage:
        clip_id, video, pts, frame_number = item
        points = _read_68(pts)
        return AnnotatedImage(
            image_path=video,
            landmarks=(points + PTS_OFFSET).astype(np.float32),
            visibility=np.ones(68, np.float32),
            layout=IBUG68,
            semantics="ibug2d",
            frame_index=frame_number - 1,
            extras={"annotation_path": pts, "clip": clip_id, "frame_number": frame_number},
        )


MERLRAV_POSE_GROUPS = ("frontal", "left", "lefthalf", "right", "righthalf")


def decode_merlrav(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Decode MERL-RAV's visibility coding (its README, "Format of the labellings"):
    (x, y) unoccluded, (-x, -y) externally occluded at (x, y), (-1, -1) self-occluded with no location.

    Returns (landmarks in our pixel convention with NaN where not located, visibility (1 = located on the
    visible surface, 0 = self-occluded), self_occluded mask, externally_occluded mask).
    """
    x, y = points[:, 0], points[:, 1]
    self_occluded = (x == -1) & (y == -1)
    # Annotated locations are clicked inside the image, so they are never negative: any minus sign (even
    # on a zero, hence signbit) comes from the occlusion coding.
    externally_occluded = ~self_occluded & (np.signbit(x) | np.signbit(y))
    landmarks = np.abs(points) + PTS_OFFSET
    landmarks[self_occluded] = np.nan
    visibility = (~self_occluded).astype(np.float32)
    return landmarks.astype(np.float32), visibility, self_occluded, externally_occluded


class MERLRAVDataset(LandmarkDataset):
    """MERL-RAV (organised with its script): `<pose group>/{trainset,testset}/imageNNNNN[_k].{jpg,pts}`.

    `split` is "train", "test" or "all". Self-occluded points are NaN with visibility 0; externally occluded
    points keep visibility 1 and are flagged in extras["externally_occluded"] (extras["self_occluded"] too).
    """

    name = "merlrav"

    def __init__(self, root: str | Path, split: str = "all") -> None:
        super().__init__(root)
        self.split = check_split(split, ("train", "test", "all"), self.name)
        pts_files = sorted(self.root.rglob("*.pts"))
        if split != "all":
            folder = f"{split}set"
            pts_files = [p for p in pts_files if folder in p.relative_to(self.root).parts]
        self._items = annotations_with_images(self.root, pts_files, self.name, ".pts")

    def _load(self, item: tuple[Path, Path]) -> AnnotatedImage:
        pts, image = item
        landmarks, visibility, self_occluded, externally_occluded = decode_merlrav(_read_68(pts))
        parts = pts.relative_to(self.root).parts
        pose_group = next((p for p in parts if p in MERLRAV_POSE_GROUPS), None)
        split = "train" if "trainset" in parts else "test" if "testset" in parts else None
        return AnnotatedImage(
            image_path=image,
            landmarks=landmarks,
            visibility=visibility,
            layout=IBUG68,
            semantics="ibug2d",
            extras={
                "annotation_path": pts,
                "self_occluded": self_occluded,
                "externally_occluded": externally_occluded,
                "pose_group": pose_group,
                "split": split,
            },
        )
