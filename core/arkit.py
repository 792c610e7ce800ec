"""ARKit's 52 blend-shape names: how they map from the ICT face model's expression shapes, and which ARKit name a
rig's shape key stands for, however the rig spells it. Numpy only, so the Blender add-on and the solve share it.

ICT names its shapes with `_L`/`_R` and ARKit with `Left`/`Right`, both the subject's own side; ICT splits
browInnerUp and cheekPuff into halves, has four shapes ARKit lacks and lacks tongueOut (`to_arkit52`). Rigs in the
wild spell the ARKit names many ways (`eyeBlink_L`, `EyeBlinkLeft`, `eye_blink_left`, `Left_eyeBlink`,
`CTRL_eyeBlinkL`, `blendShape1.eyeBlinkLeft`, `eyeBlink.L`); every spelling is reduced to a (core, side) key and
looked up among the ARKit names reduced the same way (`match_arkit_name`, `match_shape_keys`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from .facemodel import ict_to_arkit_name
from .ict_import import EXPRESSION_NAMES

# The ICT expression shapes in the face model's order (checked against the model by the tests).
ICT_EXPRESSION_NAMES: tuple[str, ...] = EXPRESSION_NAMES

# ARKit's 52 blend shapes in Apple's canonical order (ARFaceAnchor.BlendShapeLocation documentation grouping:
# left eye, right eye, mouth and jaw, eyebrows, cheeks, nose, tongue), as used by ARKit exporters.
ARKIT52_NAMES: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft", "eyeSquintLeft",
    "eyeWideLeft",
    "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight", "eyeSquintRight",
    "eyeWideRight",
    "jawForward", "jawLeft", "jawRight", "jawOpen",
    "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight", "mouthSmileLeft", "mouthSmileRight",
    "mouthFrownLeft", "mouthFrownRight", "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft",
    "mouthStretchRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
    "mouthUpperUpRight",
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
    "noseSneerLeft", "noseSneerRight",
    "tongueOut",
)

# ARKit shapes that ICT splits into a left and a right half.
ARKIT_SPLIT_IN_ICT: dict[str, tuple[str, str]] = {
    "browInnerUp": ("browInnerUp_L", "browInnerUp_R"),
    "cheekPuff": ("cheekPuff_L", "cheekPuff_R"),
}
# ICT shapes with no ARKit counterpart (dropped by `to_arkit52`), and ARKit shapes with no ICT one (always 0).
ICT_ONLY_SHAPES: tuple[str, ...] = ("PupilDilate_L", "PupilDilate_R", "cheekRaiser_L", "cheekRaiser_R")
ARKIT_ONLY_SHAPES: tuple[str, ...] = ("tongueOut",)
# Each ARKit shape and the ICT shapes it comes from (two for the split ones, none for tongueOut).
ARKIT52_FROM_ICT: dict[str, tuple[str, ...]] = {
    name: ARKIT_SPLIT_IN_ICT.get(name, tuple(n for n in ICT_EXPRESSION_NAMES
                                             if ict_to_arkit_name(n) == name and n not in ICT_ONLY_SHAPES))
    for name in ARKIT52_NAMES
}


def to_arkit52(weights57: np.ndarray, combine: str = "mean",
               expression_names: tuple[str, ...] = ICT_EXPRESSION_NAMES) -> np.ndarray:
    """ICT expression weights (..., 57) -> ARKit's 52 (..., 52) in `ARKIT52_NAMES` order.

    - `_L`/`_R` become `Left`/`Right`;
    - ARKit's single browInnerUp and cheekPuff combine ICT's left and right halves by `combine`: "mean" (default:
      the least-squares fit of one symmetric shape to the two halves, so a one-sided raise becomes a half raise)
      or "max" (keeps a one-sided raise at full strength, exaggerating the other side);
    - PupilDilate_L/R and cheekRaiser_L/R (ICT only) are dropped; tongueOut (ARKit only) is 0.
    NaN rows (invalid frames) stay NaN in every column.
    """
    if combine not in ("mean", "max"):
        raise ValueError(f"combine must be 'mean' or 'max', not {combine!r}")
    weights57 = np.asarray(weights57, np.float64)
    if weights57.shape[-1] != len(expression_names):
        raise ValueError(f"expected {len(expression_names)} ICT weights per frame, got {weights57.shape[-1]}")
    index = {n: i for i, n in enumerate(expression_names)}
    out = np.zeros(weights57.shape[:-1] + (len(ARKIT52_NAMES),))
    for k, name in enumerate(ARKIT52_NAMES):
        sources = weights57[..., [index[n] for n in ARKIT52_FROM_ICT[name]]]
        if sources.shape[-1]:  # tongueOut has none: stays 0
            out[..., k] = sources.mean(-1) if combine == "mean" else sources.max(-1)
    out[~np.isfinite(weights57).all(-1)] = np.nan
    return out


# --- shape-key names -------------------------------------------------------------------------------------------

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
