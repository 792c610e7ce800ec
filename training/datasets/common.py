"""Shared pieces of the dataset readers: the sample type, the annotation error, the reader base class
and image/video-frame loading (always returned as RGB uint8)."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterator

import cv2
import numpy as np

log = logging.getLogger(__name__)

# Layout names (which points, in which order) and semantics names (annotation style), see conventions.md.
IBUG68 = "ibug68"
WFLW98 = "wflw98"
COFW29 = "cofw29"


class AnnotationError(ValueError):
    """A malformed annotation file. The message names the file, the line (for text formats) and the problem."""

    def __init__(self, path: str | Path, message: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        where = f"{self.path} line {line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {message}")


@dataclass(eq=False)
class AnnotatedImage:
    """One annotated face.

    `landmarks` are (N, 2) float32 pixels in our convention (origin at the top-left corner of the image, so
    the top-left pixel's centre is (0.5, 0.5)); a point whose location is not annotated (e.g. MERL-RAV's
    self-occluded points) is NaN and has visibility 0. `box` is (x0, y0, x1, y1) in the same frame, or None.
    `frame_index` is the 0-based frame of the video at `image_path`, or None for still images. `image` holds
    the pixels when they live inside the annotation file (COFW's .mat) instead of in an image file.
    """

    image_path: Path
    landmarks: np.ndarray
    visibility: np.ndarray
    layout: str
    semantics: str
    box: np.ndarray | None = None
    frame_index: int | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    image: np.ndarray | None = field(default=None, repr=False)

    def load_image(self) -> np.ndarray:
        """The image (or video frame) as RGB uint8 (H, W, 3)."""
        if self.image is not None:
            return to_rgb8(self.image, str(self.image_path))
        if self.frame_index is not None:
            return read_video_frame(self.image_path, self.frame_index)
        return read_image(self.image_path)


class LandmarkDataset:
    """Base class of the readers: a sized, indexable, iterable collection of `AnnotatedImage`.

    Subclasses fill `self._items` (whatever is cheap to list up front) and implement `_load(item)`.
    """

    name: ClassVar[str] = ""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.name} dataset root {self.root} is not a directory")
        self._items: list[Any] = []

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> AnnotatedImage:
        n = len(self._items)
        i = int(index) + n if index < 0 else int(index)
        if not 0 <= i < n:
            raise IndexError(f"{type(self).__name__} index {index} out of range ({n} samples)")
        return self._load(self._items[i])

    def __iter__(self) -> Iterator[AnnotatedImage]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, samples={len(self)})"

    def _load(self, item: Any) -> AnnotatedImage:
        raise NotImplementedError


def check_split(split: str, allowed: tuple[str, ...], dataset: str) -> str:
    if split not in allowed:
        raise ValueError(f"{dataset}: split must be one of {', '.join(allowed)}; got {split!r}")
    return split


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".JPG", ".JPEG", ".PNG", ".BMP")


def find_image_beside(annotation: Path) -> Path | None:
    """The image with the annotation's stem in the same folder, or None.

    Falls back to the stem without a trailing face number (`image20991_1.pts` -> `image20991.jpg`), the
    way 300W/AFW and MERL-RAV name several faces of one image.
    """
    stems = [annotation.stem]
    base, sep, number = annotation.stem.rpartition("_")
    if sep and base and number.isdigit():
        stems.append(base)
    for stem in stems:
        for suffix in IMAGE_SUFFIXES:
            candidate = annotation.with_name(stem + suffix)
            if candidate.is_file():
                return candidate
    return None


def annotations_with_images(root: Path, annotations: list[Path], dataset: str,
                            kind: str) -> list[tuple[Path, Path]]:
    """(annotation, image) pairs for the annotation files that have an image beside them (`find_image_beside`).

    Files without one are skipped with a warning naming the first; no pair at all is a FileNotFoundError.
    `kind` names the files in those messages (".pts").
    """
    pairs, missing = [], []
    for annotation in annotations:
        image = find_image_beside(annotation)
        if image is None:
            missing.append(annotation)
        else:
            pairs.append((annotation, image))
    if missing:
        log.warning("%s: skipped %d %s files with no image beside them (first: %s)", dataset, len(missing), kind,
                    missing[0])
    if not pairs:
        raise FileNotFoundError(f"{dataset}: no {kind} files with images under {root}")
    return pairs


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3), converting grayscale, alpha and 16-bit images.

    EXIF orientation is deliberately not applied: annotations refer to the stored pixel grid.
    """
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise OSError(f"{path}: cannot read image file ({exc.strerror or exc})") from exc
    pixels = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if pixels is None:
        raise OSError(f"{path}: cannot decode image (empty, truncated or not an image)")
    if pixels.ndim == 3 and pixels.shape[2] == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
    elif pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGBA)
    return to_rgb8(pixels, str(path))


def to_rgb8(pixels: np.ndarray, source: str) -> np.ndarray:
    """Convert an RGB(A)/grayscale image array of uint8, uint16, bool or float (0..1) to RGB uint8."""
    a = np.asarray(pixels)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 3 and a.shape[2] == 2:  # grayscale + alpha
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise ValueError(f"{source}: unsupported image shape {a.shape}")
    if a.dtype == np.uint16:
        a = np.round(a / 257.0).astype(np.uint8)  # 65535 / 257 == 255
    elif a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif np.issubdtype(a.dtype, np.floating):
        a = np.clip(np.round(a * 255.0), 0, 255).astype(np.uint8)
    elif a.dtype != np.uint8:
        raise ValueError(f"{source}: unsupported pixel type {a.dtype}")
    if a.ndim == 2:
        a = np.stack([a, a, a], axis=-1)
    return np.ascontiguousarray(a[:, :, :3])


class _VideoCursor:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.capture = cv2.VideoCapture(str(path))
        self.next_index = 0
        self.pid = os.getpid()


# The most recently used video stays open so that reading frames in order decodes each frame once instead
# of seeking (which restarts decoding from a key frame) for every frame. A forked worker process opens its
# own: an inherited capture shares its file position with the parent.
_video_lock = threading.Lock()
_video: _VideoCursor | None = None


def read_video_frame(path: str | Path, index: int) -> np.ndarray:
    """Frame `index` (0-based) of a video file as RGB uint8 (H, W, 3)."""
    global _video
    path = Path(path)
    if index < 0:
        raise ValueError(f"{path}: frame index must be >= 0, got {index}")
    with _video_lock:
        if _video is None or _video.path != path or _video.pid != os.getpid():
            if _video is not None:
                _video.capture.release()
                _video = None
            if not path.is_file():
                raise FileNotFoundError(f"{path}: video file not found")
            cursor = _VideoCursor(path)
            if not cursor.capture.isOpened():
                cursor.capture.release()
                raise OSError(f"{path}: cannot open video")
            _video = cursor
        if index != _video.next_index:
            _video.capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = _video.capture.read()
        if not ok or frame is None:
            _video.next_index = -1  # position unknown: seek next time
            count = int(_video.capture.get(cv2.CAP_PROP_FRAME_COUNT))
            raise OSError(f"{path}: cannot read frame {index} (the video reports {count} frames)")
        _video.next_index = index + 1
    if frame.ndim == 3 and frame.shape[2] == 3:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    return to_rgb8(frame, f"{path} frame {index}")
