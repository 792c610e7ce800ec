"""Random scene parameters: identity, expression, head pose, camera and lighting, all from one numpy Generator.

Everything random about a sample is drawn here, in a fixed order, so (seed, index) fully determines a sample.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core import geometry
from core.facemodel import FaceModel

# Expression archetypes over ICT names (weights 0..1); "*" expands to both _L and _R.
EXPRESSION_ARCHETYPES: dict[str, dict[str, float]] = {
    "neutral": {},
    "smile": {"mouthSmile*": 0.8, "cheekSquint*": 0.4, "eyeSquint*": 0.2, "cheekRaiser*": 0.4},
    "grin": {"mouthSmile*": 1.0, "mouthStretch*": 0.4, "jawOpen": 0.25, "mouthUpperUp*": 0.4, "cheekRaiser*": 0.7,
             "eyeSquint*": 0.4},
    "laugh": {"jawOpen": 0.6, "mouthSmile*": 0.9, "cheekRaiser*": 0.8, "eyeSquint*": 0.6, "eyeBlink*": 0.3},
    "surprise": {"jawOpen": 0.7, "browInnerUp*": 0.9, "browOuterUp*": 0.8, "eyeWide*": 0.8, "mouthFunnel": 0.2},
    "fear": {"browInnerUp*": 1.0, "eyeWide*": 1.0, "mouthStretch*": 0.7, "jawOpen": 0.2},
    "anger": {"browDown*": 0.9, "eyeSquint*": 0.5, "noseSneer*": 0.5, "mouthPress*": 0.6, "jawForward": 0.2},
    "disgust": {"noseSneer*": 0.9, "mouthUpperUp*": 0.7, "browDown*": 0.4, "mouthFrown*": 0.4},
    "sad": {"browInnerUp*": 0.8, "mouthFrown*": 0.8, "mouthShrugLower": 0.5, "eyeSquint*": 0.2},
    "blink": {"eyeBlink*": 1.0},
    "wink_left": {"eyeBlink_L": 1.0, "mouthSmile_L": 0.5, "cheekSquint_L": 0.5},
    "wink_right": {"eyeBlink_R": 1.0, "mouthSmile_R": 0.5, "cheekSquint_R": 0.5},
    "pucker": {"mouthPucker": 1.0, "mouthFunnel": 0.3},
    "funnel": {"mouthFunnel": 1.0, "jawOpen": 0.25},
    "jaw_open": {"jawOpen": 1.0},
    "scream": {"jawOpen": 1.0, "mouthStretch*": 0.8, "browDown*": 0.5, "eyeSquint*": 0.7, "noseSneer*": 0.4},
    "jaw_left": {"jawLeft": 0.8, "mouthLeft": 0.4},
    "jaw_right": {"jawRight": 0.8, "mouthRight": 0.4},
    "cheek_puff": {"cheekPuff*": 1.0, "mouthClose": 0.3},
    "lips_in": {"mouthRollLower": 0.9, "mouthRollUpper": 0.9, "mouthPress*": 0.4},
    "smirk_left": {"mouthSmile_L": 0.9, "mouthDimple_L": 0.5, "mouthLeft": 0.3},
    "smirk_right": {"mouthSmile_R": 0.9, "mouthDimple_R": 0.5, "mouthRight": 0.3},
    "brow_raise": {"browInnerUp*": 0.8, "browOuterUp*": 0.8},
    "squint": {"eyeSquint*": 1.0, "cheekSquint*": 0.5, "browDown*": 0.3},
    "talk_a": {"jawOpen": 0.35, "mouthLowerDown*": 0.3},
    "talk_o": {"jawOpen": 0.3, "mouthFunnel": 0.6, "mouthPucker": 0.2},
    "talk_m": {"mouthClose": 0.2, "mouthPress*": 0.5, "mouthRollLower": 0.2},
    "talk_f": {"mouthRollLower": 0.5, "mouthUpperUp*": 0.3, "jawOpen": 0.1},
    "talk_e": {"jawOpen": 0.2, "mouthStretch*": 0.5, "mouthSmile*": 0.2},
}
GAZE_SHAPES = ("eyeLookDown", "eyeLookUp", "eyeLookIn", "eyeLookOut")

# Size of the face (mean of the iBUG-68 box's width and height, cm) used to place faces at a pixel size.
FACE_BOX_CM = 13.0
MIN_CAMERA_DISTANCE_CM = 25.0


def expand_archetype(weights: dict[str, float], names: tuple[str, ...]) -> np.ndarray:
    out = np.zeros(len(names), np.float32)
    index = {n: i for i, n in enumerate(names)}
    for key, value in weights.items():
        for name in ([key[:-1] + "_L", key[:-1] + "_R"] if key.endswith("*") else [key]):
            out[index[name]] = max(out[index[name]], value)
    return out


@dataclass
class SceneParams:
    identity: np.ndarray          # (100,)
    expression: np.ndarray        # (57,)
    yaw: float
    pitch: float
    roll: float
    K: np.ndarray                 # 3x3
    R: np.ndarray                 # 3x3 canonical -> camera
    t: np.ndarray                 # (3,) cm
    width: int
    height: int
    body_yaw: float = 0.0
    body_pitch: float = 0.0
    lighting_seed: int = 0
    tags: dict = field(default_factory=dict)


def sample_identity(rng: np.random.Generator, num_modes: int = 100, scale: float = 1.0) -> np.ndarray:
    # Heavier tails than N(0,1) on the first modes give more distinctive faces at little cost in realism.
    w = rng.standard_normal(num_modes) * scale
    w[:10] *= rng.uniform(0.8, 1.3)
    return np.clip(w, -3.0, 3.0).astype(np.float32)


def sample_expression(rng: np.random.Generator, names: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    """A realistic mix: 1-3 archetypes at random intensities, L/R asymmetry, gaze, sparse noise, extremes."""
    keys = list(EXPRESSION_ARCHETYPES)
    chosen = list(rng.choice(keys, size=rng.choice([1, 1, 2, 2, 3]), replace=False))
    w = np.zeros(len(names), np.float32)
    for key in chosen:
        intensity = rng.uniform(1.0, 1.3) if rng.random() < 0.15 else rng.uniform(0.2, 1.0)
        w += intensity * expand_archetype(EXPRESSION_ARCHETYPES[key], names)
    # Asymmetry: scale every left shape and every right shape by its own factor.
    left = np.array([n.endswith("_L") for n in names])
    right = np.array([n.endswith("_R") for n in names])
    w[left] *= rng.uniform(0.6, 1.2)
    w[right] *= rng.uniform(0.6, 1.2)
    # Gaze: both eyes look the same way (In for one eye is Out for the other).
    horizontal, vertical = rng.normal(0, 0.35), rng.normal(0, 0.3)
    gaze = {"eyeLookOut_L": max(horizontal, 0), "eyeLookIn_R": max(horizontal, 0),
            "eyeLookIn_L": max(-horizontal, 0), "eyeLookOut_R": max(-horizontal, 0),
            "eyeLookUp_L": max(vertical, 0), "eyeLookUp_R": max(vertical, 0),
            "eyeLookDown_L": max(-vertical, 0), "eyeLookDown_R": max(-vertical, 0)}
    for name, value in gaze.items():
        w[names.index(name)] += value
    # Sparse noise on a few random shapes (excluding pupil dilation, which barely shows).
    for i in rng.choice(len(names) - 2, size=rng.integers(0, 5), replace=False):
        w[i] += rng.uniform(0, 0.4)
    if rng.random() < 0.1:  # random blinks anywhere
        w[names.index("eyeBlink_L")] = w[names.index("eyeBlink_R")] = rng.uniform(0.5, 1.0)
    # jawLeft and jawRight fight; keep the stronger.
    jl, jr = names.index("jawLeft"), names.index("jawRight")
    w[jl if w[jl] < w[jr] else jr] = 0
    return np.clip(w, 0.0, 1.0), chosen


def sample_head_pose(rng: np.random.Generator) -> tuple[float, float, float]:
    """Degrees. Mostly near-frontal like real photos, with a uniform tail out to profile."""
    yaw = rng.normal(0, 25) if rng.random() < 0.6 else rng.uniform(-90, 90)
    pitch = rng.normal(0, 14) if rng.random() < 0.8 else rng.uniform(-50, 50)
    roll = rng.normal(0, 9) if rng.random() < 0.85 else rng.uniform(-40, 40)
    return float(np.clip(yaw, -90, 90)), float(np.clip(pitch, -50, 50)), float(np.clip(roll, -40, 40))


def sample_camera(rng: np.random.Generator, width: int, height: int, head_center: np.ndarray, R: np.ndarray,
                  min_face_px: float = 40.0, max_face_fraction: float = 1.1) -> tuple[np.ndarray, np.ndarray, dict]:
    """Intrinsics (horizontal FOV 10-90 degrees) and translation placing the face at a random size and position."""
    fov = float(np.exp(rng.uniform(np.log(10), np.log(90))) if rng.random() < 0.5 else rng.uniform(35, 75))
    f = geometry.focal_from_fov(fov, width)
    K = geometry.intrinsics(f, width, height)
    max_face = max_face_fraction * min(width, height)
    face_px = float(np.exp(rng.uniform(np.log(min_face_px), np.log(max_face))))
    z = f * FACE_BOX_CM / face_px
    if z < MIN_CAMERA_DISTANCE_CM:  # a wide lens cannot get closer than a selfie: the face gets smaller instead
        z = MIN_CAMERA_DISTANCE_CM
        face_px = f * FACE_BOX_CM / z
    # Face centre anywhere that keeps most of the face in frame.
    margin_x = min(0.4 * face_px, width / 2)
    margin_y = min(0.4 * face_px, height / 2)
    u = rng.uniform(margin_x, width - margin_x) if rng.random() < 0.7 else rng.uniform(0, width)
    v = rng.uniform(margin_y, height - margin_y) if rng.random() < 0.7 else rng.uniform(0, height)
    ray = np.linalg.inv(K) @ np.array([u, v, 1.0])
    t = ray * z - R @ head_center
    return K, t, {"fov_deg": fov, "face_px": face_px, "distance_cm": z}


def sample_scene(rng: np.random.Generator, model: FaceModel, width: int, height: int,
                 head_center: np.ndarray) -> SceneParams:
    identity = sample_identity(rng, model.num_identities)
    expression, archetypes = sample_expression(rng, model.expression_names)
    yaw, pitch, roll = sample_head_pose(rng)
    R = geometry.pose_to_rotation(yaw, pitch, roll)
    K, t, camera_tags = sample_camera(rng, width, height, head_center, R)
    # The body turns less than the head: a head turned 60 degrees usually sits on a body turned ~20.
    body_yaw = yaw * rng.uniform(0.0, 0.6) + rng.normal(0, 10)
    body_pitch = pitch * rng.uniform(0.0, 0.4)
    return SceneParams(identity=identity, expression=expression, yaw=yaw, pitch=pitch, roll=roll, K=K, R=R, t=t,
                       width=width, height=height, body_yaw=float(body_yaw), body_pitch=float(body_pitch),
                       lighting_seed=int(rng.integers(2**31)),
                       tags={"archetypes": archetypes, **camera_tags})


def sample_lighting(rng: np.random.Generator):
    """Key + optional fill and rim lights in camera space, colour temperatures, occasional coloured lights."""
    from training.synth.renderer import Lighting

    def warm_cool(strength: float) -> np.ndarray:
        t = rng.uniform(-1, 1)  # -1 cool (blueish) .. 1 warm (orange)
        c = np.array([1 + 0.25 * t, 1.0, 1 - 0.3 * t])
        if rng.random() < 0.08:  # a coloured gel
            c = rng.uniform(0.2, 1.0, 3)
        return strength * c / c.max()

    def direction(front: bool) -> np.ndarray:
        azimuth = rng.uniform(-80, 80) if front else rng.uniform(100, 260)
        elevation = rng.uniform(-30, 70)
        a, e = np.radians(azimuth), np.radians(elevation)
        # camera space: the light sits towards the camera (-z) for azimuth 0, above (-y) for positive elevation
        return np.array([np.sin(a) * np.cos(e), -np.sin(e), -np.cos(a) * np.cos(e)])

    key_strength = rng.uniform(0.5, 1.3)
    dirs, cols = [direction(True)], [warm_cool(key_strength)]
    if rng.random() < 0.6:
        dirs.append(direction(True))
        cols.append(warm_cool(key_strength * rng.uniform(0.1, 0.5)))
    if rng.random() < 0.3:
        dirs.append(direction(False))
        cols.append(warm_cool(rng.uniform(0.3, 1.0)))
    ambient = rng.uniform(0.05, 0.45)
    sky = warm_cool(ambient)
    ground = sky * rng.uniform(0.3, 0.8)
    return Lighting(directions=dirs, colors=cols, sky=sky, ground=ground)
