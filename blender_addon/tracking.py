"""Track a clip and keep the results on its MovieClip: the plain functions behind the Track operator and the CLI.

    settings = TrackingSettings(layout="ibug68", semantics="canonical")
    job = TrackJob(movie_path, settings)         # opens the footage and the model; raises TrackingError
    while not job.step(8):                        # 8 frames per call: the modal operator calls this per timer tick
        print(job.progress)
    results = job.results()                       # TrackingResults: what was tracked so far (also after cancel)
    store_results(clip, results)                  # ID properties on the MovieClip: saved with the .blend
    write_markers(clip, results)                  # optional: one tracking marker track per landmark

Nothing here imports bpy at module level: clips are read and written through their attributes only, so the
operator (`operators/track.py`), the command line (`cli.py`) and plain-Python tests share every line.

Frame numbers are *clip frames* (1-based, as Blender's tracking markers use them): the footage's frame i
(0-based) is clip frame i + 1 - clip.frame_offset, shown at scene frame clip_frame + clip.frame_start - 1.
Frames where the model finds no face are kept with has_face = 0 and NaN landmarks: marked, never keyed.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from . import strings

RESULTS_KEY = "infinite_landmarks"          # ID property group on the MovieClip
RESULTS_FORMAT_VERSION = 1
MARKER_OBJECT_NAME = "Infinite Landmarks"   # tracking object holding our marker tracks (the user's stay apart)
HIDDEN_VISIBILITY = 0.5                     # below this a landmark's marker is disabled for that frame

ARRAY_FIELDS = ("frames", "has_face", "confidence", "landmarks_2d", "visibility", "landmarks_3d", "K", "R", "t")


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
    frame_start: int | None = None  # clip frames, inclusive; None = from the first frame
    frame_end: int | None = None    # None = to the last frame


def smoothing_from_strength(strength: float):  # -> core.runtime.tracker.Smoothing | None
    """One Euro settings for a 0..1 strength: 0 is off, 0.5 the tracker's default, 1 heavy smoothing.

    The cutoff halves for every 0.25 of strength: a perceptually even slider.
    """
    from core.runtime.tracker import Smoothing

    if strength <= 0:
        return None
    default = Smoothing()
    factor = 2.0 ** (4 * (0.5 - min(strength, 1.0)))
    return dataclasses.replace(default, min_cutoff=default.min_cutoff * factor,
                               rigid_min_cutoff=default.rigid_min_cutoff * factor)


@dataclass
class TrackingResults:
    """Per-frame tracking of one clip. F frames, N landmarks; rows of frames without a face are NaN."""

    layout: str
    semantics: str
    model: str
    width: int
    height: int
    fps: float
    names: list[str]
    frames: np.ndarray          # (F,) int, clip frames, increasing
    has_face: np.ndarray        # (F,) bool
    confidence: np.ndarray      # (F,)
    landmarks_2d: np.ndarray    # (F, N, 2) pixels, origin top-left corner (conventions.md)
    visibility: np.ndarray      # (F, N) 0..1
    landmarks_3d: np.ndarray    # (F, N, 3) canonical cm
    K: np.ndarray               # (F, 3, 3) pixels
    R: np.ndarray               # (F, 3, 3) canonical -> OpenCV camera
    t: np.ndarray               # (F, 3) cm
    # The frames the job meant to read (None: unknown); set by TrackJob.results, not stored on the clip.
    frames_expected: int | None = None

    @property
    def num_frames(self) -> int:
        return int(len(self.frames))

    @property
    def frames_missing(self) -> int:
        """Frames of the range that could not be decoded (a truncated or damaged file); 0 when all were read."""
        return max(0, self.frames_expected - self.num_frames) if self.frames_expected else 0

    @property
    def num_points(self) -> int:
        return int(self.landmarks_2d.shape[1]) if self.landmarks_2d.ndim == 3 else len(self.names)

    @property
    def faces_found(self) -> int:
        return int(np.count_nonzero(self.has_face))

    def index_of(self, clip_frame: int) -> int | None:
        """Row of a clip frame, or None when that frame was not tracked."""
        i = int(np.searchsorted(self.frames, clip_frame))
        return i if i < len(self.frames) and self.frames[i] == clip_frame else None

    def to_idprops(self) -> dict[str, Any]:
        """A dict Blender stores as ID properties: numpy arrays become flat typed arrays (fast, compact)."""
        arrays = {"frames": self.frames.astype(np.int32), "has_face": self.has_face.astype(np.int32),
                  "confidence": self.confidence.astype(np.float32),
                  "landmarks_2d": self.landmarks_2d.astype(np.float32).reshape(-1),
                  "visibility": self.visibility.astype(np.float32).reshape(-1),
                  "landmarks_3d": self.landmarks_3d.astype(np.float32).reshape(-1),
                  "K": self.K.astype(np.float64).reshape(-1), "R": self.R.astype(np.float64).reshape(-1),
                  "t": self.t.astype(np.float64).reshape(-1)}
        # Blender cannot store an empty array property: an empty result keeps only its metadata.
        arrays = {k: v for k, v in arrays.items() if v.size}
        return {"format_version": RESULTS_FORMAT_VERSION, "layout": self.layout, "semantics": self.semantics,
                "model": self.model, "width": int(self.width), "height": int(self.height), "fps": float(self.fps),
                "num_points": self.num_points, "names": "\n".join(self.names), **arrays}

    @classmethod
    def from_idprops(cls, data: Any) -> TrackingResults:
        """Inverse of `to_idprops`, from the ID property group (or a plain dict)."""
        n = int(data["num_points"])

        def array(key: str, dtype: type, shape: tuple[int, ...]) -> np.ndarray:
            return _stored_array(data, key, dtype).reshape((-1, *shape))

        names = str(data.get("names", ""))
        return cls(layout=str(data["layout"]), semantics=str(data["semantics"]), model=str(data.get("model", "")),
                   width=int(data["width"]), height=int(data["height"]), fps=float(data.get("fps", 0.0)),
                   names=names.split("\n") if names else [f"{i:03d}" for i in range(n)],
                   frames=array("frames", np.int64, ()), has_face=array("has_face", np.int32, ()).astype(bool),
                   confidence=array("confidence", np.float64, ()),
                   landmarks_2d=array("landmarks_2d", np.float64, (n, 2)),
                   visibility=array("visibility", np.float64, (n,)),
                   landmarks_3d=array("landmarks_3d", np.float64, (n, 3)),
                   K=array("K", np.float64, (3, 3)), R=array("R", np.float64, (3, 3)), t=array("t", np.float64, (3,)))

    def same_setup(self, other: TrackingResults) -> bool:
        """True when two results can be merged frame by frame (same points, same footage size)."""
        return (self.layout, self.semantics, self.num_points, self.width, self.height) == \
               (other.layout, other.semantics, other.num_points, other.width, other.height)

    def merged_over(self, older: TrackingResults | None) -> TrackingResults:
        """These results with the frames of `older` that they do not cover (re-tracking part of a clip)."""
        if older is None or not older.num_frames or not self.same_setup(older):
            return self
        keep = ~np.isin(older.frames, self.frames)
        order = np.argsort(np.concatenate([older.frames[keep], self.frames]), kind="stable")
        merged = {name: np.concatenate([getattr(older, name)[keep], getattr(self, name)])[order]
                  for name in ARRAY_FIELDS}
        return TrackingResults(layout=self.layout, semantics=self.semantics, model=self.model, width=self.width,
                               height=self.height, fps=self.fps, names=self.names, **merged)


def _stored_array(data: Any, key: str, dtype: type) -> np.ndarray:
    """A flat stored array, copied (an ID property array is a buffer into Blender's memory, which is freed when
    the property is replaced or another file is loaded), empty if absent."""
    value = data.get(key)
    return np.array(value, dtype) if value is not None else np.zeros(0, dtype)


def empty_arrays(num_points: int) -> dict[str, np.ndarray]:
    return {"frames": np.zeros(0, np.int64), "has_face": np.zeros(0, bool), "confidence": np.zeros(0),
            "landmarks_2d": np.zeros((0, num_points, 2)), "visibility": np.zeros((0, num_points)),
            "landmarks_3d": np.zeros((0, num_points, 3)), "K": np.zeros((0, 3, 3)), "R": np.zeros((0, 3, 3)),
            "t": np.zeros((0, 3))}


# --- opening footage and the model ------------------------------------------------------------------------------

def load_model(settings: TrackingSettings):  # -> core.runtime.session.LandmarkModel
    """The ONNX detector named by the settings (default: the bundled one), as a TrackingError if unusable."""
    from core.runtime.session import LandmarkModel, ModelLoadError, ModelNotFoundError

    path = settings.model_path.strip() or None
    try:
        return LandmarkModel(path, threads=settings.threads or None, threshold=settings.threshold)
    except ModelNotFoundError as exc:
        raise TrackingError(strings.ERR_MODEL_NOT_FOUND.format(detail=exc)) from exc
    except ModelLoadError as exc:
        raise TrackingError(strings.ERR_MODEL_LOAD.format(detail=exc)) from exc


def load_layout(settings: TrackingSettings):  # -> core.layouts.Layout
    from core.layouts import LayoutError
    from core.layouts import load_layout as core_load_layout

    try:
        return core_load_layout(settings.layout)
    except LayoutError as exc:
        raise TrackingError(strings.ERR_LAYOUT.format(detail=exc)) from exc


def open_footage(path: str | Path):  # -> core.runtime.video.VideoFile | ImageSequence
    """A video file or a folder of images (or one image of a numbered sequence: its folder) as frames."""
    from core.runtime.images import ImageReadError, is_image_path
    from core.runtime.video import VideoReadError, open_frames

    path = Path(path)
    if not path.exists() and not path.is_symlink():  # a link loop or a broken link: the reader says which
        raise TrackingError(strings.ERR_FOOTAGE_MISSING.format(path=path))
    if path.is_file() and is_image_path(path):
        path = path.parent  # Blender's image-sequence clips point at one frame of the folder
    try:
        return open_frames(path)
    except (VideoReadError, ImageReadError) as exc:
        raise TrackingError(strings.ERR_FOOTAGE_UNREADABLE.format(path=path, detail=exc)) from exc


def landmark_names(layout, count: int) -> list[str]:  # noqa: ANN001 - core.layouts.Layout
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

    `first_frame` is the clip frame number of the footage's first frame (1 - clip.frame_offset); the settings'
    frame range is in clip frames too.
    """

    def __init__(self, footage: str | Path, settings: TrackingSettings, model=None,  # noqa: ANN001
                 first_frame: int = 1, fps: float | None = None) -> None:
        from core.runtime.tracker import FaceTracker

        self.settings = settings
        self.source = open_footage(footage)
        self.layout = load_layout(settings)
        self.model = model if model is not None else load_model(settings)
        try:
            self.model.style_id(settings.semantics)
        except ValueError as exc:
            raise TrackingError(strings.ERR_SEMANTICS.format(detail=exc)) from exc
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
            raise TrackingError(strings.ERR_EMPTY_RANGE.format(start=start, end=end, first=first_frame,
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
        self._faces: list = []
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
        from core.runtime.images import ImageReadError

        if self.finished:
            return True
        for _ in range(max_frames):
            try:
                frame = next(self._frames, None)
            except ImageReadError as exc:
                self.finished = True
                raise TrackingError(strings.ERR_FRAME_UNREADABLE.format(frame=self._next_frame, detail=exc)) from exc
            if frame is None:
                self.finished = True
                break
            face = self.tracker.update(frame)
            self._found += bool(face.found)
            self._clip_frames.append(self._next_frame)
            self._faces.append(self.tracker.raw_face if self.tracker.smoothing is not None else face)
            self._next_frame += 1
        return self.finished

    def _add(self, rows: _Rows, clip_frame: int, face) -> None:  # noqa: ANN001 - core.runtime.session.FaceResult
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

    def results(self) -> TrackingResults:
        """Every frame tracked so far. With smoothing on, the frames are smoothed again from the tracker's
        unsmoothed faces, forwards and backwards over the whole range (`smooth_clip`): the tracker's own filter,
        which has to run as the frames come, follows a moving head a little late; this does not."""
        from core.runtime.tracker import smooth_clip

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
        return TrackingResults(layout=self.layout.name if Path(self.settings.layout).suffix.lower() != ".json"
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
        return strings.STATUS_TRACKING.format(done=self.done, total=total, found=found, rate=rate)


def track(footage: str | Path, settings: TrackingSettings, first_frame: int = 1, fps: float | None = None,
          model=None, chunk: int = 8, progress: Callable[[TrackJob], None] | None = None) -> TrackingResults:  # noqa: ANN001
    """Track a whole clip (or the settings' range) in one call: the blocking form of TrackJob, as the CLI uses it.
    `progress(job)` is called after every chunk of frames."""
    job = TrackJob(footage, settings, model=model, first_frame=first_frame, fps=fps)
    while not job.step(chunk):
        if progress:
            progress(job)
    return job.results()


# --- MovieClip glue (duck-typed: any object with the attributes used) --------------------------------------------

def clip_footage_path(clip, abspath: Callable[[str], str] | None = None) -> Path:  # noqa: ANN001 - MovieClip
    """The file (movie) or folder (image sequence) behind a MovieClip, as an absolute path."""
    if abspath is None:
        import bpy  # only for the '//' (relative to the .blend) prefix

        abspath = bpy.path.abspath
    path = Path(abspath(clip.filepath))
    return path.parent if getattr(clip, "source", "MOVIE") == "SEQUENCE" else path


def clip_first_frame(clip) -> int:  # noqa: ANN001
    """Clip frame number of the footage's first frame."""
    return 1 - int(getattr(clip, "frame_offset", 0))


def scene_to_clip_frame(clip, scene_frame: int) -> int:  # noqa: ANN001
    return int(scene_frame) - int(clip.frame_start) + 1


def clip_to_scene_frame(clip, clip_frame: int) -> int:  # noqa: ANN001
    return int(clip_frame) + int(clip.frame_start) - 1


def store_results(clip, results: TrackingResults, merge: bool = True) -> TrackingResults:  # noqa: ANN001
    """Save results on the clip (merged over earlier results of the same setup); returns what was stored."""
    if merge:
        results = results.merged_over(load_results(clip))
    clip[RESULTS_KEY] = results.to_idprops()
    return results


def load_results(clip) -> TrackingResults | None:  # noqa: ANN001
    """The results stored on a clip, or None (never tracked, or stored by an incompatible version)."""
    data = clip.get(RESULTS_KEY) if clip is not None else None
    if data is None or int(data.get("format_version", 0)) != RESULTS_FORMAT_VERSION:
        return None
    return TrackingResults.from_idprops(data)


@dataclass(frozen=True)
class StoredSummary:
    """What the panel shows about a clip's stored results, read without touching the large landmark arrays."""

    layout: str
    semantics: str
    num_points: int
    num_frames: int
    faces_found: int
    first_frame: int | None
    last_frame: int | None
    focal_mm: float


def stored_summary(clip) -> StoredSummary | None:  # noqa: ANN001
    data = clip.get(RESULTS_KEY) if clip is not None else None
    if data is None or int(data.get("format_version", 0)) != RESULTS_FORMAT_VERSION:
        return None
    frames = _stored_array(data, "frames", np.int64)
    has_face = _stored_array(data, "has_face", np.int32).astype(bool)
    K = _stored_array(data, "K", np.float64).reshape(-1, 3, 3)
    focal = K[has_face, 0, 0] if len(K) == len(has_face) else np.zeros(0)
    focal = focal[np.isfinite(focal)]
    from core.geometry import focal_px_to_mm

    return StoredSummary(layout=str(data["layout"]), semantics=str(data["semantics"]),
                         num_points=int(data["num_points"]), num_frames=len(frames),
                         faces_found=int(np.count_nonzero(has_face)),
                         first_frame=int(frames[0]) if len(frames) else None,
                         last_frame=int(frames[-1]) if len(frames) else None,
                         focal_mm=focal_px_to_mm(float(np.median(focal)), int(data["width"])) if focal.size
                         else math.nan)


def shot_results(clip):  # noqa: ANN001, ANN201 - MovieClip -> core.retarget.ShotResults | None
    """The clip's stored results in scene frames, as the rig builder and retargeting take them."""
    from core.retarget import ShotResults

    results = load_results(clip)
    if results is None:
        return None
    return ShotResults(frames=results.frames + int(clip.frame_start) - 1, width=results.width,
                       height=results.height, layout=results.layout, landmarks_2d=results.landmarks_2d,
                       visibility=results.visibility, landmarks_3d=results.landmarks_3d, K=results.K, R=results.R,
                       t=results.t, confidence=results.confidence, has_face=results.has_face)


def clear_results(clip) -> None:  # noqa: ANN001
    if clip.get(RESULTS_KEY) is not None:
        del clip[RESULTS_KEY]
    remove_markers(clip)


def remove_markers(clip) -> None:  # noqa: ANN001
    objects = clip.tracking.objects
    obj = objects.get(MARKER_OBJECT_NAME)
    if obj is not None:
        objects.remove(obj)


def write_markers(clip, results: TrackingResults):  # noqa: ANN001, ANN201 - MovieTrackingObject
    """One tracking track per landmark, in our own tracking object (replaced on each call; the camera's tracks and
    other objects are the user's and stay untouched). Markers sit at the landmarks; a landmark that is hidden, or a
    frame without a face, gets a disabled marker, as Blender's own tracker marks a lost feature."""
    remove_markers(clip)
    obj = clip.tracking.objects.new(MARKER_OBJECT_NAME)
    if not results.num_frames:
        return obj
    w, h = float(results.width), float(results.height)
    # Blender's marker space: 0..1 across the frame, origin at the bottom-left corner (ours is top-left).
    co = np.stack([results.landmarks_2d[..., 0] / w, 1.0 - results.landmarks_2d[..., 1] / h], -1)
    enabled = results.has_face[:, None] & (np.nan_to_num(results.visibility) >= HIDDEN_VISIBILITY)
    co = np.where(np.isfinite(co), co, 0.0)
    frames = [int(f) for f in results.frames]
    for i, name in enumerate(results.names):
        track = obj.tracks.new(name=name, frame=frames[0])
        markers = track.markers
        for row, frame in enumerate(frames):
            marker = markers.insert_frame(frame, co=(float(co[row, i, 0]), float(co[row, i, 1])))
            marker.mute = not bool(enabled[row, i])
    return obj


def summary(results: TrackingResults | StoredSummary) -> str:
    """'N frames, a face in M (P %)' for reports and the panel."""
    return strings.SUMMARY.format(frames=results.num_frames, found=results.faces_found,
                                  percent=100.0 * results.faces_found / max(results.num_frames, 1))


def save_results_npz(results: TrackingResults, path: str | Path) -> Path:
    """All per-frame arrays of `results` (and its setup) in one .npz, for pipelines and evaluation scripts.
    Written atomically (core.outputs.atomic_path); an OutputError names the file when it cannot be."""
    from core.outputs import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a file object: numpy adds no ".npz" to the name
        np.savez_compressed(f, layout=results.layout, semantics=results.semantics, model=results.model,
                            width=results.width, height=results.height, fps=results.fps,
                            names=np.array(results.names), frames=results.frames, has_face=results.has_face,
                            confidence=results.confidence, landmarks_2d=results.landmarks_2d,
                            visibility=results.visibility, landmarks_3d=results.landmarks_3d, K=results.K,
                            R=results.R, t=results.t)
    return path


def write_preview(results: TrackingResults, footage: str | Path, path: str | Path) -> Path:
    """An MPEG-4 video of the footage with the tracked landmarks drawn (green visible, red hidden).

    OpenCV's own mp4v encoder: H.264 needs ffmpeg, which the add-on does not bundle. Written under a temporary
    name and renamed (core.outputs.atomic_path): a failure leaves no partial video. Raises TrackingError.
    """
    import cv2

    from core.layouts import load_layout
    from core.outputs import OutputError, atomic_path
    from core.overlay import draw_landmarks
    from core.runtime.images import ImageReadError
    from core.runtime.video import VideoReadError, open_frames

    path = Path(path)
    try:
        contours = load_layout(results.layout).contours
    except ValueError:
        contours = {}
    try:
        with atomic_path(path) as tmp:
            writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(results.fps or 25.0),
                                     (results.width, results.height))
            if not writer.isOpened():
                raise OutputError(f"OpenCV cannot write an mp4v video named {path.name}: use .mp4")
            try:
                for i, frame in enumerate(open_frames(footage)):
                    if i < results.num_frames and results.has_face[i]:
                        frame = draw_landmarks(frame, results.landmarks_2d[i], results.visibility[i], contours)
                    writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            finally:
                writer.release()
    except (OutputError, VideoReadError, ImageReadError) as exc:
        raise TrackingError(f"cannot write the preview video {path}: {exc}") from exc
    return path
