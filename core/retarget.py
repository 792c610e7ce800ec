"""Blender-free helpers for building and retargeting a face rig: shape-key name matching, per-shot focal
length, head-pose bookkeeping, and `ShotResults` (a shot's tracking as stacked per-frame arrays, the rig
builder's input). Used by `blender_addon.scene` and tested with plain pytest.

Name matching maps the 52 ARKit blendshape names onto whatever a target rig calls its shape keys. Rigs
in the wild spell them many ways (`eyeBlink_L`, `EyeBlinkLeft`, `eye_blink_left`, `Left_eyeBlink`,
`CTRL_eyeBlinkL`, `blendShape1.eyeBlinkLeft`, `eyeBlink.L`); every spelling is reduced to a (core, side) key
and looked up among the ARKit names reduced the same way. Sides are the subject's own (ARKit `Left` = ICT `_L`).

Pose: the rig keeps the camera static and moves the head (see `head_world_matrices`), because that is what
animators retarget: head motion lives on the head, and the camera stays where the shot's first face was seen.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np

from .geometry import opencv_to_blender_camera_matrix
from .solve import ARKIT52_NAMES

_SIDE_WORDS = {"l": "L", "left": "L", "r": "R", "right": "R"}
# camelCase / PascalCase / UPPER / digits -> words: "CTRL_eyeBlinkL" -> CTRL, eye, Blink, L.
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def _strip_namespace(name: str) -> str:
    """Drop Maya/Apple namespaces (`blendShape1.`, `ns:`, `|grp|`) and Blender's `.001`, keep a `.L` side."""
    parts = [p for p in re.split(r"[.:|]", name.strip()) if p]
    while len(parts) > 1 and parts[-1].isdigit():  # Blender duplicate suffix "eyeBlink_L.001"
        parts.pop()
    if not parts:
        return name
    if len(parts) > 1 and parts[-1].lower() in _SIDE_WORDS:  # Blender-style mirror suffix "eyeBlink.L"
        return parts[-2] + "_" + parts[-1]
    return parts[-1]


def name_keys(name: str) -> list[tuple[str, str | None]]:
    """Every (core, side) reading of a shape-key name, most specific first.

    core is lower-case words joined without separators; side is "L", "R" or None. A name yields several
    readings because it is ambiguous on its own: "jawLeft" is (jawleft, None) and also (jaw, L), and
    "CTRL_eyeBlinkL" is read with and without its leading words so prefixes need no list.
    """
    words = _words(_strip_namespace(name))
    readings: list[tuple[list[str], str | None]] = [(words, None)]
    if len(words) > 1 and words[-1] in _SIDE_WORDS:
        readings.append((words[:-1], _SIDE_WORDS[words[-1]]))
    if len(words) > 1 and words[0] in _SIDE_WORDS:
        readings.append((words[1:], _SIDE_WORDS[words[0]]))
    keys: list[tuple[str, str | None]] = []
    for core_words, side in readings:
        # Leading words may be a prefix ("ctrl", "bs", "arkit", "shape"): try every tail, longest first.
        for start in range(len(core_words)):
            key = ("".join(core_words[start:]), side)
            if key[0] and key not in keys:
                keys.append(key)
    # All lower case with nothing to split on ("eyeblinkleft"): read a trailing side word off the string.
    if len(words) == 1:
        text = words[0]
        for suffix in ("left", "right", "l", "r"):
            if text.endswith(suffix) and len(text) > len(suffix) + 2:
                keys.append((text[: -len(suffix)], _SIDE_WORDS[suffix]))
    return keys


def _arkit_key_table() -> dict[tuple[str, str | None], str]:
    """(core, side) -> ARKit name, including the readings a directional name also allows (jaw_L = jawLeft)."""
    table: dict[tuple[str, str | None], str] = {}
    for arkit in ARKIT52_NAMES:
        words = _words(arkit)
        table[("".join(words), None)] = arkit  # eyeblinkleft / jawleft as one word
        if words[-1] in ("left", "right"):
            table.setdefault(("".join(words[:-1]), _SIDE_WORDS[words[-1]]), arkit)
    return table


_ARKIT_KEYS = _arkit_key_table()


def match_arkit_name(name: str) -> str | None:
    """The ARKit name a shape-key name stands for (case-insensitive, any side spelling), or None."""
    if name.strip().lower() == "basis":
        return None
    for key in name_keys(name):
        if key in _ARKIT_KEYS:
            return _ARKIT_KEYS[key]
    return None


@dataclass
class NameMatch:
    """Result of `match_shape_keys`: ARKit name -> target key (or None), and what is left over on each side."""

    mapping: dict[str, str | None]
    unmatched_arkit: list[str] = field(default_factory=list)
    unmatched_targets: list[str] = field(default_factory=list)

    @property
    def matched(self) -> dict[str, str]:
        return {a: t for a, t in self.mapping.items() if t is not None}


def match_shape_keys(target_keys: list[str] | tuple[str, ...],
                     arkit_names: tuple[str, ...] | list[str] = ARKIT52_NAMES) -> NameMatch:
    """Map each ARKit name to one of `target_keys` (the target mesh's shape-key names, Basis included or not).

    When several target keys read as the same ARKit name, the one spelled exactly like it (ignoring case) wins,
    otherwise the first; the others are reported unmatched so the user can assign them by hand.
    """
    candidates: dict[str, list[str]] = {}
    unmatched_targets: list[str] = []
    for key in target_keys:
        if key.strip().lower() == "basis":
            continue
        arkit = match_arkit_name(key)
        if arkit is None or arkit not in arkit_names:
            unmatched_targets.append(key)
        else:
            candidates.setdefault(arkit, []).append(key)
    mapping: dict[str, str | None] = {}
    for arkit in arkit_names:
        keys = candidates.get(arkit, [])
        exact = [k for k in keys if k.lower() == arkit.lower()]
        mapping[arkit] = (exact or keys or [None])[0]
        unmatched_targets += [k for k in keys if k != mapping[arkit]]
    unmatched_arkit = [a for a in arkit_names if mapping[a] is None]
    # Report left-over target keys in their original order.
    order = {k: i for i, k in enumerate(target_keys)}
    unmatched_targets.sort(key=lambda k: order[k])
    return NameMatch(mapping, unmatched_arkit, unmatched_targets)


def robust_focal(focals: np.ndarray, has_face: np.ndarray | None = None, max_deviation: float = 3.0) -> float:
    """One focal length (pixels) for a shot: the median of per-frame focals after rejecting outliers.

    Frames without a face, non-finite and non-positive values are ignored. Outliers are frames further than
    `max_deviation` robust standard deviations (1.4826 x median absolute deviation) from the median, with a
    floor of 1% of the median so that a nearly constant sequence does not reject frames for numerical noise.
    """
    focals = np.asarray(focals, float).reshape(-1)
    keep = np.isfinite(focals) & (focals > 0)
    if has_face is not None:
        keep &= np.asarray(has_face, bool).reshape(-1)
    values = focals[keep]
    if values.size == 0:
        raise ValueError("robust_focal: no frame with a face and a valid focal length")
    median = float(np.median(values))
    sigma = max(1.4826 * float(np.median(np.abs(values - median))), 0.01 * median)
    inliers = values[np.abs(values - median) <= max_deviation * sigma]
    return float(np.median(inliers)) if inliers.size else median


def camera_world_matrices(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(F, 4, 4) Blender camera world matrices for a head at the origin, one per OpenCV pose (R (F,3,3), t (F,3))."""
    return np.stack([opencv_to_blender_camera_matrix(r, v) for r, v in zip(np.asarray(R), np.asarray(t))])


def head_world_matrices(R: np.ndarray, t: np.ndarray, reference: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Static camera, moving head: (camera world matrix (4, 4), head world matrices (F, 4, 4)).

    With the head at the origin the camera would sit at C_f = opencv_to_blender_camera_matrix(R_f, t_f). The
    camera is frozen at C_ref instead, and the head moves so that the camera-to-head relation is unchanged:
    C_ref^-1 H_f = C_f^-1, so H_f = C_ref C_f^-1 (the identity on the reference frame).
    """
    cams = camera_world_matrices(R, t)
    camera = cams[reference]
    return camera, camera[None] @ np.linalg.inv(cams)


def pivot_delta(delta: np.ndarray, pivot: np.ndarray) -> np.ndarray:
    """Re-centre a rigid motion (4, 4) so that it rotates about `pivot` (3,) instead of the world origin.

    Retargeting head motion onto another character: the rig's head turns about the canonical origin, the target
    should turn about its own origin (or bone head), with the same rotation and the same translation.
    """
    out = np.eye(4)
    out[:3, :3] = delta[:3, :3]
    out[:3, 3] = delta[:3, 3] + pivot - delta[:3, :3] @ pivot
    return out


# Fields of one tracked frame, as the tracker and `python -m core.predict` produce them (conventions.md).
FRAME_FIELDS = ("landmarks_2d", "visibility", "landmarks_3d", "K", "R", "t")


def _field(item: Any, name: str, default: Any = None) -> Any:
    if isinstance(item, Mapping):
        return item.get(name, default)
    return getattr(item, name, default)


@dataclass
class ShotResults:
    """A shot's tracking results as stacked arrays, one row per tracked frame (F frames, N layout points).

    Rows of frames without a face hold NaN (and `has_face` False), so every consumer can index by row.
    """

    frames: np.ndarray           # (F,) int, scene frame numbers, increasing
    width: int                   # image size in pixels
    height: int
    layout: str                  # layout name or path the landmarks follow
    landmarks_2d: np.ndarray     # (F, N, 2) px
    visibility: np.ndarray       # (F, N) 0..1
    landmarks_3d: np.ndarray     # (F, N, 3) canonical cm
    K: np.ndarray                # (F, 3, 3) px
    R: np.ndarray                # (F, 3, 3) canonical -> camera
    t: np.ndarray                # (F, 3) cm
    confidence: np.ndarray       # (F,)
    has_face: np.ndarray         # (F,) bool

    @property
    def num_points(self) -> int:
        return int(self.landmarks_2d.shape[1])

    @property
    def face_rows(self) -> np.ndarray:
        """Row indices of frames with a usable face (found, with a finite pose and 3D points)."""
        return np.flatnonzero(self.usable)

    @property
    def usable(self) -> np.ndarray:
        finite = (np.isfinite(self.R).all((1, 2)) & np.isfinite(self.t).all(1) & np.isfinite(self.K).all((1, 2))
                  & np.isfinite(self.landmarks_3d).all((1, 2)))
        return self.has_face & finite

    def row(self, frame: int) -> int | None:
        """Row of a scene frame, or None when the frame was not tracked."""
        hits = np.flatnonzero(self.frames == int(frame))
        return int(hits[0]) if hits.size else None

    @classmethod
    def from_frames(cls, items: Mapping[int, Any] | Iterable[Any], width: int, height: int, layout: str
                    ) -> "ShotResults":
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
