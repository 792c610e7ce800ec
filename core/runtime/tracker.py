"""Frame-by-frame tracking: the crop around the previous frame's (smoothed) landmarks as this frame's crop (the STN
runs only to find the face on the first frame and after a loss), and One Euro smoothing.

    tracker = FaceTracker(model, "ibug68", fps=clip_fps)
    for frame in frames:
        face = tracker.update(frame)          # a FaceResult; face.found is False on frames without a face
        raw.append(tracker.raw_face)          # the same before smoothing
    faces = smooth_clip(raw, [tracker.timestamp(k) for k in range(len(raw))])   # the whole clip, without lag

One Euro filter (Casiez et al., CHI 2012): a low-pass whose cutoff rises with the signal's speed, so a still face
does not jitter and a moving one does not lag. The 2D landmarks are filtered in two parts: their similarity motion
(where the face is, its size and roll, fitted to all points at once) and their shape in the face's own frame. The
motion, an average over every point, is steady enough for a light filter that keeps up with the head; the shape,
where each point's own noise lives, takes the strong one. A filter's cutoffs are in cycles per unit of the
timestamps it is given (frames by default); the tracker gives it seconds (frame index / fps). Each quantity is
filtered in a unit where "1" is the size of the face (its pixel extent when the track starts for 2D points, 15 cm
for 3D points and translation, the starting focal length for focal), so one `beta` suits them all whatever the
footage resolution.
"""
from __future__ import annotations

import dataclasses
import itertools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from .. import geometry
from ..layouts import Layout
from .images import fit_geometry
from .session import FaceResult, LandmarkModel, landmark_prior

log = logging.getLogger(__name__)


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2 * np.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One Euro filter over arrays of any (fixed) shape, each element filtered independently."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0) -> None:
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.d_cutoff = d_cutoff
        self.reset()

    def reset(self) -> None:
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def __call__(self, x: np.ndarray, t: float | None = None) -> np.ndarray:
        """Filter one sample taken at time t (None: one time unit after the previous sample)."""
        x = np.asarray(x, np.float64)
        if self._x is None or self._x.shape != x.shape:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), 0.0 if t is None else float(t)
            return x.copy()
        t = self._t + 1.0 if t is None else float(t)
        dt = t - self._t
        if dt <= 0:  # repeated or out-of-order timestamp: nothing to integrate over
            return self._x.copy()
        dx = (x - self._x) / dt
        self._dx = self._dx + _alpha(self.d_cutoff, dt) * (dx - self._dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        self._x = self._x + _alpha(cutoff, dt) * (x - self._x)
        self._t = t
        return self._x.copy()


@dataclass(frozen=True)
class Smoothing:
    """One Euro settings for the tracker, with time in seconds and motion in face sizes (module doc)."""

    # The shape's: tuned on simulated jitter of a few percent of the face size at 30 fps. The motion's: chosen on clips rendered for tuning only (`training.synth sequence --seed 11`, static
    # ones with --seed 12) and on stills under bench.benchmark's smooth warp (scikit-image's "camera" photo and
    # three training renders, none of them benchmark images). Its speed estimate must follow the head within a
    # few frames (rigid_d_cutoff): with a low cutoff there the filter's own lag showed as "jitter" on the benchmark's
    # warped astronaut, more than the network's own noise (docs/measurements.md).
    min_cutoff: float = 0.3     # Hz: the cutoff for a still face
    beta: float = 2.0           # the cutoff rises by beta Hz per face size per second of motion
    d_cutoff: float = 0.5       # Hz, for the speed estimate
    rigid_min_cutoff: float = 0.5   # Hz: the same for the 2D landmarks' similarity motion (module doc)
    rigid_beta: float = 5.0
    rigid_d_cutoff: float = 4.0


DEFAULT_FPS = 30.0   # when a clip does not say
FACE_SIZE_CM = 15.0  # the unit in which canonical points and translation are filtered


class FaceSmoother:
    """The tracker's filters over one track's consecutive faces (module doc), apart from the tracking itself."""

    def __init__(self, smoothing: Smoothing = Smoothing()) -> None:
        self.smoothing = smoothing
        self.reset()

    def reset(self) -> None:
        """Start a new track: unfiltered, units fixed by its next face."""
        self._filters: dict[str, OneEuroFilter] = {}
        self._units: dict[str, float] = {}
        self._shape: np.ndarray | None = None  # the last filtered 2D shape, in face units

    def _filter(self, name: str, value: np.ndarray, unit: float, t: float) -> np.ndarray:
        if name not in self._filters:
            s = self.smoothing
            self._filters[name] = OneEuroFilter(s.min_cutoff, s.beta, s.d_cutoff)
        return self._filters[name](np.asarray(value, np.float64) / unit, t) * unit

    def __call__(self, face: FaceResult, t: float) -> FaceResult:
        """`face` (found) filtered at time t (seconds, increasing); `theta` is left as it is."""
        if not self._units:  # a new track: fix its units once, so the filters' state stays comparable
            extent = face.landmarks_2d.max(0) - face.landmarks_2d.min(0)
            self._units["px"] = max(float(extent.max()), 1.0)
            self._units["focal"] = max(float(face.K[0, 0]), 1.0) if face.K is not None else 1.0
        changes: dict = {"landmarks_2d": self._smooth_landmarks(face.landmarks_2d, t),
                         "visibility": np.clip(self._filter("visibility", face.visibility, 1.0, t), 0.0, 1.0)}
        if face.R is not None:
            # Filter the rotation's first two columns (6D representation), then make it a rotation again.
            d6 = np.concatenate([face.R[:, 0], face.R[:, 1]])
            R = geometry.rotation_from_6d(self._filter("rotation_6d", d6, 1.0, t))
            focal = self._filter("focal", face.K[0, 0], self._units["focal"], t)
            K = face.K.copy()
            K[0, 0] = K[1, 1] = float(focal)
            changes.update(landmarks_3d=self._filter("landmarks_3d", face.landmarks_3d, FACE_SIZE_CM, t), R=R,
                           t=self._filter("t", face.t, FACE_SIZE_CM, t), K=K)
        return dataclasses.replace(face, **changes)

    def _smooth_landmarks(self, points: np.ndarray, t: float) -> np.ndarray:
        """The 2D landmarks filtered as a similarity motion of a shape (module doc). The shape is in face units:
        the last filtered shape is the reference the motion is fitted from."""
        s = self.smoothing
        reference = self._shape if self._shape is not None else (points - points.mean(0)) / self._units["px"]
        scale, R, centre = geometry.similarity_transform(reference, points)
        scale = max(scale, 1e-9)
        shape = (points - centre) @ R / scale  # the points in the reference's frame (the inverse similarity)
        motion = np.array([*(centre / self._units["px"]), np.log(scale / self._units["px"]),
                           np.arctan2(R[1, 0], R[0, 0])])
        if "motion" not in self._filters:  # the light filter; the shape takes the default one (`_filter`)
            self._filters["motion"] = OneEuroFilter(s.rigid_min_cutoff, s.rigid_beta, s.rigid_d_cutoff)
        motion = self._filters["motion"](motion, t)
        shape = self._shape = self._filter("shape_2d", shape, 1.0, t)
        cos, sin = np.cos(motion[3]), np.sin(motion[3])
        rotation = np.array([[cos, -sin], [sin, cos]])
        return np.exp(motion[2]) * self._units["px"] * shape @ rotation.T + motion[:2] * self._units["px"]


def smooth_clip(faces: Sequence[FaceResult], times: Sequence[float], smoothing: Smoothing = Smoothing()
                ) -> list[FaceResult]:
    """A whole clip's faces (unsmoothed: `FaceTracker.raw_face` of each frame) smoothed without lag.

    The tracker's filters are causal, so a moving face is followed a little late. With the whole clip at hand,
    each run of consecutive frames with a face is filtered forwards and backwards in time and the two are
    averaged: their lags cancel (a zero-phase filter) and the noise is filtered twice: less jitter and a lower
    clip error than the causal tracker (docs/measurements.md, docs/benchmarks.md). Frames without a face are returned as
    they are; `theta` (the next frame's crop while tracking) is kept.
    """
    if len(faces) != len(times):
        raise ValueError(f"{len(faces)} faces but {len(times)} times")
    out = list(faces)
    for found, run in itertools.groupby(range(len(faces)), key=lambda i: faces[i].found):
        if not found:
            continue
        span = list(run)
        smoother = FaceSmoother(smoothing)
        forward = [smoother(faces[i], float(times[i])) for i in span]
        smoother = FaceSmoother(smoothing)  # backwards: time runs the other way, still increasing for the filter
        backward = [smoother(faces[i], -float(times[i])) for i in reversed(span)][::-1]
        for i, a, b in zip(span, forward, backward):
            out[i] = _average(a, b)
    return out


def _average(a: FaceResult, b: FaceResult) -> FaceResult:
    """The mean of two filterings of one face; the rotation is the mean of their 6D forms made a rotation again."""
    changes: dict = {"landmarks_2d": (a.landmarks_2d + b.landmarks_2d) / 2, "visibility": (a.visibility + b.visibility) / 2}
    if a.R is not None:
        d6 = np.concatenate([a.R[:, 0] + b.R[:, 0], a.R[:, 1] + b.R[:, 1]]) / 2
        K = a.K.copy()
        K[0, 0] = K[1, 1] = (a.K[0, 0] + b.K[0, 0]) / 2
        changes.update(landmarks_3d=(a.landmarks_3d + b.landmarks_3d) / 2, R=geometry.rotation_from_6d(d6),
                       t=(a.t + b.t) / 2, K=K)
    return dataclasses.replace(a, **changes)


class FaceTracker:
    """Runs a LandmarkModel over consecutive frames of one clip (same frame size throughout)."""

    def __init__(self, model: LandmarkModel, layout: str | Path | Layout = "ibug68", semantics: str = "canonical",
                 smoothing: Smoothing | None = Smoothing(), fps: float | None = None, mirror: bool = False) -> None:
        """`smoothing` None disables filtering; `fps` converts frame numbers to seconds for the filter (None or
        0: DEFAULT_FPS); `mirror`: each frame's crop also runs mirrored, averaged (`LandmarkModel.predict`):
        steadier landmarks on most clips (bench.benchmark's mirrored rows) at twice the time per frame."""
        self.model = model
        self.mirror = mirror
        self.layout = layout
        self.semantics = semantics
        self.smoothing = smoothing
        self.fps = fps if fps and fps > 0 else DEFAULT_FPS
        self.frame_index = -1
        self.raw_face: FaceResult | None = None  # the last frame's face before smoothing (for `smooth_clip`)
        self.reset()

    def reset(self) -> None:
        """Forget the previous face: the next frame starts from the full frame, unfiltered."""
        self._theta: np.ndarray | None = None
        self._frame_hw: tuple[int, int] | None = None
        self._smoother = FaceSmoother(self.smoothing) if self.smoothing is not None else None

    def timestamp(self, frame_index: int) -> float:
        """Seconds of a frame index at the tracker's fps (the default timestamps of `update`)."""
        return frame_index / self.fps

    def update(self, frame_rgb: np.ndarray, timestamp: float | None = None) -> FaceResult:
        """The (smoothed) face in the next frame. `timestamp` in seconds (default: frame index / fps)."""
        self.frame_index += 1
        frame_hw = frame_rgb.shape[:2]
        if self._frame_hw is not None and frame_hw != self._frame_hw:
            log.info("frame size changed from %s to %s: tracking restarts", self._frame_hw, frame_hw)
            self.reset()
        self._frame_hw = frame_hw
        face = self.raw_face = self.model.predict(frame_rgb, self.layout, self.semantics, prior_theta=self._theta,
                                                  mirror=self.mirror)
        if not face.found:
            # A lost face must not seed the next detection's crop, nor be averaged into it.
            self.reset()
            return face
        if self._smoother is not None:
            face = self._smoother(face, self.timestamp(self.frame_index) if timestamp is None else timestamp)
            # The next frame's crop comes from the smoothed landmarks too: a steadier crop, steadier landmarks
            # (less jitter on static and moving synthetic clips: docs/measurements.md).
            face = dataclasses.replace(face, theta=landmark_prior(
                fit_geometry(frame_hw, self.model.input_hw).to_input(face.landmarks_2d), self.model.input_hw,
                self.model.crop_scale))
        self._theta = face.theta
        return face

    def track(self, frames: Iterable[np.ndarray]) -> Iterator[FaceResult]:
        """`update` over an iterable of RGB frames, yielding one FaceResult per frame."""
        for frame in frames:
            yield self.update(frame)
