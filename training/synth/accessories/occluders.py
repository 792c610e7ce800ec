"""Occluders in camera space (`sample_occluder`): a hand, a microphone, a mug or a phone between the camera and
the face, covering part of the mouth, chin, a cheek or an eye."""
from __future__ import annotations

import numpy as np

from training.synth.accessories.mesh import (capsule_profile, frame_from_axis, lathe, merge, normalize, part,
                                             rotation, superellipsoid, sweep)
from training.synth.accessories.options import as_skin_rgb
from training.synth.accessories.torso import CLOTH_COLORS
from training.synth.parts import MeshPart

OCCLUDERS = ("hand", "microphone", "mug", "phone")
OCCLUDER_WEIGHTS = (0.5, 0.15, 0.15, 0.2)


def _capsule_between(a: np.ndarray, b: np.ndarray, radius: float, tip: float | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    length = float(np.linalg.norm(b - a))
    verts, tris, _ = lathe(capsule_profile(radius, max(length, 2 * radius), tip_radius=tip), 10)
    return verts @ frame_from_axis(b - a).T + a, tris


def _hand(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A hand in its own frame (fingers along +y, palm facing +z, palm centre at 0); returns vertices, triangles
    and the points to aim at the face (palm centre, middle of the fingers)."""
    u = rng.uniform
    scale = u(0.85, 1.1)
    palm_w, palm_h, palm_t = 4.2 * scale, 5.0 * scale, 1.4 * scale
    palm, palm_tris = superellipsoid(np.array([palm_w, palm_h, palm_t]), 0.5, 0.4, 8, 14)
    meshes = [(palm, palm_tris)]
    curl = u(0, 60)
    spread = u(0, 8)
    lengths = np.array([4.2, 4.7, 4.5, 3.6]) * scale
    for i, x in enumerate(np.linspace(-0.72, 0.72, 4) * palm_w):
        base = np.array([x, palm_h * 0.85, 0.0])
        direction = rotation([0, 0, 1], (x / palm_w) * -spread) @ np.array([0.0, 1.0, 0.0])
        bend_axis = np.array([1.0, 0.0, 0.0])
        mid = base + direction * lengths[i] * 0.55
        d2 = rotation(bend_axis, curl) @ direction
        tip = mid + d2 * lengths[i] * 0.5
        r = 0.85 * scale * (0.9 if i == 3 else 1.0)
        meshes.append(_capsule_between(base, mid, r))
        meshes.append(_capsule_between(mid, tip, r * 0.92, r * 0.8))
    thumb_base = np.array([-palm_w * 0.85, -palm_h * 0.25, 0.3])
    thumb_mid = thumb_base + rotation([0, 0, 1], u(20, 50)) @ np.array([0.0, 1.0, 0.0]) * 3.2 * scale
    thumb_tip = thumb_mid + rotation([0, 0, 1], u(10, 40)) @ np.array([0.0, 1.0, 0.3]) * 2.8 * scale
    meshes.append(_capsule_between(thumb_base, thumb_mid, 1.0 * scale))
    meshes.append(_capsule_between(thumb_mid, thumb_tip, 0.9 * scale, 0.8 * scale))
    # Wrist stub so the hand does not end in mid-air at the palm's edge.
    meshes.append(_capsule_between(np.array([0.0, -palm_h * 0.6, 0.0]), np.array([0.0, -palm_h * 2.6, -0.5]),
                                   2.6 * scale))
    verts, tris = merge(meshes)
    aims = np.array([[0.0, 0.0, 0.0], [0.0, palm_h + 2.5 * scale, 0.0]])
    return verts, tris, aims


def _microphone(rng: np.random.Generator) -> list[tuple[str, np.ndarray, np.ndarray, tuple, float]]:
    u = rng.uniform
    head_r = u(2.4, 3.2)
    length = u(14.0, 19.0)
    handle = np.array([[0.0, -length], [1.2, -length], [1.3, -length + 0.4], [1.9, -head_r * 0.6],
                       [1.2, -head_r * 0.3], [0.0, -head_r * 0.3]])
    hv, ht, _ = lathe(handle, 14)
    a = np.linspace(-np.pi / 2, np.pi / 2, 9)
    sv, st, _ = lathe(np.stack([head_r * np.cos(a), head_r * np.sin(a)], 1), 16)
    return [("microphone", hv, ht, (0.03, 0.03, 0.035), 0.5),
            ("microphone", sv, st, tuple(np.full(3, u(0.2, 0.45))), 0.6)]


def _mug(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    u = rng.uniform
    r, h, wall = u(3.6, 4.6), u(8.0, 11.0), 0.35
    profile = np.array([[0.0, 0.0], [r - 0.3, 0.0], [r, 0.3], [r, h], [r - wall, h], [r - wall, 0.6], [0.0, 0.6]])
    verts, tris, _ = lathe(profile, 24)
    t = np.linspace(-np.pi / 2 * 0.9, np.pi / 2 * 0.9, 10)
    hr = u(2.2, 3.0)
    path = np.stack([r - 0.2 + hr * 0.8 * np.cos(t), h / 2 + hr * np.sin(t), np.zeros_like(t)], 1)
    tangent = normalize(np.gradient(path, axis=0))
    a = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    handle = sweep(path, np.broadcast_to([0.0, 0.0, 1.0], path.shape), np.cross(tangent, [0.0, 0.0, 1.0]),
                   np.stack([0.5 * np.cos(a), 0.35 * np.sin(a)], 1), closed=False)
    return merge([(verts - [0, h / 2, 0], tris), (handle[0] - [0, h / 2, 0], handle[1])])


def _phone(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    u = rng.uniform
    return superellipsoid(np.array([u(3.5, 4.0), u(7.2, 8.2), u(0.4, 0.5)]), 0.15, 0.25, 10, 24)


def _random_rotation(rng: np.random.Generator, max_tilt: float) -> np.ndarray:
    """In-plane roll of any angle, tilts about the camera's x and y axes up to max_tilt degrees."""
    return (rotation([0, 0, 1], rng.uniform(-180, 180)) @ rotation([1, 0, 0], rng.uniform(-max_tilt, max_tilt))
            @ rotation([0, 1, 0], rng.uniform(-max_tilt, max_tilt)))


def sample_occluder(rng: np.random.Generator, face_center_cam: np.ndarray, face_size_cm: float, skin=None,
                    probability: float = 0.2) -> list[MeshPart]:
    """With `probability`, a hand, microphone, mug or phone between the camera and the face (camera frame, cm).

    `face_center_cam` is the face's centre in OpenCV camera coordinates (x right, y down, z forward) and
    `face_size_cm` its size; the occluder covers part of the mouth, chin, a cheek or an eye.
    """
    if rng.random() >= probability:
        return []
    u = rng.uniform
    kind = OCCLUDERS[rng.choice(len(OCCLUDERS), p=OCCLUDER_WEIGHTS)]
    size = float(face_size_cm)
    region = rng.choice(["mouth", "chin", "cheek", "eye"], p=[0.4, 0.25, 0.25, 0.1])
    offset = {"mouth": (0.0, 0.3), "chin": (0.0, 0.48), "cheek": (rng.choice([-1, 1]) * 0.3, 0.1),
              "eye": (rng.choice([-1, 1]) * 0.22, -0.12)}[region]
    target = np.asarray(face_center_cam, float) + np.array([offset[0] + u(-0.06, 0.06), offset[1] + u(-0.06, 0.06),
                                                            0.0]) * [size, size, 0]
    target[2] -= u(5.5, 13.0)  # in front of the nose, towards the camera
    parts = []
    if kind == "hand":
        verts, tris, aims = _hand(rng)
        R = rotation([0, 0, 1], 180 + u(-100, 100)) @ rotation([1, 0, 0], u(-35, 35)) @ \
            rotation([0, 1, 0], 180 * rng.integers(2) + u(-30, 30))
        aim = aims[rng.integers(len(aims))]
        skin_rgb = np.array(as_skin_rgb(skin)) * u(0.9, 1.05)
        parts.append(part("hand", verts @ R.T + target - R @ aim, tris, color=tuple(np.clip(skin_rgb, 0, 1)),
                          specular=0.1, shininess=16.0, frame="camera"))
    elif kind == "microphone":
        handle_dir = normalize(np.array([u(-0.6, 0.6), 1.0, u(-0.9, -0.2)]))
        R = frame_from_axis(-handle_dir)
        for name, verts, tris, color, spec in _microphone(rng):
            parts.append(part(name, verts @ R.T + target, tris, color=color, specular=spec, shininess=40.0,
                              frame="camera"))
    elif kind == "mug":
        verts, tris = _mug(rng)
        R = frame_from_axis(normalize(np.array([u(-0.3, 0.3), -1.0, u(-0.2, 0.9)]))) @ \
            rotation([0, 1, 0], u(0, 360))
        color = CLOTH_COLORS[rng.integers(len(CLOTH_COLORS))]
        parts.append(part("mug", verts @ R.T + target, tris, color=color, specular=0.4, shininess=50.0,
                          frame="camera"))
    else:
        verts, tris = _phone(rng)
        R = _random_rotation(rng, 40.0)
        color = (0.03, 0.03, 0.035) if rng.random() < 0.6 else CLOTH_COLORS[rng.integers(len(CLOTH_COLORS))]
        parts.append(part("phone", verts @ R.T + target, tris, color=color, specular=0.5, shininess=60.0,
                          frame="camera"))
    return parts
