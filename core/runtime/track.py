"""Track a clip into a `core.shot.Shot`: the settings, opening the footage, the model and the layout, and the job
that tracks a few frames at a time. Blender-free: the add-on's Track operator, its batch command line and plain
Python share every line (the add-on only stores the shot on its MovieClip).

    settings = TrackingSettings(layout="ibug68", semantics="canonical")
    job = TrackJob(movie_path, settings)         # opens the footage and the model; raises TrackingError
    while not job.step(8):                        # 8 frames per call: the modal operator calls this per timer tick
        print(job.progress)
    shot = job.results()                          # a Shot: what was tracked so far (also after cancel)

Frame numbers count from `first_frame` (1 by default; the add-on passes its clip frame of the footage's first
frame) and the settings' range is in the same numbers. Frames where the model finds no face are kept with
has_face = 0 and NaN landmarks: marked, never keyed.
"""
from __future__ import annotations

import dataclasses
import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .. import layouts
from ..layouts import Layout, LayoutError
from ..shot import Shot, empty_arrays
from .images import ImageReadError, is_image_path
from .session import FaceResult, LandmarkModel, ModelLoadError, ModelNotFoundError
from .tracker import FaceTracker, Smoothing, smooth_clip
from .video import FrameSource, VideoReadError, open_frames

# What a TrackingError says (the add-on shows it as it is), and the job's status line.
ERR_MODEL_NOT_FOUND = "Landmark model not found: {detail}"
ERR_MODEL_LOAD = "Cannot use the landmark model: {detail}"
ERR_LAYOUT = "Cannot use the layout: {detail}"
ERR_SEMANTICS = "Cannot use the semantics: {detail}"
ERR_FOOTAGE_MISSING = "Footage not found: {path}"
ERR_FOOTAGE_UNREADABLE = "Cannot read the footage {path}: {detail}"
ERR_FRAME_UNREADABLE = "Cannot read frame {frame}: {detail}"
ERR_EMPTY_RANGE = "Nothing to track: frames {start}-{end} are outside the clip's frames {first}-{last}"
STATUS_TRACKING = "Tracking frame {done}/{total}, face in {found}, {rate:.1f} frames/s"


class TrackingError(Exception):
    """A problem the user can fix (unreadable footage, missing model, bad layout): the message says how."""


@dataclass
class TrackingSettings:
    """What to track and how; read from the scene's properties by the operator, from arguments by the CLI."""

    layout: str = "ibug68"          # built-in layout name or the path of a layout .json file
    semantics: str = "canonical"    # annotation style (core.layouts.SEMANTICS)
    model_path: str = ""            # "" = the bundled default model
    smoothing: float = 0.5          # 0 = off, 1 = strongest (see smoothing_from_strength)
    threshold: float = 0.5          # face confidence below this: "no face" on that frame
    threads: int = 0                # onnxruntime threads, 0 = all cores
    mirror: bool = False            # also run each crop mirrored and average (FaceTracker's mirror)
    frame_start: int | None = None  # inclusive; None = from the first frame
    frame_end: int | None = None    # None = to the last frame


def smoothing_from_strength(strength: float) -> Smoothing | None:
    """One Euro settings for a 0..1 strength: 0 is off, 0.5 the tracker's default, 1 heavy smoothing.

    The cutoff halves for every 0.25 of strength: a perceptually even slider.
    """
    if strength <= 0:
        return None
    default = Smoothing()
    factor = 2.0 ** (4 * (0.5 - min(strength, 1.0)))
    return dataclasses.replace(default, min_cutoff=default.min_cutoff * factor,
                               rigid_min_cutoff=default.rigid_min_cutoff * factor)


# --- opening footage and the model ------------------------------------------------------------------------------

def load_model(settings: TrackingSettings) -> LandmarkModel:
    """The ONNX detector named by the settings (default: the bundled one), as a TrackingError if unusable."""
    path = settings.model_path.strip() or None
    try:
        return LandmarkModel(path, threads=settings.threads or None, threshold=settings.threshold)
    except ModelNotFoundError as exc:
        raise TrackingError(ERR_MODEL_NOT_FOUND.format(detail=exc)) from exc
    except ModelLoadError as exc:
        raise TrackingError(ERR_MODEL_LOAD.format(detail=exc)) from exc


def load_layout(settings: TrackingSettings) -> Layout:
    """The layout named by the settings, as a TrackingError if unusable."""
    try:
        return layouts.load_layout(settings.layout)
    except LayoutError as exc:
        raise TrackingError(ERR_LAYOUT.format(detail=exc)) from exc


def open_footage(path: str | Path) -> FrameSource:
    """A video file or a folder of images (or one image of a numbered sequence: its folder) as frames."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():  # a link loop or a broken link: the reader says which
        raise TrackingError(ERR_FOOTAGE_MISSING.format(path=path))
    if path.is_file() and is_image_path(path):
        path = path.parent  # Blender's image-sequence clips point at one frame of the folder
    try:
        return open_frames(path)
    except (VideoReadError, ImageReadError) as exc:
        raise TrackingError(ERR_FOOTAGE_UNREADABLE.format(path=path, detail=exc)) from exc


def landmark_names(layout: Layout, count: int) -> list[str]:
    """Marker and result names: the layout's own point names, else `<layout>_<index>`."""
    if layout.names and len(layout.names) == count:
        return [str(n) for n in layout.names]
    return [f"{layout.name}_{i:03d}" for i in range(count)]


# --- the tracking job ------------------------------------------------------------------------------------------

@dataclass
class _Rows:
    """Per-frame rows accumulated by a TrackJob."""

    frames: list[int] = field(default_factory=list)
    has_face: list[bool] = field(default_factory=list)
    confidence: list[float] = field(default_factory=list)
    landmarks_2d: list[np.ndarray] = field(default_factory=list)
    visibility: list[np.ndarray] = field(default_factory=list)
    landmarks_3d: list[np.ndarray] = field(default_factory=list)
    K: list[np.ndarray] = field(default_factory=list)
    R: list[np.ndarray] = field(default_factory=list)
    t: list[np.ndarray] = field(default_factory=list)


class TrackJob:
    """Tracks a clip a few frames at a time, so a modal operator can keep Blender responsive and cancel.

    `first_frame` is the frame number of the footage's first frame (the add-on: 1 - clip.frame_offset); the
    settings' frame range is in the same numbers.
    """

    def __init__(self, footage: str | Path, settings: TrackingSettings, model: LandmarkModel | None = None,
                 first_frame: int = 1, fps: float | None = None) -> None:
        self.settings = settings
        self.source = open_footage(footage)
        self.layout = load_layout(settings)
        self.model = model if model is not None else load_model(settings)
        try:
            self.model.style_id(settings.semantics)
        except ValueError as exc:
            raise TrackingError(ERR_SEMANTICS.format(detail=exc)) from exc
        self.fps = float(self.source.fps or fps or 0.0)
        self.tracker = FaceTracker(self.model, self.layout, settings.semantics,
                                   smoothing=smoothing_from_strength(settings.smoothing), fps=self.fps or None,
                                   mirror=settings.mirror)
        self.names = landmark_names(self.layout, len(self.layout))

        available = self.source.frame_count  # may be None for streams that do not say
        last_frame = first_frame + available - 1 if available else None
        start = max(settings.frame_start if settings.frame_start is not None else first_frame, first_frame)
        end = settings.frame_end if settings.frame_end is not None else last_frame
        if last_frame is not None and end is not None:
            end = min(end, last_frame)
        if end is not None and end < start:
            raise TrackingError(ERR_EMPTY_RANGE.format(start=start, end=end, first=first_frame,
                                                       last=last_frame if last_frame is not None else "?"))
        self.start, self.end = start, end
        self.total = (end - start + 1) if end is not None else None
        # The readers decode from the first frame: frames before the range are read and skipped.
        frames: Iterator[np.ndarray] = iter(self.source)
        self._frames = itertools.islice(frames, start - first_frame, None if end is None else end - first_frame + 1)
        self._next_frame = start
        # One face per tracked frame: the tracker's own output, or with smoothing on its face before smoothing,
        # for the pass over the whole range in `results` (kept once: a dense layout's faces are large).
        self._clip_frames: list[int] = []
        self._faces: list[FaceResult] = []
        self._found = 0
        self.finished = False
        self.cancelled = False
        self.started_at = time.perf_counter()

    @property
    def done(self) -> int:
        return len(self._clip_frames)

    @property
    def progress(self) -> float:
        """0..1 (0 while the length is unknown)."""
        if self.finished:
            return 1.0
        return self.done / self.total if self.total else 0.0

    def step(self, max_frames: int = 1) -> bool:
        """Track up to `max_frames` more frames; True once the clip (or its range) is done."""
        if self.finished:
            return True
        for _ in range(max_frames):
            try:
                frame = next(self._frames, None)
            except ImageReadError as exc:
                self.finished = True
                raise TrackingError(ERR_FRAME_UNREADABLE.format(frame=self._next_frame, detail=exc)) from exc
            if frame is None:
                self.finished = True
                break
            face = self.tracker.update(frame)
            self._found += bool(face.found)
            self._clip_frames.append(self._next_frame)
            self._faces.append(self.tracker.raw_face if self.tracker.smoothing is not None else face)
            self._next_frame += 1
        return self.finished

    def _add(self, rows: _Rows, clip_frame: int, face: FaceResult) -> None:
        n = len(self.names)
        rows.frames.append(clip_frame)
        rows.has_face.append(bool(face.found))
        rows.confidence.append(float(face.confidence))
        found_3d = face.found and face.landmarks_3d is not None

        def value(array: np.ndarray | None, shape: tuple[int, ...], ok: bool) -> np.ndarray:
            return np.asarray(array, np.float64).reshape(shape) if ok else np.full(shape, np.nan)

        rows.landmarks_2d.append(value(face.landmarks_2d, (n, 2), face.found))
        rows.visibility.append(value(face.visibility, (n,), face.found))
        rows.landmarks_3d.append(value(face.landmarks_3d, (n, 3), found_3d))
        rows.K.append(value(face.K, (3, 3), found_3d))
        rows.R.append(value(face.R, (3, 3), found_3d))
        rows.t.append(value(face.t, (3,), found_3d))

    def cancel(self) -> None:
        """Stop early; `results()` keeps every frame tracked so far."""
        self.cancelled = True
        self.finished = True

    def results(self) -> Shot:
        """Every frame tracked so far. With smoothing on, the frames are smoothed again from the tracker's
        unsmoothed faces, forwards and backwards over the whole range (`smooth_clip`): the tracker's own filter,
        which has to run as the frames come, follows a moving head a little late; this does not."""
        smoothing = self.tracker.smoothing
        faces = self._faces
        if smoothing is not None and faces:
            faces = smooth_clip(faces, [self.tracker.timestamp(k) for k in range(len(faces))], smoothing)
        rows = _Rows()
        for clip_frame, face in zip(self._clip_frames, faces):
            self._add(rows, clip_frame, face)
        n = len(self.names)
        if rows.frames:
            arrays = {"frames": np.asarray(rows.frames, np.int64), "has_face": np.asarray(rows.has_face, bool),
                      "confidence": np.asarray(rows.confidence), "landmarks_2d": np.stack(rows.landmarks_2d),
                      "visibility": np.stack(rows.visibility), "landmarks_3d": np.stack(rows.landmarks_3d),
                      "K": np.stack(rows.K), "R": np.stack(rows.R), "t": np.stack(rows.t)}
        else:
            arrays = empty_arrays(n)
        return Shot(layout=self.layout.name if Path(self.settings.layout).suffix.lower() != ".json"
                    else self.settings.layout, semantics=self.settings.semantics,
                    model=str(self.model.path), width=int(self.source.width),
                    height=int(self.source.height), fps=self.fps, names=list(self.names),
                    frames_expected=None if self.cancelled else self.total, **arrays)

    def status(self) -> str:
        """One line for the status bar and the CLI."""
        elapsed = time.perf_counter() - self.started_at
        rate = self.done / elapsed if elapsed > 0 else 0.0
        found = self._found
        total = str(self.total) if self.total else "?"
        return STATUS_TRACKING.format(done=self.done, total=total, found=found, rate=rate)


def track(footage: str | Path, settings: TrackingSettings, first_frame: int = 1, fps: float | None = None,
          model: LandmarkModel | None = None, chunk: int = 8,
          progress: Callable[[TrackJob], None] | None = None) -> Shot:
    """Track a whole clip (or the settings' range) in one call: the blocking form of TrackJob, as the CLI uses it.
    `progress(job)` is called after every chunk of frames."""
    job = TrackJob(footage, settings, model=model, first_frame=first_frame, fps=fps)
    while not job.step(chunk):
        if progress:
            progress(job)
    return job.results()
