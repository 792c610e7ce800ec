"""Frames of a clip as RGB uint8 arrays: a video file (OpenCV), a folder of images, or an image sequence.

    clip = open_frames("take1.mp4")        # or a folder, a glob pattern "plates/shot_*.png", or a list of paths
    print(clip.fps, clip.frame_count)       # either may be None when the source does not say
    for frame in clip: ...                  # (H, W, 3) RGB uint8; iterating again starts from the first frame

Folders and sequences are sorted naturally (frame_2 before frame_10).
"""
from __future__ import annotations

import glob
import logging
import re
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np

from ..paths import input_file_problem
from . import images
from .images import is_image_path, read_image

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv",
                              ".mts", ".m2ts", ".ts", ".3gp", ".ogv", ".mxf", ".gif"})


class VideoReadError(OSError):
    """A clip that cannot be read; the message names the file and why."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot read video {self.path}: {reason}")


def is_video_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def natural_key(path: str | Path) -> list:
    """Sort key treating digit runs as numbers: shot_2.png < shot_10.png."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", str(path))]


def list_images(folder: str | Path) -> list[Path]:
    """The image files directly inside a folder, naturally sorted."""
    folder = Path(folder)
    return sorted((p for p in folder.iterdir() if p.is_file() and is_image_path(p)), key=natural_key)


class VideoFile:
    """A video file decoded by OpenCV (FFmpeg backend)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        problem = input_file_problem(self.path)
        if problem:
            raise VideoReadError(self.path, problem)
        capture = self._open()
        try:
            self.fps: float | None = float(capture.get(cv2.CAP_PROP_FPS)) or None
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
            # Container frame counts are estimates for some formats; the iterator is the truth.
            self.frame_count: int | None = count if count > 0 else None
            width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
            if width * height > images.MAX_IMAGE_PIXELS:  # before decoding a frame, as for images
                raise VideoReadError(self.path, f"{width}x{height} pixels a frame is over the limit of "
                                                f"{images.MAX_IMAGE_PIXELS:,} pixels "
                                                f"(core.runtime.images.MAX_IMAGE_PIXELS); scale it down first")
            ok, frame = capture.read()
            if not ok or frame is None:
                raise VideoReadError(self.path, "no frame could be decoded (corrupt or unsupported video)")
            self.height, self.width = frame.shape[:2]
        finally:
            capture.release()

    def _open(self) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(str(self.path))
        if not capture.isOpened():
            capture.release()
            raise VideoReadError(self.path, "not a video or unsupported/corrupt format")
        return capture

    def __len__(self) -> int:
        return self.frame_count or 0

    def __iter__(self) -> Iterator[np.ndarray]:
        capture = self._open()
        try:
            index = 0
            while True:
                ok, frame = capture.read()
                if not ok or frame is None:
                    break
                index += 1
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            if self.frame_count and index < self.frame_count:
                log.warning("%s: decoded %d of the %d frames the container announces", self.path, index,
                            self.frame_count)
        finally:
            capture.release()


class ImageSequence:
    """Image files read in order as the frames of one clip."""

    def __init__(self, paths: Sequence[str | Path], fps: float | None = None, name: str | Path = "") -> None:
        self.paths = [Path(p) for p in paths]
        self.path = Path(name) if name else (self.paths[0].parent if self.paths else Path("."))
        if not self.paths:
            raise VideoReadError(self.path, "no image files found")
        self.fps = fps
        self.frame_count: int | None = len(self.paths)
        first = read_image(self.paths[0])
        self.height, self.width = first.shape[:2]

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self) -> Iterator[np.ndarray]:
        for path in self.paths:
            yield read_image(path)


FrameSource = VideoFile | ImageSequence


def open_frames(source: str | Path | Sequence[str | Path], fps: float | None = None) -> FrameSource:
    """A video file, a folder of images, a glob pattern of images or a list of image paths, as frames.

    `fps` sets the rate of image sequences (videos carry their own). Raises VideoReadError naming the source.
    """
    if isinstance(source, (list, tuple)):
        return ImageSequence(source, fps)
    text = str(source)
    path = Path(text)
    if path.is_dir():
        return ImageSequence(list_images(path), fps, name=path)
    if not path.exists() and any(c in text for c in "*?["):
        return ImageSequence(sorted(glob.glob(text), key=natural_key), fps, name=text)
    if path.is_file() and is_image_path(path):
        return ImageSequence([path], fps)
    return VideoFile(path)
