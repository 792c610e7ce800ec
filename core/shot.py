"""The tracked shot: one clip's per-frame tracking as stacked arrays, the one type the tracker produces
(`core.runtime.track`), the Blender add-on stores on a clip, and the solve, the rig builder and retargeting read.

A shot has F rows, one per tracked frame, and N layout points. Frames where the model found no face keep their
row with `has_face` False and NaN landmarks and pose, so every consumer can index by row and none mistakes a
missing face for a neutral one. `frames` numbers the rows as the footage does (1-based for the add-on's clips);
`frame_offset` says where the shot sits on a timeline (`scene_frames`; the add-on sets it to the clip's
`frame_start - 1`, so they are its scene frames). The arrays follow conventions.md: pixels from the image's top-left
corner, canonical cm, OpenCV camera axes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from .outputs import atomic_path

# The per-frame arrays of a shot, in the order they are stored and merged.
ARRAY_FIELDS = ("frames", "has_face", "confidence", "landmarks_2d", "visibility", "landmarks_3d", "K", "R", "t")
# Fields of one tracked face, as the tracker and `python -m core.predict` produce them (conventions.md).
FRAME_FIELDS = ("landmarks_2d", "visibility", "landmarks_3d", "K", "R", "t")


def _field(item: Any, name: str, default: Any = None) -> Any:
    if isinstance(item, Mapping):
        return item.get(name, default)
    return getattr(item, name, default)


def empty_arrays(num_points: int) -> dict[str, np.ndarray]:
    """The per-frame arrays of a shot without frames (N points)."""
    return {"frames": np.zeros(0, np.int64), "has_face": np.zeros(0, bool), "confidence": np.zeros(0),
            "landmarks_2d": np.zeros((0, num_points, 2)), "visibility": np.zeros((0, num_points)),
            "landmarks_3d": np.zeros((0, num_points, 3)), "K": np.zeros((0, 3, 3)), "R": np.zeros((0, 3, 3)),
            "t": np.zeros((0, 3))}


@dataclass
class Shot:
    """Per-frame tracking of one clip (module docstring). F frames, N landmarks; rows without a face are NaN."""

    layout: str                 # layout name, or the path of a layout file, that the landmarks follow
    width: int                  # image size in pixels
    height: int
    frames: np.ndarray          # (F,) int, the footage's frame numbers, increasing
    has_face: np.ndarray        # (F,) bool
    confidence: np.ndarray      # (F,)
    landmarks_2d: np.ndarray    # (F, N, 2) pixels, origin top-left corner (conventions.md)
    visibility: np.ndarray      # (F, N) 0..1
    landmarks_3d: np.ndarray    # (F, N, 3) canonical cm
    K: np.ndarray               # (F, 3, 3) pixels
    R: np.ndarray               # (F, 3, 3) canonical -> OpenCV camera
    t: np.ndarray               # (F, 3) cm
    semantics: str = "canonical"                      # annotation style (core.layouts.SEMANTICS)
    model: str = ""                                   # the detector that tracked it
    fps: float = 0.0                                  # 0: unknown
    names: list[str] = field(default_factory=list)    # one per landmark (marker names)
    frame_offset: int = 0                             # scene_frames = frames + frame_offset
    # The frames the tracker meant to read (None: unknown), to tell a damaged file; never stored with the shot.
    frames_expected: int | None = None

    @property
    def num_frames(self) -> int:
        return int(len(self.frames))

    @property
    def num_points(self) -> int:
        return int(self.landmarks_2d.shape[1]) if self.landmarks_2d.ndim == 3 else len(self.names)

    @property
    def faces_found(self) -> int:
        return int(np.count_nonzero(self.has_face))

    @property
    def frames_missing(self) -> int:
        """Frames of the range that could not be decoded (a truncated or damaged file); 0 when all were read."""
        return max(0, self.frames_expected - self.num_frames) if self.frames_expected else 0

    @property
    def scene_frames(self) -> np.ndarray:
        """(F,) the frames on the timeline the shot is placed on (the add-on: the scene's frame numbers)."""
        return self.frames + self.frame_offset

    @property
    def usable(self) -> np.ndarray:
        """(F,) bool: frames with a face, a finite pose and finite 3D points (what the solve and the rig use)."""
        finite = (np.isfinite(self.R).all((1, 2)) & np.isfinite(self.t).all(1) & np.isfinite(self.K).all((1, 2))
                  & np.isfinite(self.landmarks_3d).all((1, 2)))
        return self.has_face & finite

    @property
    def face_rows(self) -> np.ndarray:
        """Row indices of frames with a usable face (found, with a finite pose and 3D points)."""
        return np.flatnonzero(self.usable)

    def row(self, frame: int) -> int | None:
        """Row of a frame (numbered as `frames`), or None when that frame was not tracked."""
        i = int(np.searchsorted(self.frames, int(frame)))
        return i if i < len(self.frames) and self.frames[i] == int(frame) else None

    def same_setup(self, other: Shot) -> bool:
        """True when two shots can be merged frame by frame (same points, same footage size)."""
        return (self.layout, self.semantics, self.num_points, self.width, self.height) == \
               (other.layout, other.semantics, other.num_points, other.width, other.height)

    def merged_over(self, older: Shot | None) -> Shot:
        """This shot with the frames of `older` that it does not cover (re-tracking part of a clip)."""
        if older is None or not older.num_frames or not self.same_setup(older):
            return self
        keep = ~np.isin(older.frames, self.frames)
        order = np.argsort(np.concatenate([older.frames[keep], self.frames]), kind="stable")
        merged = {name: np.concatenate([getattr(older, name)[keep], getattr(self, name)])[order]
                  for name in ARRAY_FIELDS}
        return Shot(layout=self.layout, semantics=self.semantics, model=self.model, width=self.width,
                    height=self.height, fps=self.fps, names=self.names, frame_offset=self.frame_offset, **merged)

    def save_npz(self, path: str | Path) -> Path:
        """All per-frame arrays (and the setup) in one .npz, for pipelines and evaluation scripts. Written
        atomically (core.outputs.atomic_path); an OutputError names the file when it cannot be."""
        path = Path(path)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a file object: numpy adds no ".npz" to the name
            np.savez_compressed(f, layout=self.layout, semantics=self.semantics, model=self.model,
                                width=self.width, height=self.height, fps=self.fps,
                                names=np.array(self.names), frames=self.frames, has_face=self.has_face,
                                confidence=self.confidence, landmarks_2d=self.landmarks_2d,
                                visibility=self.visibility, landmarks_3d=self.landmarks_3d, K=self.K,
                                R=self.R, t=self.t)
        return path

    @classmethod
    def from_frames(cls, items: Mapping[int, Any] | Iterable[Any], width: int, height: int, layout: str) -> Shot:
        """Stack per-frame results: {frame: result} or results carrying a `frame` field (attribute or key).

        A result is any object or dict with the fields of one face (FRAME_FIELDS, plus `confidence` and
        `has_face` or `found`); a frame whose face is missing or has no 3D head becomes a NaN row.
        """
        pairs = list(items.items()) if isinstance(items, Mapping) else [(_field(i, "frame"), i) for i in items]
        if not pairs:
            raise ValueError("no tracked frames")
        if any(frame is None for frame, _ in pairs):
            raise ValueError("every tracked frame needs a frame number")
        pairs.sort(key=lambda p: int(p[0]))
        num_points = next((np.asarray(_field(i, "landmarks_2d")).shape[0] for _, i in pairs
                           if _field(i, "landmarks_2d") is not None), 0)
        if num_points == 0:
            raise ValueError("no tracked frame has landmarks")
        shapes = {"landmarks_2d": (num_points, 2), "visibility": (num_points,), "landmarks_3d": (num_points, 3),
                  "K": (3, 3), "R": (3, 3), "t": (3,)}
        arrays = {name: np.full((len(pairs),) + shape, np.nan) for name, shape in shapes.items()}
        confidence = np.zeros(len(pairs))
        has_face = np.zeros(len(pairs), bool)
        for row, (_, item) in enumerate(pairs):
            found = bool(_field(item, "has_face", _field(item, "found", True)))
            values = {name: _field(item, name) for name in shapes}
            if not found or any(values[n] is None for n in ("landmarks_2d", "landmarks_3d", "K", "R", "t")):
                continue
            for name, shape in shapes.items():
                arrays[name][row] = np.asarray(values[name], float).reshape(shape) if values[name] is not None \
                    else 1.0  # a tracker without visibility: everything visible
            confidence[row] = float(_field(item, "confidence", 1.0))
            has_face[row] = True
        return cls(frames=np.array([int(f) for f, _ in pairs]), width=int(width), height=int(height),
                   layout=str(layout), confidence=confidence, has_face=has_face, **arrays)
