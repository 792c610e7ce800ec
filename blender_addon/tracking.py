"""A clip's tracking in Blender: the `core.shot.Shot` that `core.runtime.track` made, stored on its MovieClip as
ID properties (saved with the .blend), its landmark markers, the panel's summary and the batch's preview video.
The tracking itself is Blender-free and lives in core: data crosses into Blender here, once.

    shot = core.runtime.track.track(movie_path, settings, first_frame=clip_first_frame(clip), fps=clip.fps)
    store_results(clip, shot)                     # ID properties on the MovieClip: saved with the .blend
    write_markers(clip, shot)                     # optional: one tracking marker track per landmark
    shot = load_results(clip)                     # the stored shot, placed on the scene's frames

Nothing here imports bpy at module level: clips are read and written through their attributes only, so the
operators (`operators/track.py`), the command line (`cli.py`) and plain-Python tests share every line.

Frame numbers are *clip frames* (1-based, as Blender's tracking markers use them): the footage's frame i
(0-based) is clip frame i + 1 - clip.frame_offset, shown at scene frame clip_frame + clip.frame_start - 1 (the
loaded shot's `scene_frames`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from core.runtime.track import TrackingError
from core.shot import Shot

from . import strings

RESULTS_KEY = "infinite_landmarks"          # ID property group on the MovieClip
RESULTS_FORMAT_VERSION = 1
MARKER_OBJECT_NAME = "Infinite Landmarks"   # tracking object holding our marker tracks (the user's stay apart)
HIDDEN_VISIBILITY = 0.5                     # below this a landmark's marker is disabled for that frame


# --- the stored format (ID properties; unchanged since format version 1, so old .blend files load) -------------

def to_idprops(shot: Shot) -> dict[str, Any]:
    """A dict Blender stores as ID properties: numpy arrays become flat typed arrays (fast, compact)."""
    arrays = {"frames": shot.frames.astype(np.int32), "has_face": shot.has_face.astype(np.int32),
              "confidence": shot.confidence.astype(np.float32),
              "landmarks_2d": shot.landmarks_2d.astype(np.float32).reshape(-1),
              "visibility": shot.visibility.astype(np.float32).reshape(-1),
              "landmarks_3d": shot.landmarks_3d.astype(np.float32).reshape(-1),
              "K": shot.K.astype(np.float64).reshape(-1), "R": shot.R.astype(np.float64).reshape(-1),
              "t": shot.t.astype(np.float64).reshape(-1)}
    # Blender cannot store an empty array property: an empty result keeps only its metadata.
    arrays = {k: v for k, v in arrays.items() if v.size}
    return {"format_version": RESULTS_FORMAT_VERSION, "layout": shot.layout, "semantics": shot.semantics,
            "model": shot.model, "width": int(shot.width), "height": int(shot.height), "fps": float(shot.fps),
            "num_points": shot.num_points, "names": "\n".join(shot.names), **arrays}


def from_idprops(data: Any, frame_offset: int = 0) -> Shot:
    """Inverse of `to_idprops`, from the ID property group (or a plain dict)."""
    n = int(data["num_points"])

    def array(key: str, dtype: type, shape: tuple[int, ...]) -> np.ndarray:
        return _stored_array(data, key, dtype).reshape((-1, *shape))

    names = str(data.get("names", ""))
    return Shot(layout=str(data["layout"]), semantics=str(data["semantics"]), model=str(data.get("model", "")),
                width=int(data["width"]), height=int(data["height"]), fps=float(data.get("fps", 0.0)),
                names=names.split("\n") if names else [f"{i:03d}" for i in range(n)],
                frames=array("frames", np.int64, ()), has_face=array("has_face", np.int32, ()).astype(bool),
                confidence=array("confidence", np.float64, ()),
                landmarks_2d=array("landmarks_2d", np.float64, (n, 2)),
                visibility=array("visibility", np.float64, (n,)),
                landmarks_3d=array("landmarks_3d", np.float64, (n, 3)),
                K=array("K", np.float64, (3, 3)), R=array("R", np.float64, (3, 3)), t=array("t", np.float64, (3,)),
                frame_offset=frame_offset)


def _stored_array(data: Any, key: str, dtype: type) -> np.ndarray:
    """A flat stored array, copied (an ID property array is a buffer into Blender's memory, which is freed when
    the property is replaced or another file is loaded), empty if absent."""
    value = data.get(key)
    return np.array(value, dtype) if value is not None else np.zeros(0, dtype)


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


def store_results(clip, results: Shot, merge: bool = True) -> Shot:  # noqa: ANN001
    """Save a shot on the clip (merged over earlier results of the same setup); returns what was stored."""
    if merge:
        results = results.merged_over(load_results(clip))
    clip[RESULTS_KEY] = to_idprops(results)
    return results


def load_results(clip) -> Shot | None:  # noqa: ANN001
    """The shot stored on a clip, placed on the scene's frames (`Shot.scene_frames`), or None (never tracked, or
    stored by an incompatible version)."""
    data = clip.get(RESULTS_KEY) if clip is not None else None
    if data is None or int(data.get("format_version", 0)) != RESULTS_FORMAT_VERSION:
        return None
    return from_idprops(data, frame_offset=int(clip.frame_start) - 1)


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


def clear_results(clip) -> None:  # noqa: ANN001
    if clip.get(RESULTS_KEY) is not None:
        del clip[RESULTS_KEY]
    remove_markers(clip)


def remove_markers(clip) -> None:  # noqa: ANN001
    objects = clip.tracking.objects
    obj = objects.get(MARKER_OBJECT_NAME)
    if obj is not None:
        objects.remove(obj)


def write_markers(clip, results: Shot):  # noqa: ANN001, ANN201 - MovieTrackingObject
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


def summary(results: Shot | StoredSummary) -> str:
    """'N frames, a face in M (P %)' for reports and the panel."""
    return strings.SUMMARY.format(frames=results.num_frames, found=results.faces_found,
                                  percent=100.0 * results.faces_found / max(results.num_frames, 1))


def write_preview(results: Shot, footage: str | Path, path: str | Path) -> Path:
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
